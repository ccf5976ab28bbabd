// Guide the metric definition form: show only the chosen source's fields
// (and a histogram's buckets only for a histogram), fill the buckets from a
// preset, show the exported name as the name, kind and unit are typed, and
// preview in place. Without this script every field shows, the server fills
// the buckets from a preset on saving, the exported name shows once saved,
// and Preview opens its result in a new tab; the server validates either way.
'use strict';
{
    const translate = (text) => (window.gettext ? window.gettext(text) : text);

    // Ask the admin for the exported name (the server's rules, the same that
    // refuse colliding names) a moment after the typing stops.
    function showExportedNameLive(form) {
        const shown = form.querySelector('.form-row.field-exported_name .readonly');
        const endpoint = document.getElementById('metricdemo-exported-name');
        if (!shown || !endpoint) {
            return;
        }
        const inputs = ['name', 'kind', 'unit'].map((name) => form.elements.namedItem(name));
        if (inputs.some((input) => !input)) {
            return; // a view-only form
        }
        let timer = null;
        let asked = 0;
        const show = async () => {
            const query = new URLSearchParams();
            for (const input of inputs) {
                query.set(input.name, input.value);
            }
            if (!query.get('name')) {
                shown.textContent = '-';
                return;
            }
            const ticket = ++asked;
            try {
                const response = await fetch(endpoint.dataset.url + '?' + query, {
                    headers: {'X-Requested-With': 'XMLHttpRequest'},
                    credentials: 'same-origin',
                });
                if (!response.ok) {
                    throw new Error('HTTP ' + response.status);
                }
                const answer = await response.json();
                if (ticket === asked) { // no later question is on its way
                    shown.textContent = answer.exported_name || answer.errors.join(' ');
                    shown.classList.toggle('metricdemo-refused', !answer.exported_name);
                }
            } catch (error) {
                if (ticket === asked) {
                    shown.textContent = '-';
                }
            }
        };
        const later = () => {
            clearTimeout(timer);
            timer = setTimeout(show, 150);
        };
        for (const input of inputs) {
            input.addEventListener('input', later);
            input.addEventListener('change', later);
        }
        if (shown.textContent.trim() === '-' && inputs[0].value) {
            show(); // an add form shown again with its errors
        }
    }

    // Fill the buckets as a preset is chosen, and show the preset that the
    // buckets typed are (Custom for any other), so that what is saved is what
    // shows. The server fills the buckets from the preset too.
    function offerBucketPresets(form) {
        const preset = form.elements.namedItem('bucket_preset');
        const buckets = form.elements.namedItem('buckets');
        if (!preset || !buckets || !preset.dataset.presets) {
            return;
        }
        const presets = JSON.parse(preset.dataset.presets);
        const custom = preset.dataset.custom || 'custom';
        preset.addEventListener('change', () => {
            const bounds = presets[preset.value];
            if (bounds) {
                buckets.value = '[' + bounds.join(', ') + ']';
            }
        });
        buckets.addEventListener('input', () => {
            let typed = null;
            try {
                typed = JSON.parse(buckets.value);
            } catch (error) {
                // Not JSON (yet): the server names the mistake.
            }
            const same = (bounds) => Array.isArray(typed)
                && typed.length === bounds.length
                && typed.every((bound, index) => bound === bounds[index]);
            preset.value = Object.keys(presets).find((key) => same(presets[key])) || custom;
        });
    }

    function setUp() {
        const form = document.getElementById('metricdefinition_form');
        if (form) {
            showExportedNameLive(form);
        }
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
        const kind = form.elements.namedItem('kind');
        // Kind.HISTOGRAM, which is also the key of its field suggestions.
        const isHistogram = () => Boolean(kind) && kind.value === 'histogram';

        // The fields the chosen source does not use; for a histogram, the
        // aggregate (it takes none: count); otherwise the buckets, and a row
        // count's field while its aggregate is count (which takes none).
        const hiddenFields = () => {
            const hidden = unusedFields();
            if (isHistogram()) {
                hidden.push('aggregate');
            } else {
                hidden.push('buckets');
                if (aggregate && aggregate.value === (aggregate.dataset.default || 'count')) {
                    hidden.push('field');
                }
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
            const key = isHistogram() ? kind.value : aggregate.value;
            const names = (suggestions[modelInput.value.trim()] || {})[key] || [];
            list.replaceChildren(...names.map((name) => new Option(name)));
        };

        source.addEventListener('change', showUsedFields);
        if (kind) {
            kind.addEventListener('change', () => {
                showUsedFields();
                suggestFields();
            });
        }
        offerBucketPresets(form);
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
            // The result lands below the save buttons, often under the
            // window's lower edge: bring it into sight, scrolling no more
            // than needed.
            result.scrollIntoView({block: 'nearest'});
        });
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', setUp);
    } else {
        setUp();
    }
}
