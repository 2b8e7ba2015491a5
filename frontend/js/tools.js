// The tool switcher: which tool the pointer (and the keyboard on the image)
// works with. The brush is the first tool; another registers with add() and
// gets a radio button, its options ([data-tool-options=name]) shown only while
// it is chosen, and activate/deactivate calls.

export class ToolSwitch extends EventTarget {
  constructor(group) {
    super();
    this.group = group;
    this.tools = new Map();
    this.current = null;
    group.addEventListener('click', (e) => {
      const button = e.target.closest('[data-tool]');
      if (button) this.select(button.dataset.tool);
    });
    group.addEventListener('keydown', (e) => {
      if (!['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'].includes(e.key)) return;
      const names = [...this.tools.keys()];
      const step = e.key === 'ArrowLeft' || e.key === 'ArrowUp' ? -1 : 1;
      const next = names[(names.indexOf(this.current) + step + names.length) % names.length];
      e.preventDefault();
      this.select(next);
      this.#button(next)?.focus();
    });
  }

  #button(name) {
    return this.group.querySelector(`[data-tool="${name}"]`);
  }

  /** tool: {activate(), deactivate()}; its radio button must be in the group. */
  add(name, tool) {
    this.tools.set(name, tool);
    if (!this.current) this.select(name);
  }

  select(name) {
    if (!this.tools.has(name) || name === this.current) return;
    if (this.current) this.tools.get(this.current).deactivate();
    this.current = name;
    this.tools.get(name).activate();
    for (const button of this.group.querySelectorAll('[data-tool]')) {
      const on = button.dataset.tool === name;
      button.setAttribute('aria-checked', String(on));
      button.tabIndex = on ? 0 : -1;
    }
    for (const options of document.querySelectorAll('[data-tool-options]')) options.hidden = options.dataset.toolOptions !== name;
    this.dispatchEvent(new CustomEvent('change', { detail: { tool: name } }));
  }
}
