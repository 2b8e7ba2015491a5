// The inpainting backend menu: filled from GET /info (backends[].name,
// description, available, default). Unavailable backends stay listed but
// disabled, so a person sees what exists and what is down right now. The
// chosen backend's description is shown beside the menu.

import * as api from './api.js';

export class BackendMenu {
  constructor(select, messages, description) {
    this.select = select;
    this.messages = messages;
    this.description = description;
    this.descriptions = new Map();
    select.addEventListener('change', () => this.#describe());
  }

  #describe() {
    const text = this.descriptions.get(this.select.value) || '';
    this.select.title = text;
    this.description.textContent = text;
    this.description.title = text;
  }

  /** Choose `name` if it is listed and available (a restored session's backend). */
  choose(name) {
    const option = [...this.select.options].find((o) => o.value === name && !o.disabled);
    if (option) this.select.value = name;
    this.#describe();
  }

  /** The chosen backend's name, or undefined for the server's default. */
  get value() {
    return this.select.value || undefined;
  }

  /** Fill the menu; keep `keep` (the person's choice) while it is available. */
  fill(info, keep) {
    this.select.replaceChildren();
    const backends = info.backends || [];
    const preferred = backends.find((b) => b.name === keep && b.available) ||
      backends.find((b) => b.default && b.available) || backends.find((b) => b.available);
    this.descriptions = new Map(backends.map((b) => [b.name, b.description || '']));
    for (const b of backends) {
      const option = new Option(b.available ? b.name : `${b.name} (unavailable)`, b.name);
      option.disabled = !b.available;
      option.selected = b === preferred;
      this.select.append(option);
    }
    this.#describe();
    if (!preferred) {
      this.messages.showError('No inpainting backend is available: brushing cannot remove anything now.');
    }
  }

  /** After a fallback: ask the gateway which backends work now, so the menu tells the truth. */
  async refresh() {
    try {
      const info = await api.getInfo();
      this.fill(info, this.select.value);
      return info;
    } catch (err) {
      this.messages.showError(err, 'The list of inpainting backends could not be refreshed');
      return null;
    }
  }
}
