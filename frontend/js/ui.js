// Page furniture shared by the modules: error and notice banners, the busy
// spinner, questions in a dialog and keyboard shortcuts.

/** Error and notice banners. Errors stay until dismissed or replaced: never silently dropped. */
export class Messages {
  constructor(root) {
    this.error = root.querySelector('#error-banner');
    this.errorText = root.querySelector('#error-text');
    this.notice = root.querySelector('#notice-banner');
    this.noticeText = root.querySelector('#notice-text');
    for (const banner of [this.error, this.notice]) {
      banner.querySelector('.dismiss').addEventListener('click', () => {
        banner.hidden = true;
      });
    }
  }

  /** Show what went wrong: an Error's message (the API's error.message) or a string. */
  showError(error, context = '') {
    if (error && error.name === 'AbortError') return; // superseded on purpose, not a failure
    const message = typeof error === 'string' ? error : (error && error.message) || String(error);
    this.errorText.textContent = context ? `${context}: ${message}` : message;
    this.error.hidden = false;
    console.error(context || 'error', error);
  }

  showNotice(text) {
    this.noticeText.textContent = text;
    this.notice.hidden = false;
  }

  clearError() {
    this.error.hidden = true;
  }

  clearNotice() {
    this.notice.hidden = true;
  }
}

/** A spinner over the modified image while any request runs (they can overlap). */
export class Spinner {
  constructor(element, textElement, busyTarget) {
    this.element = element;
    this.text = textElement;
    this.busyTarget = busyTarget;
    this.tasks = new Map();
    this.nextId = 1;
  }

  get active() {
    return this.tasks.size > 0;
  }

  /** Run `promise` with the spinner showing `label`; resolves/rejects as the promise does. */
  async during(promise, label) {
    const id = this.nextId++;
    this.tasks.set(id, label);
    this.#update();
    try {
      return await promise;
    } finally {
      this.tasks.delete(id);
      this.#update();
    }
  }

  #update() {
    const labels = [...this.tasks.values()];
    this.element.hidden = labels.length === 0;
    this.busyTarget.setAttribute('aria-busy', String(labels.length > 0));
    if (labels.length) this.text.textContent = labels[labels.length - 1];
  }
}

/**
 * Ask a question in a modal <dialog>: `choices` are [{value, label, primary}];
 * resolves with the value chosen, or null when the dialog is dismissed (Escape).
 */
export function ask(dialog, { title, text, choices }) {
  dialog.querySelector('h2').textContent = title;
  dialog.querySelector('p').textContent = text;
  const row = dialog.querySelector('.confirm-buttons');
  return new Promise((resolve) => {
    const buttons = choices.map(({ value, label, primary }) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = `button ${primary ? 'primary' : 'ghost'}`;
      button.textContent = label;
      button.dataset.value = value;
      button.addEventListener('click', () => dialog.close(value));
      return button;
    });
    row.replaceChildren(...buttons);
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue || null), { once: true });
    dialog.showModal();
    (buttons.find((_, i) => choices[i].primary) || buttons[0]).focus();
  });
}

function typingInto(target) {
  if (!target || !target.tagName) return false;
  if (target.isContentEditable || target.tagName === 'TEXTAREA') return true;
  return target.tagName === 'INPUT' && !['range', 'checkbox', 'radio', 'button', 'file'].includes(target.type);
}

/**
 * Keyboard shortcuts: [ and ] brush size, Ctrl/Cmd+Z undo, Ctrl/Cmd+Shift+Z or
 * Ctrl/Cmd+Y redo, ? help, C held: compare with the original, B: the brush
 * tool, S: the select tool. Ignored while typing and while a dialog is open.
 */
export function bindShortcuts({ undo, redo, smaller, larger, help, compare, brush, select }) {
  document.addEventListener('keyup', (e) => {
    if (e.key.toLowerCase() === 'c') compare(false);
  });
  window.addEventListener('blur', () => compare(false));
  document.addEventListener('keydown', (e) => {
    if (typingInto(e.target) || document.querySelector('dialog[open]')) return;
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    let handled = true;
    if (mod && key === 'z' && e.shiftKey) redo();
    else if (mod && key === 'z') undo();
    else if (mod && key === 'y') redo();
    else if (!mod && !e.altKey && e.key === '[') smaller();
    else if (!mod && !e.altKey && e.key === ']') larger();
    else if (!mod && e.key === '?') help();
    else if (!mod && !e.altKey && key === 'c') compare(true);
    else if (!mod && !e.altKey && key === 'b' && brush) brush();
    else if (!mod && !e.altKey && key === 's' && select) select();
    else handled = false;
    if (handled) e.preventDefault();
  });
}
