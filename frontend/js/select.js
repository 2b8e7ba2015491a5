// The select tool: click an object on the modified image (or drag a box round
// it) and POST /api/v1/segment proposes its region (GrabCut, in the OpenCV
// service). The proposal is outlined with marching ants over a light tint.
// Accept removes it as one edit through the brush's own path (EditRunner), so
// history, undo, sessions, backends and fallback notices work the same; Grow
// and Shrink ask again with a margin (the API's `grow`); Cancel drops it.
// Keyboard, with the image focused: the arrow keys move a cross (Shift:
// farther), Enter selects there or accepts the proposal, Space selects there,
// + and - grow and shrink, Escape cancels.

import * as api from './api.js';
import { makeCanvas } from './imaging.js';

const DRAG_PX = 4; // screen pixels a press must move to be a box rather than a click
const ANTS_MS = 140; // marching ants' step
const GROW_LIMIT = 100; // the API's range of `grow`
const TINT = [250, 204, 21, 70]; // light amber over the proposed region
const LABEL = 'Click an object, or drag a box round it, to select it for removal';

export class SelectTool {
  /**
   * @param {Object} el  surface (the pointer and key target over the image), outline (canvas),
   *   cursor (the keyboard's cross), stage, accept, grow, shrink, cancel, status, keys (description id)
   * @param {{history, edits, spinner, messages, signal: () => AbortSignal}} deps
   */
  constructor(el, deps) {
    this.el = el;
    this.deps = deps;
    this.active = false;
    this.proposal = null; // { entry, prompt, grow, mask (canvas), levels, box, pixels, edges }
    this.press = null; // a pointer held on the image: { start, client, pointerId, end }
    this.asking = 0; // bumps on every question: an older answer is dropped
    this.keyPoint = null; // the keyboard's cross, in image pixels
    this.selections = 0;
    this.phase = 0;
    this.timer = null;
    this.saved = null; // the surface's brush label, given back on deactivate
    this.#listen();
    this.#update();
  }

  // ---------- the tool switcher's calls ----------

  activate() {
    this.active = true;
    this.el.stage.classList.add('selecting');
    this.saved = { label: this.el.surface.getAttribute('aria-label'), keys: this.el.surface.getAttribute('aria-describedby') };
    this.el.surface.setAttribute('aria-label', LABEL);
    this.el.surface.setAttribute('aria-describedby', this.el.keys);
    if (document.activeElement === this.el.surface) this.#showCross();
  }

  deactivate() {
    this.cancel();
    this.active = false;
    this.el.stage.classList.remove('selecting');
    this.el.cursor.hidden = true;
    if (this.saved) {
      this.el.surface.setAttribute('aria-label', this.saved.label);
      this.el.surface.setAttribute('aria-describedby', this.saved.keys);
    }
  }

  // ---------- commands ----------

  /** Ask for the object under `prompt` ({x, y} or {box: [x, y, w, h]}), grown by `grow` px. */
  async ask(prompt, grow = 0) {
    const { history, spinner, messages } = this.deps;
    const entry = history.current;
    if (!entry) return;
    if ('x' in prompt && !(prompt.x >= 0 && prompt.y >= 0 && prompt.x < entry.width && prompt.y < entry.height)) {
      // Not worth a request: the server would only say the same.
      messages.showError(`the click at x=${prompt.x} y=${prompt.y} is outside the ` +
        `${entry.width}x${entry.height} image`, 'Select');
      return;
    }
    const asked = ++this.asking;
    this.#update();
    try {
      const answer = await spinner.during(api.segment({ image: entry.blob, ...prompt, grow },
        { signal: this.deps.signal() }), 'Finding the object…');
      const region = await decodeRegion(answer.mask, entry.width, entry.height);
      if (asked !== this.asking || history.current !== entry) return; // cancelled, or the image changed
      this.proposal = { entry, prompt, grow, ...region, box: answer.box, pixels: answer.pixels };
      messages.clearError();
    } catch (err) {
      if (asked === this.asking) messages.showError(err, 'Select'); // the proposal, if any, stays
    } finally {
      if (asked === this.asking) {
        this.#draw();
        this.#update(false);
      }
    }
  }

  /** Grow (+1) or shrink (-1) the proposal by one step. */
  resize(direction) {
    const p = this.proposal;
    if (!p) return;
    const step = Math.max(2, Math.round(Math.min(p.entry.width, p.entry.height) / 64));
    const grow = Math.max(-GROW_LIMIT, Math.min(GROW_LIMIT, p.grow + direction * step));
    if (grow !== p.grow) this.ask(p.prompt, grow);
  }

  /** Remove the proposed region: one edit, queued like a brush stroke. */
  accept() {
    const p = this.proposal;
    if (!p || !p.pixels || this.deps.history.current !== p.entry) return;
    this.selections += 1;
    this.#clear();
    this.deps.edits.queueStroke(p.mask, `select-${this.selections}`, 'selected object');
  }

  cancel() {
    this.asking += 1; // an answer on its way is dropped
    this.#clear();
  }

  #clear() {
    this.proposal = null;
    this.press = null;
    this.#draw();
    this.#update(false);
  }

  // ---------- pointer and keys ----------

  #usable() {
    return this.active && Boolean(this.deps.history.current);
  }

  #toImage(event) {
    const rect = this.el.surface.getBoundingClientRect();
    const entry = this.deps.history.current;
    const scale = rect.width > 0 ? entry.width / rect.width : 1;
    return { x: (event.clientX - rect.left) * scale, y: (event.clientY - rect.top) * scale };
  }

  #listen() {
    const s = this.el.surface;
    s.addEventListener('pointerdown', (e) => {
      if (!this.#usable() || (e.pointerType === 'mouse' && e.button !== 0)) return;
      e.preventDefault();
      s.setPointerCapture?.(e.pointerId);
      this.press = { start: this.#toImage(e), client: { x: e.clientX, y: e.clientY }, pointerId: e.pointerId };
    });
    s.addEventListener('pointermove', (e) => {
      const press = this.press;
      if (!press || e.pointerId !== press.pointerId) return;
      if (!press.end && Math.hypot(e.clientX - press.client.x, e.clientY - press.client.y) < DRAG_PX) return;
      press.end = this.#toImage(e);
      this.#draw();
    });
    s.addEventListener('pointerup', (e) => {
      const press = this.press;
      if (!press || e.pointerId !== press.pointerId) return;
      this.press = null;
      if (press.end) this.ask({ box: this.#box(press.start, this.#toImage(e)) });
      else this.ask({ x: Math.floor(press.start.x), y: Math.floor(press.start.y) });
    });
    s.addEventListener('pointercancel', () => {
      this.press = null;
      this.#draw();
    });
    s.addEventListener('keydown', (e) => this.#key(e));
    s.addEventListener('focus', () => this.#showCross());
    s.addEventListener('blur', () => { this.el.cursor.hidden = true; });
    this.el.accept.addEventListener('click', () => this.accept());
    this.el.grow.addEventListener('click', () => this.resize(1));
    this.el.shrink.addEventListener('click', () => this.resize(-1));
    this.el.cancel.addEventListener('click', () => this.cancel());
    // + - and Escape also work while the focus is on the tool's own buttons.
    this.el.accept.parentElement.addEventListener('keydown', (e) => this.#resizeKeys(e) && e.preventDefault());
    // A proposal belongs to the image it was made on: undo, redo, an edit or a new photo drop it.
    this.deps.history.addEventListener('change', (e) => {
      if (e.detail.action === 'start') this.keyPoint = null; // a new photo: the cross starts in the middle
      if (this.proposal && this.proposal.entry !== this.deps.history.current) this.cancel();
      this.#update(false);
    });
  }

  /** A dragged box in whole image pixels, its corners kept inside the image (the API's form). */
  #box(a, b) {
    const { width, height } = this.deps.history.current;
    const clampX = (v) => Math.max(0, Math.min(width, Math.round(v)));
    const clampY = (v) => Math.max(0, Math.min(height, Math.round(v)));
    const x0 = clampX(Math.min(a.x, b.x));
    const y0 = clampY(Math.min(a.y, b.y));
    return [x0, y0, clampX(Math.max(a.x, b.x)) - x0, clampY(Math.max(a.y, b.y)) - y0];
  }

  #resizeKeys(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return false;
    if (e.key === '+' || e.key === '=') this.resize(1);
    else if (e.key === '-' || e.key === '_') this.resize(-1);
    else if (e.key === 'Escape' && (this.proposal || this.press)) this.cancel();
    else return false;
    return true;
  }

  #key(e) {
    if (!this.#usable() || e.ctrlKey || e.metaKey || e.altKey) return;
    const { width, height } = this.deps.history.current;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const point = this.keyPoint || { x: Math.floor(width / 2), y: Math.floor(height / 2) };
    if (moves[e.key]) {
      const step = Math.max(2, Math.round(Math.min(width, height) / 56)) * (e.shiftKey ? 4 : 1);
      this.keyPoint = {
        x: Math.max(0, Math.min(width - 1, point.x + moves[e.key][0] * step)),
        y: Math.max(0, Math.min(height - 1, point.y + moves[e.key][1] * step)),
      };
      this.#showCross();
    } else if (e.key === 'Enter' && this.proposal) {
      this.accept();
    } else if (e.key === 'Enter' || e.key === ' ') {
      this.keyPoint = point;
      this.#showCross();
      this.ask({ x: point.x, y: point.y });
    } else if (!this.#resizeKeys(e)) {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
  }

  /** The keyboard's cross at its place (percentages of the stage: no layout maths). */
  #showCross() {
    const entry = this.deps.history.current;
    if (!this.#usable() || !entry) return;
    const point = this.keyPoint || { x: Math.floor(entry.width / 2), y: Math.floor(entry.height / 2) };
    this.el.cursor.style.left = `${((point.x + 0.5) / entry.width) * 100}%`;
    this.el.cursor.style.top = `${((point.y + 0.5) / entry.height) * 100}%`;
    this.el.cursor.hidden = false;
  }

  // ---------- drawing ----------

  /** The proposal (tint and marching ants) and the box being dragged, on the outline layer. */
  #draw() {
    const canvas = this.el.outline;
    const entry = this.proposal?.entry || this.deps.history.current;
    if (entry && (canvas.width !== entry.width || canvas.height !== entry.height)) {
      canvas.width = entry.width;
      canvas.height = entry.height;
    }
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const p = this.proposal;
    if (p) {
      const image = new ImageData(p.tint.slice(), canvas.width, canvas.height);
      for (const i of p.edges) {
        const x = i % canvas.width;
        const y = (i - x) / canvas.width;
        const light = ((x + y + this.phase) >> 2) % 2 === 0;
        image.data.set(light ? [255, 255, 255, 255] : [17, 24, 39, 255], i * 4);
      }
      ctx.putImageData(image, 0, 0);
    }
    if (this.press?.end) {
      const [x, y, w, h] = this.#box(this.press.start, this.press.end);
      ctx.setLineDash([3, 3]);
      ctx.lineWidth = 1;
      ctx.strokeStyle = '#fff';
      ctx.strokeRect(x + 0.5, y + 0.5, Math.max(0, w - 1), Math.max(0, h - 1));
      ctx.lineDashOffset = 3;
      ctx.strokeStyle = '#111827';
      ctx.strokeRect(x + 0.5, y + 0.5, Math.max(0, w - 1), Math.max(0, h - 1));
    }
    this.#animate(Boolean(p));
  }

  #animate(on) {
    const still = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    if (on && !still && !this.timer) {
      this.timer = setInterval(() => {
        this.phase = (this.phase + 1) % 8;
        this.#draw();
      }, ANTS_MS);
    } else if ((!on || still) && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Buttons and the status line. */
  #update(asking = true) {
    const p = this.proposal;
    this.el.accept.disabled = !p || !p.pixels;
    this.el.grow.disabled = !p;
    this.el.shrink.disabled = !p;
    this.el.cancel.disabled = !p && !asking;
    if (p) {
      const share = (100 * p.pixels) / (p.entry.width * p.entry.height);
      const margin = p.grow ? ` · ${p.grow > 0 ? 'grown' : 'shrunk'} ${Math.abs(p.grow)} px` : '';
      this.el.status.textContent = p.pixels
        ? `Proposed: ${p.pixels.toLocaleString('en')} px (${share.toFixed(1)} %)${margin}`
        : `Nothing left${margin}: grow it again`;
    } else {
      this.el.status.textContent = asking ? 'Finding the object…' : 'Click an object or drag a box round it';
    }
  }
}

/** The answer's mask PNG -> the edit's mask (white where removed), its levels, tint and edge pixels. */
async function decodeRegion(base64, width, height) {
  const bitmap = await createImageBitmap(api.base64ToBlob(base64), { colorSpaceConversion: 'none' });
  if (bitmap.width !== width || bitmap.height !== height) {
    bitmap.close();
    throw new Error(`The server proposed a ${bitmap.width}×${bitmap.height} region for a ${width}×${height} image.`);
  }
  const mask = makeCanvas(width, height);
  const ctx = mask.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const data = ctx.getImageData(0, 0, width, height);
  const d = data.data;
  const levels = new Uint8Array(width * height);
  const tint = new Uint8ClampedArray(d.length);
  for (let p = 0; p < levels.length; p++) {
    const on = d[p * 4] >= 128;
    levels[p] = on ? 255 : 0;
    d.set(on ? [255, 255, 255, 255] : [0, 0, 0, 0], p * 4); // the brush's form: white, clear elsewhere
    if (on) tint.set(TINT, p * 4);
  }
  ctx.putImageData(data, 0, 0);
  const edges = [];
  for (let y = 0, p = 0; y < height; y++) {
    for (let x = 0; x < width; x++, p++) {
      if (!levels[p]) continue;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1 || !levels[p - 1] || !levels[p + 1] ||
        !levels[p - width] || !levels[p + width]) edges.push(p);
    }
  }
  return { mask, levels, tint, edges };
}
