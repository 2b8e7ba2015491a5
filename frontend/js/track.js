// "Follow another class": a search field over the chosen model's labels
// (GET /labels?model=) that adds a class to the modified table, so a person can watch
// a class of their choice rise or fall ("does it turn into a golf ball?").

import * as api from './api.js';

export const MAX_TRACKED = 5;

/** The class id a person typed: a full label, its first name, a part of it, or an id. */
export function findClass(labels, text) {
  const query = text.trim().toLowerCase();
  if (!query) return null;
  if (/^\d+$/.test(query)) {
    const id = Number(query);
    return id < labels.length ? id : null;
  }
  const lower = labels.map((l) => l.toLowerCase());
  const exact = lower.indexOf(query);
  if (exact >= 0) return exact;
  const names = lower.map((l) => l.split(',').map((n) => n.trim()));
  const byName = names.findIndex((n) => n.includes(query));
  if (byName >= 0) return byName;
  const partial = lower.findIndex((l) => l.includes(query));
  return partial >= 0 ? partial : null;
}

export class ClassTracker {
  /**
   * @param {{form: HTMLFormElement, input: HTMLInputElement, list: HTMLDataListElement,
   *          clear: HTMLButtonElement, messages, onAdd: (id) => void, onClear: () => void}} parts
   */
  constructor({ form, input, list, clear, messages, onAdd, onClear }) {
    this.form = form;
    this.input = input;
    this.list = list;
    this.clear = clear;
    this.messages = messages;
    this.labels = [];
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const id = findClass(this.labels, input.value);
      if (id === null) {
        messages.showError(`No class of this model is called “${input.value.trim()}”: pick one from the list.`);
        return;
      }
      input.value = '';
      onAdd(id);
    });
    clear.addEventListener('click', () => onClear());
  }

  /** Load the labels of `model` (undefined: the default model) into the suggestion list. */
  async load(model) {
    const ticket = (this.loads = (this.loads || 0) + 1);
    const { labels } = await api.getLabels(model);
    if (ticket !== this.loads) return this.labels; // another model was chosen meanwhile
    this.labels = labels;
    this.list.replaceChildren(...labels.map((label) => new Option(label.split(',')[0], label)));
    this.input.disabled = false;
    return labels;
  }

  /** Show the Clear button only while some class is followed. */
  setCount(count) {
    this.clear.hidden = count === 0;
    this.input.disabled = !this.labels.length || count >= MAX_TRACKED;
    this.input.placeholder = count >= MAX_TRACKED ? `at most ${MAX_TRACKED} classes` : 'e.g. golf ball';
  }
}
