// Edits: brush strokes -> POST /edit, one at a time, each applied to the result
// of the previous one; images pushed by other tools (Explain's fix-it); and
// replaying a history's edits on a new working copy (another working size).
//
// Every stroke is measured from mouse-up (the brush's `stroke-<n>-up` mark) to
// the frame that shows the updated table: performance measure `stroke-to-table`.

import * as api from './api.js';
import { blobToBase64, makeEntry, resetEntry } from './entries.js';
import { canvasFromPngBlob, canvasToPng, pasteRegion, scaleMask } from './imaging.js';

export const PINNED_COUNT = 5; // the original's top-5 follow every edit, as in the original demo

export class EditRunner extends EventTarget {
  /**
   * @param {{history, backends, spinner, messages, brush, signal: () => AbortSignal,
   *          generation: () => number, pinnedIds: () => number[], camIds: () => number[],
   *          models: () => {model, compare, topK}, onFallback: () => void}} deps
   * (`models`: the chosen model, the compare one, both answered by each request, and top_k)
   */
  constructor(deps) {
    super();
    this.deps = deps;
    this.queue = []; // finished strokes waiting for the edit in flight: {mask, id, note}
    this.editing = false;
  }

  clear() {
    this.queue = [];
  }

  /** A stroke's (or a selection's) mask; `note` says how it was made, in the caption. */
  queueStroke(mask, id, note = '') {
    this.queue.push({ mask, id, note });
    this.pump();
  }

  #setEditing(on) {
    this.editing = on;
    this.dispatchEvent(new CustomEvent('busy', { detail: { on } }));
  }

  /** One edit at a time: each stroke is applied to the result of the previous one. */
  async pump() {
    if (this.editing || !this.queue.length) return;
    const { history, backends, spinner, messages, brush } = this.deps;
    this.#setEditing(true);
    const { mask, id, note } = this.queue.shift();
    const generation = this.deps.generation();
    try {
      const current = history.current;
      if (!current) throw new Error('Choose a photo first.');
      if (mask.width !== current.width || mask.height !== current.height) {
        throw new Error(`The stroke (${mask.width}×${mask.height}) does not match the image ` +
          `(${current.width}×${current.height}).`);
      }
      const backend = backends.value;
      const answer = await spinner.during(this.#edit(current, mask, backend),
        `Inpainting with ${backend || 'the default backend'}…`);
      if (generation !== this.deps.generation()) return;
      performance.mark(`stroke-${id}-answer`);
      await this.pushAnswer(answer, { kind: 'edit', requested: backend, mask, note }, current);
      performance.mark(`stroke-${id}-rendered`);
      requestAnimationFrame(() => {
        if (!performance.getEntriesByName(`stroke-${id}-up`).length) return;
        performance.mark(`stroke-${id}-table`);
        performance.measure('stroke-to-table', `stroke-${id}-up`, `stroke-${id}-table`);
        // Where the time goes: up to the answer (mask PNG, upload, server, download),
        // answer to the page drawn from it (decoding, tables, map), then to the frame.
        performance.measure('stroke-to-answer', `stroke-${id}-up`, `stroke-${id}-answer`);
        performance.measure('answer-to-rendered', `stroke-${id}-answer`, `stroke-${id}-rendered`);
        for (const step of ['up', 'answer', 'rendered', 'table']) performance.clearMarks(`stroke-${id}-${step}`);
      });
    } catch (err) {
      if (generation === this.deps.generation()) {
        messages.showError(err, 'The edit failed');
        this.queue = [];
        brush.clearPending();
      }
    } finally {
      brush.settle(mask);
      this.#setEditing(false);
      this.pump();
    }
  }

  async #edit(entry, mask, backend) {
    // Only the filled box comes back: the page has the rest of the picture already.
    return api.edit({
      image: entry.blob, mask: await canvasToPng(mask), backend, topK: PINNED_COUNT,
      classes: this.deps.pinnedIds(), cam: this.deps.camIds(), answer: 'region', ...this.deps.models(),
    }, { signal: this.deps.signal() });
  }

  /**
   * Turn an edit answer into a history entry, and say so when a fallback
   * backend did the work. An answer with `region` is pasted into a copy of
   * `from`'s image; one with `image` (Explain's fix-it) is the whole picture.
   */
  async pushAnswer(answer, extra, from) {
    let canvas;
    let blob;
    if ('region' in answer) {
      canvas = await pasteRegion(from.canvas, answer.region);
      blob = answer.region ? await canvasToPng(canvas) : from.blob; // null: nothing was removed
    } else {
      blob = api.base64ToBlob(answer.image);
      canvas = await canvasFromPngBlob(blob, { width: from.width, height: from.height });
    }
    const entry = makeEntry(canvas, blob, answer,
      { ...extra, backend: answer.backend, fallback: Boolean(answer.fallback), ms: answer.timing_ms?.total });
    this.deps.history.push(entry);
    if (entry.fallback) {
      this.deps.messages.showNotice(`The “${extra.requested || 'requested'}” backend was unavailable, ` +
        `so “${answer.backend}” inpainted this stroke.`);
      this.deps.onFallback();
    }
    return entry;
  }

  /**
   * Classify an image made elsewhere (Explain's fix-it) and push it as an
   * ordinary undoable edit. `mask` (a canvas) is the region it changed.
   */
  async applyImage(image, { note = 'from Explain', backend, mask = null } = {}) {
    const { history, spinner } = this.deps;
    const from = history.current;
    const blob = image instanceof Blob ? image : api.base64ToBlob(image);
    const base64 = image instanceof Blob ? await blobToBase64(image) : image;
    const answer = await spinner.during(api.classify({
      image: blob, topK: PINNED_COUNT, classes: this.deps.pinnedIds(), cam: this.deps.camIds(), ...this.deps.models(),
    }, { signal: this.deps.signal() }), 'Classifying…');
    return this.pushAnswer({ ...answer, image: base64, backend, fallback: false },
      { kind: 'external', note, requested: backend, mask }, from);
  }

  /**
   * Apply the edits of `entries` (a former history, original first) again on
   * the current original, masks scaled to its size, each with the backend that
   * did it. Resets stay resets; a step without a mask (an image pushed without
   * one) cannot be replayed and ends the replay. Returns how many were replayed.
   */
  async replay(entries) {
    const { history } = this.deps;
    const { width, height } = history.original;
    let done = 0;
    for (const old of entries.slice(1)) {
      if (old.kind === 'reset') {
        history.push(resetEntry(history.original));
      } else if (old.mask) {
        const mask = scaleMask(old.mask, width, height);
        const from = history.current;
        const answer = await this.deps.spinner.during(this.#edit(from, mask, old.backend), 'Replaying the edits…');
        await this.pushAnswer(answer, { kind: old.kind, requested: old.backend, mask, note: old.note || '' }, from);
      } else {
        break;
      }
      done += 1;
    }
    return done;
  }
}
