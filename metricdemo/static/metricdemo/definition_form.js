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

        const aggregate = form.elements.namedItem('aggregate');
        const fieldInput = form.elements.namedItem('field');
        const modelInput = form.elements.namedItem('model');

        // The fields the chosen source does not use, and a row count's field
        // while its aggregate is count (which takes none).
        const hiddenFields = () => {
            const hidden = unusedFields();
            if (aggregate && aggregate.value === (aggregate.dataset.default || 'count')) {
                hidden.push('field');
            }
            return hidden;
        };

        const showUsedFields = () => {
            const hidden = hiddenFields();
            for (const field of sourceFields) {
                const row = form.querySelector('.form-row.field-' + field);
                if (row) {
                    row.classList.toggle('hidden', hidden.includes(field));
                }
            }
        };

        // A select goes back to its default; a text input is emptied.
        const blankValue = (field) => {
            const input = form.elements.namedItem(field);
            return (input && input.dataset && input.dataset.default) || '';
        };

        // Hidden fields may still hold values from another source; blank them
        // so they are not refused as "belongs to another source".
        const blankUnused = (data) => {
            for (const field of hiddenFields()) {
                data.set(field, blankValue(field));
            }
            return data;
        };

        // Offer the chosen model's fields that fit the chosen aggregate.
        const suggestions = fieldInput && fieldInput.dataset.fieldSuggestions
            ? JSON.parse(fieldInput.dataset.fieldSuggestions) : {};
        const suggestFields = () => {
            const list = fieldInput && fieldInput.list;
            if (!list || !modelInput || !aggregate) {
                return;
            }
            const names = (suggestions[modelInput.value.trim()] || {})[aggregate.value] || [];
            list.replaceChildren(...names.map((name) => new Option(name)));
        };

        source.addEventListener('change', showUsedFields);
        if (aggregate) {
            aggregate.addEventListener('change', () => {
                showUsedFields();
                suggestFields();
            });
        }
        if (modelInput) {
            modelInput.addEventListener('change', suggestFields);
        }
        showUsedFields();
        suggestFields();

        form.addEventListener('submit', () => {
            for (const field of hiddenFields()) {
                const input = form.elements.namedItem(field);
                if (input) {
                    input.value = blankValue(field);
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
