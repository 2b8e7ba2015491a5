// Page furniture shared by the modules: error and notice banners, the busy
// spinner, the tutorial overlay and keyboard shortcuts.

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

/** The tutorial: a modal <dialog> of a few steps with Back / Next. */
export class Tutorial {
  constructor(dialog) {
    this.dialog = dialog;
    this.steps = [...dialog.querySelectorAll('.step')];
    this.counter = dialog.querySelector('.step-counter');
    this.back = dialog.querySelector('[data-action="back"]');
    this.next = dialog.querySelector('[data-action="next"]');
    this.index = 0;
    // One dot per step, so a reader sees how far along they are.
    this.dots = this.steps.map(() => {
      const dot = document.createElement('span');
      dot.className = 'dot';
      return dot;
    });
    const dots = document.createElement('span');
    dots.className = 'step-dots';
    dots.setAttribute('aria-hidden', 'true');
    dots.append(...this.dots);
    this.counter.after(dots);
    this.back.addEventListener('click', () => this.show(this.index - 1));
    this.next.addEventListener('click', () => {
      if (this.index === this.steps.length - 1) this.dialog.close();
      else this.show(this.index + 1);
    });
    dialog.querySelector('[data-action="close"]').addEventListener('click', () => dialog.close());
    // A click on the backdrop (outside the box) closes it too.
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog) dialog.close();
    });
  }

  open(step = 0) {
    this.show(step);
    if (!this.dialog.open) this.dialog.showModal();
    this.next.focus();
  }

  show(step) {
    this.index = Math.max(0, Math.min(this.steps.length - 1, step));
    this.steps.forEach((el, i) => {
      el.hidden = i !== this.index;
    });
    this.counter.textContent = `Step ${this.index + 1} of ${this.steps.length}`;
    this.dots.forEach((dot, i) => dot.classList.toggle('current', i === this.index));
    this.back.disabled = this.index === 0;
    this.next.textContent = this.index === this.steps.length - 1 ? 'Start exploring' : 'Next';
  }
}

function typingInto(target) {
  if (!target || !target.tagName) return false;
  if (target.isContentEditable || target.tagName === 'TEXTAREA') return true;
  return target.tagName === 'INPUT' && !['range', 'checkbox', 'radio', 'button', 'file'].includes(target.type);
}

/**
 * Keyboard shortcuts: [ and ] brush size, Ctrl/Cmd+Z undo, Ctrl/Cmd+Shift+Z or
 * Ctrl/Cmd+Y redo, ? help, C held: compare with the original. Ignored while typing.
 */
export function bindShortcuts({ undo, redo, smaller, larger, help, compare }) {
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
    else handled = false;
    if (handled) e.preventDefault();
  });
}
