// The brush: pointer (or keyboard) strokes on the modified image become a mask
// the size of the working copy. The stroke shows as a translucent paint while
// it is drawn and while its edit is pending; a circle shows the size.
// Keyboard: with the image focused, the arrow keys move the brush (Shift: 4x
// farther), Space or Enter starts and ends a stroke, Escape drops it.
// Every finished stroke gets a number and a performance mark
// `stroke-<n>-up`, the start of the "mouse-up to updated table" measure.

import { makeCanvas } from './imaging.js';

const PAINT = 'rgba(56, 189, 248, 0.55)';

export class Brush extends EventTarget {
  /**
   * @param {HTMLCanvasElement} paintCanvas  overlay showing strokes (intrinsic size = image size)
   * @param {HTMLElement} cursor             absolutely positioned circle element
   */
  constructor(paintCanvas, cursor, { size = 20, min = 2, max = 120 } = {}) {
    super();
    this.canvas = paintCanvas;
    this.cursor = cursor;
    this.min = min;
    this.max = max;
    this.size = size; // diameter, in pixels of the working copy
    this.enabled = false; // a photo is ready to be brushed
    this.active = true; // the brush is the chosen tool
    this.stroke = null; // { mask, last }
    this.pending = []; // masks of finished strokes whose edits have not come back
    this.strokes = 0; // finished strokes so far (their performance marks' numbers)
    this.keyPoint = null; // the keyboard brush's position, in image pixels
    this.#listen();
  }

  /** Diameter in image pixels, clamped to [min, max]. */
  setSize(size) {
    const clamped = Math.round(Math.max(this.min, Math.min(this.max, size)));
    if (clamped === this.size) return;
    this.size = clamped;
    this.#placeCursor(this.lastPointer);
    this.dispatchEvent(new CustomEvent('size', { detail: { size: clamped } }));
  }

  setLimits(min, max) {
    this.min = min;
    this.max = max;
    this.setSize(this.size);
  }

  /** The image was (re)loaded: match its size and forget every stroke. */
  reset(width, height = width) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.keyPoint = null;
    this.stroke = null;
    this.pending = [];
    this.#repaint();
  }

  /** An edit finished (applied or failed): its paint goes away. */
  settle(mask) {
    this.pending = this.pending.filter((m) => m !== mask);
    this.#repaint();
  }

  clearPending() {
    this.pending = [];
    this.#repaint();
  }

  #usable() {
    return this.enabled && this.active;
  }

  #scale() {
    const rect = this.canvas.getBoundingClientRect();
    return rect.width > 0 ? this.canvas.width / rect.width : 1;
  }

  #toImage(event) {
    const rect = this.canvas.getBoundingClientRect();
    const scale = this.#scale();
    return { x: (event.clientX - rect.left) * scale, y: (event.clientY - rect.top) * scale };
  }

  #listen() {
    const c = this.canvas;
    c.addEventListener('pointerdown', (e) => this.#down(e));
    c.addEventListener('pointermove', (e) => this.#move(e));
    c.addEventListener('pointerup', (e) => this.#up(e));
    c.addEventListener('pointercancel', () => this.#cancel());
    c.addEventListener('pointerenter', (e) => this.#placeCursor(e));
    c.addEventListener('pointerleave', () => {
      this.lastPointer = null;
      this.cursor.hidden = true;
    });
    c.addEventListener('keydown', (e) => this.#key(e));
    c.addEventListener('focus', () => this.#showKeyCursor());
    c.addEventListener('blur', () => {
      if (this.stroke?.pointerId === 'keyboard') this.#finish();
      this.cursor.hidden = true;
    });
  }

  #key(event) {
    if (!this.#usable() || event.ctrlKey || event.metaKey || event.altKey) return;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const point = this.keyPoint || { x: this.canvas.width / 2, y: this.canvas.height / 2 };
    if (moves[event.key]) {
      const step = Math.max(2, Math.round(this.size / 4)) * (event.shiftKey ? 4 : 1);
      const [dx, dy] = moves[event.key];
      const next = {
        x: Math.max(0, Math.min(this.canvas.width - 1, point.x + dx * step)),
        y: Math.max(0, Math.min(this.canvas.height - 1, point.y + dy * step)),
      };
      this.keyPoint = next;
      if (this.stroke?.pointerId === 'keyboard') {
        this.#segment(this.stroke.last, next);
        this.stroke.last = next;
      }
      this.#showKeyCursor();
    } else if (event.key === ' ' || event.key === 'Enter') {
      if (this.stroke?.pointerId === 'keyboard') this.#finish();
      else if (!this.stroke) {
        this.keyPoint = point;
        this.stroke = { mask: makeCanvas(this.canvas.width, this.canvas.height), last: point, pointerId: 'keyboard' };
        this.#segment(point, point);
        this.#showKeyCursor();
      }
    } else if (event.key === 'Escape' && this.stroke) {
      this.#cancel();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }

  /** The circle at the keyboard brush's place (image pixels -> screen). */
  #showKeyCursor() {
    if (!this.#usable()) return;
    const point = this.keyPoint || { x: this.canvas.width / 2, y: this.canvas.height / 2 };
    const rect = this.canvas.getBoundingClientRect();
    const scale = this.#scale();
    this.#placeCursor({ clientX: rect.left + point.x / scale, clientY: rect.top + point.y / scale });
  }

  #down(event) {
    if (!this.#usable() || (event.pointerType === 'mouse' && event.button !== 0)) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    const mask = makeCanvas(this.canvas.width, this.canvas.height);
    const point = this.#toImage(event);
    this.stroke = { mask, last: point, pointerId: event.pointerId };
    this.#segment(point, point);
  }

  #move(event) {
    this.#placeCursor(event);
    if (!this.stroke || event.pointerId !== this.stroke.pointerId) return;
    // Coalesced events keep fast strokes continuous on high-rate pointers.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const point = this.#toImage(e);
      this.#segment(this.stroke.last, point);
      this.stroke.last = point;
    }
  }

  #up(event) {
    if (!this.stroke || event.pointerId !== this.stroke.pointerId) return;
    this.#finish();
  }

  #finish() {
    const { mask } = this.stroke;
    this.strokes += 1;
    const id = this.strokes;
    performance.mark(`stroke-${id}-up`);
    this.stroke = null;
    this.pending.push(mask);
    this.#repaint();
    this.dispatchEvent(new CustomEvent('stroke', { detail: { mask, id } }));
  }

  #cancel() {
    this.stroke = null;
    this.#repaint();
  }

  #segment(from, to) {
    const ctx = this.stroke.mask.getContext('2d');
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.lineWidth = this.size;
    ctx.strokeStyle = '#fff';
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    if (from.x === to.x && from.y === to.y) {
      // A click without movement: a dot (a zero-length line may draw nothing).
      ctx.arc(from.x, from.y, this.size / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
    }
    this.#repaint();
  }

  /** Show pending strokes and the stroke in progress as one translucent layer. */
  #repaint() {
    const ctx = this.canvas.getContext('2d');
    ctx.globalCompositeOperation = 'source-over';
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    const masks = [...this.pending, ...(this.stroke ? [this.stroke.mask] : [])];
    if (!masks.length) return;
    const union = makeCanvas(this.canvas.width, this.canvas.height);
    const u = union.getContext('2d');
    for (const m of masks) u.drawImage(m, 0, 0);
    u.globalCompositeOperation = 'source-in';
    u.fillStyle = PAINT;
    u.fillRect(0, 0, union.width, union.height);
    ctx.drawImage(union, 0, 0);
  }

  #placeCursor(event) {
    if (!event) return;
    this.lastPointer = { clientX: event.clientX, clientY: event.clientY };
    const rect = this.canvas.getBoundingClientRect();
    const parent = this.cursor.offsetParent || this.canvas.parentElement;
    const parentRect = parent.getBoundingClientRect();
    const diameter = this.size / this.#scale();
    Object.assign(this.cursor.style, {
      width: `${diameter}px`,
      height: `${diameter}px`,
      left: `${event.clientX - parentRect.left - diameter / 2}px`,
      top: `${event.clientY - parentRect.top - diameter / 2}px`,
    });
    const inside = event.clientX >= rect.left && event.clientX <= rect.right &&
      event.clientY >= rect.top && event.clientY <= rect.bottom;
    this.cursor.hidden = !inside || !this.#usable();
  }
}
