// The two stages (original and modified image, each with a map layer above it)
// and how they fit the screen: each stage takes its image's aspect ratio, and
// on wide screens the images get the height that is left once the bars above
// and the map bar below are placed, so images, legend and tables share one
// screen. Holding "compare" shows the original (and its map) in place of the
// modified image.

import { showOn } from './imaging.js';

const WIDE = '(min-width: 1100px)';
const PHONE = '(max-width: 699px)';

export class Stages extends EventTarget {
  /** @param {Object} el  workspace, originalStage, modifiedStage, originalCanvas, modifiedCanvas, originalMap, modifiedMap, region, below */
  constructor(el) {
    super();
    this.el = el;
    this.width = 0;
    this.height = 0;
    this.original = null;
    this.current = null;
    this.comparing = false;
    window.addEventListener('resize', () => this.fit());
    window.matchMedia(WIDE).addEventListener('change', () => this.fit());
  }

  /** Size every layer to a working copy of width x height. */
  setSize(width, height) {
    this.width = width;
    this.height = height;
    for (const canvas of [this.el.originalCanvas, this.el.modifiedCanvas, this.el.originalMap,
      this.el.modifiedMap, this.el.region]) {
      canvas.width = width;
      canvas.height = height;
    }
    for (const stage of [this.el.originalStage, this.el.modifiedStage]) {
      stage.style.setProperty('--aspect', String(width / height));
    }
    this.fit();
  }

  /** The height the images may take: on wide screens, what is left of the window. */
  fit() {
    const stage = this.el.modifiedStage;
    let available;
    if (window.matchMedia(WIDE).matches) {
      const top = stage.getBoundingClientRect().top + window.scrollY;
      const below = Math.max(...this.el.below.map((e) => e.getBoundingClientRect().height));
      available = window.innerHeight - top - below - 26;
    } else if (window.matchMedia(PHONE).matches) {
      available = window.innerHeight - 300;
    } else {
      available = window.innerHeight - 220;
    }
    this.el.workspace.style.setProperty('--stage-h', `${Math.max(200, Math.round(available))}px`);
  }

  /** Draw the original and the current image (the original twice while comparing). */
  show(original, current) {
    this.original = original;
    this.current = current;
    showOn(this.el.originalCanvas, original.canvas);
    showOn(this.el.modifiedCanvas, this.comparing ? original.canvas : current.canvas);
  }

  /** The entry the modified stage shows now. */
  get onModified() {
    return this.comparing ? this.original : this.current;
  }

  /** Show the original in place of the modified image (held C, or the hold button). */
  setComparing(on) {
    if (!this.original || on === this.comparing) return;
    this.comparing = on;
    this.el.modifiedStage.classList.toggle('comparing', on);
    this.show(this.original, this.current);
    this.dispatchEvent(new CustomEvent('comparing', { detail: { on } }));
  }
}

/**
 * A button that compares while it is held: pointer (mouse, finger, pen) or
 * Space/Enter held on it.
 */
export function holdToCompare(button, stages) {
  const set = (on) => {
    stages.setComparing(on);
    button.setAttribute('aria-pressed', String(stages.comparing));
  };
  button.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    button.setPointerCapture?.(e.pointerId);
    set(true);
  });
  for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) button.addEventListener(type, () => set(false));
  button.addEventListener('contextmenu', (e) => e.preventDefault()); // a long press is not a right-click here
  button.addEventListener('keydown', (e) => {
    if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) {
      e.preventDefault();
      set(true);
    }
  });
  button.addEventListener('keyup', (e) => {
    if (e.key === ' ' || e.key === 'Enter') set(false);
  });
  button.addEventListener('blur', () => set(false));
  stages.addEventListener('comparing', (e) => button.setAttribute('aria-pressed', String(e.detail.on)));
}
