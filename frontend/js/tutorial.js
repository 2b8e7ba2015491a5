// The tutorial: a few steps in a dialog that stays out of the way (bottom
// right, not modal) and points at the part of the page each step is about:
// that part is scrolled into view and outlined.

export class Tutorial {
  constructor(dialog) {
    this.dialog = dialog;
    this.steps = [...dialog.querySelectorAll('.step')];
    this.counter = dialog.querySelector('.step-counter');
    this.back = dialog.querySelector('[data-action="back"]');
    this.next = dialog.querySelector('[data-action="next"]');
    this.index = 0;
    this.target = null;
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
      if (this.index === this.steps.length - 1) this.close();
      else this.show(this.index + 1);
    });
    dialog.querySelector('[data-action="close"]').addEventListener('click', () => this.close());
    dialog.addEventListener('close', () => this.#point(null));
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && dialog.open) {
        e.preventDefault();
        this.close();
      }
    });
  }

  open(step = 0) {
    this.returnFocus = document.activeElement;
    if (!this.dialog.open) this.dialog.show();
    this.show(step);
    this.next.focus();
  }

  close() {
    if (!this.dialog.open) return;
    this.dialog.close();
    if (this.returnFocus?.focus) this.returnFocus.focus();
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
    const selector = this.steps[this.index].dataset.target;
    this.#point(selector ? document.querySelector(selector) : null);
  }

  /** Outline the part of the page the current step is about. */
  #point(element) {
    this.target?.classList.remove('tutorial-target');
    this.target = element && !element.hidden ? element : null;
    if (!this.target) return;
    this.target.classList.add('tutorial-target');
    this.target.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }
}
