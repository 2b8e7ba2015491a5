// The inpainting backend menu: filled from GET /info (backends[].name,
// description, available, default). Unavailable backends stay listed but
// disabled, so a person sees what exists and what is down right now.

import * as api from './api.js';

export class BackendMenu {
  constructor(select, messages) {
    this.select = select;
    this.messages = messages;
    select.addEventListener('change', () => {
      select.title = select.selectedOptions[0]?.title || '';
    });
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
    for (const b of backends) {
      const option = new Option(b.available ? b.name : `${b.name} (unavailable)`, b.name);
      option.title = b.description || b.name;
      option.disabled = !b.available;
      option.selected = b === preferred;
      this.select.append(option);
    }
    this.select.title = preferred?.description || '';
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
