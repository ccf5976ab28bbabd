// Guide the metric definition form: show only the chosen source's fields, and
// preview in place. Without this script every field shows, and Preview opens
// its result in a new tab; the server validates either way.
'use strict';
{
    const translate = (text) => (window.gettext ? window.gettext(text) : text);

    function setUp() {
        const form = document.getElementById('metricdefinition_form');
        const source = form && form.elements.namedItem('source');
        if (!source || !source.dataset.sourceFields) {
            return;
        }
        const fieldsBySource = JSON.parse(source.dataset.sourceFields);
        const sourceFields = [...new Set(Object.values(fieldsBySource).flat())];

        // The fields the chosen source does not use, or none for an unknown source.
        const unusedFields = () => {
            const used = fieldsBySource[source.value];
            return used ? sourceFields.filter((field) => !used.includes(field)) : [];
        };

        const showUsedFields = () => {
            const unused = unusedFields();
            for (const field of sourceFields) {
                const row = form.querySelector('.form-row.field-' + field);
                if (row) {
                    row.classList.toggle('hidden', unused.includes(field));
                }
            }
        };

        // Hidden fields may still hold values from another source; blank them
        // so they are not refused as "belongs to another source".
        const blankUnused = (data) => {
            for (const field of unusedFields()) {
                data.set(field, '');
            }
            return data;
        };

        source.addEventListener('change', showUsedFields);
        showUsedFields();

        form.addEventListener('submit', () => {
            for (const field of unusedFields()) {
                const input = form.elements.namedItem(field);
                if (input) {
                    input.value = '';
                }
            }
        });

        const button = form.elements.namedItem('_preview');
        const result = document.getElementById('metricdemo-preview-result');
        if (!button || !result) {
            return;
        }
        button.addEventListener('click', async (event) => {
            event.preventDefault();
            result.textContent = translate('Evaluating…');
            try {
                const response = await fetch(button.formAction, {
                    method: 'POST',
                    body: blankUnused(new FormData(form)),
                    headers: {'X-Requested-With': 'XMLHttpRequest'},
                    credentials: 'same-origin',
                });
                if (!response.ok) {
                    throw new Error('HTTP ' + response.status);
                }
                // The server renders the fragment and escapes what it shows.
                result.innerHTML = await response.text();
            } catch (error) {
                result.textContent = translate('The preview failed: ') + error.message;
            }
        });
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', setUp);
    } else {
        setUp();
    }
}
