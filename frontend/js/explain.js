// The Explain panel: "undesirable pixels" (Kang, Jung & Lee 2019) for the image
// being edited. POST /api/v1/explain streams progress (a progress bar), maybe
// preview maps from a coarse pass (drawn at once, replaced by the final ones),
// then the maps: what hinders the target class, what supports it, what
// supports each competing class. The maps are laid over the main images (the
// Map menu, js/overlays.js); this panel lists them with their ranges in bits.
// Any class can be the target. "Fix it" shows the region it would remove,
// then applies the counterfactual the server computed as an undoable edit.

import { app } from './app.js';
import { grayMapFromBase64 } from './colormap.js';
import { formatNumber } from './maps.js';
import { percent, shortLabel } from './tables.js';

function element(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

/** The maps of an answer (or preview line), decoded: values in bits. */
async function decodeMaps(answer) {
  const map = (m) => grayMapFromBase64(m.png, m.min, m.max);
  return {
    hinder: await map(answer.hinder),
    support: await map(answer.support),
    competitors: await Promise.all((answer.competitors || []).map(map)),
  };
}

class ExplainPanel {
  constructor(panel) {
    this.panel = panel;
    this.controller = null;
    this.runs = 0;
    this.answer = null;
    this.canvas = null; // the image the answer explains
    this.fixMask = null;
    this.unavailable = ''; // why the explainer cannot explain now (/api/v1/info), or ''
    this.target = element('select', { id: 'explain-target' });
    this.other = element('input', { id: 'explain-other', type: 'search', list: 'label-list', placeholder: 'any class…', 'aria-label': 'Another class to explain' });
    this.run = element('button', { class: 'button primary', type: 'button', id: 'explain-run', text: 'Explain' });
    this.cancel = element('button', { class: 'button ghost', type: 'button', id: 'explain-cancel', text: 'Cancel', hidden: '' });
    this.progress = element('progress', { max: 1, value: 0, hidden: '', 'aria-label': 'Windows done' });
    this.status = element('p', { class: 'explain-status', 'aria-live': 'polite' });
    this.summary = element('ul', { class: 'explain-summary', 'aria-label': 'Maps of the explanation' });
    this.fixButton = element('button', { class: 'button', type: 'button', id: 'explain-fix', text: 'Fix it', disabled: '' });
    this.regionButton = element('button', { class: 'button ghost', type: 'button', id: 'explain-region', 'aria-pressed': 'false', text: 'Show the region', disabled: '' });
    this.fixText = element('p', { class: 'explain-fix-text' });
    this.results = element('div', { class: 'explain-results', hidden: '' }, [
      this.summary,
      element('div', { class: 'explain-fix' }, [this.fixText, element('div', { class: 'explain-fix-buttons' }, [this.regionButton, this.fixButton])]),
    ]);
    panel.replaceChildren(
      element('div', { class: 'table-head' }, [element('h2', { class: 'table-title', text: 'Explain: undesirable pixels' })]),
      element('p', {
        class: 'explain-intro',
        text: 'Each window of the image is removed in turn and the image reclassified: where removal raises '
          + 'the class, those pixels hinder it; where it lowers it, they support it (weights of evidence, bits).',
      }),
      element('div', { class: 'explain-controls' }, [
        element('label', { for: 'explain-target', text: 'Class' }), this.target, this.other,
        this.run, this.cancel, this.progress,
      ]),
      this.status,
      this.results,
    );
    panel.hidden = false;
    this.run.addEventListener('click', () => this.start());
    this.cancel.addEventListener('click', () => this.stop('Cancelled.'));
    this.other.addEventListener('change', () => this.#useOther());
    this.fixButton.addEventListener('click', () => this.applyFix());
    this.regionButton.addEventListener('click', () => this.#toggleRegion());
    for (const type of ['pointerenter', 'focus']) this.fixButton.addEventListener(type, () => this.#showRegion(true));
    for (const type of ['pointerleave', 'blur']) this.fixButton.addEventListener(type, () => this.#showRegion(this.#regionPinned()));
    app.events.addEventListener('image', () => { this.stop(''); this.clear(); this.fillTargets(); this.#recheck(); });
    app.events.addEventListener('change', () => { this.fillTargets(); this.markStale(); });
    // Another model: its explanation of this image is another one, to be run again.
    app.events.addEventListener('model', () => { this.stop(''); this.clear(); this.fillTargets(); });
    this.#setAvailability(app.info);
    this.fillTargets();
  }

  /** /api/v1/info's `explain`: when the explainer is down, the button says why. */
  #setAvailability(info) {
    const explain = info?.explain;
    const reason = explain && explain.available === false ? (explain.reason || 'the explainer is down') : '';
    const changed = reason !== this.unavailable;
    this.unavailable = reason;
    this.run.title = reason ? `Explain is unavailable: ${reason}` : '';
    if (reason || changed) this.status.textContent = this.#idleText();
    this.running(Boolean(this.controller));
  }

  /** What the status says when nothing runs: why Explain cannot, or nothing. */
  #idleText() {
    return this.unavailable ? `Explain is unavailable right now: ${this.unavailable}.` : '';
  }

  #recheck() {
    app.api.getInfo().then((info) => this.#setAvailability(info)).catch(() => {});
  }

  /** Targets: the current top 5, the followed classes, the original's top 5, and any typed class. */
  fillTargets(extraId = null) {
    const current = app.history.current;
    const keep = extraId ?? this.target.value;
    const seen = new Set();
    const group = (label, items) => {
      const options = items.filter((c) => !seen.has(c.classId)).map((c) => {
        seen.add(c.classId);
        const p = current?.probs.get(c.classId)?.probability;
        return element('option', { value: c.classId, text: shortLabel(c.label) + (p !== undefined ? ` (${percent(p)})` : '') });
      });
      return options.length ? [element('optgroup', { label }, options)] : [];
    };
    const named = (id) => ({ classId: id, label: app.labels[id] || `class ${id}` });
    const extra = this.extraId !== undefined && this.extraId !== null ? [named(this.extraId)] : [];
    this.target.replaceChildren(
      ...group('Now on top', current?.top || []),
      ...group('Followed', app.trackedIds.map(named)),
      ...group('Original\'s top 5', app.originalEntry()?.top || []),
      ...group('Chosen', extra),
    );
    if (seen.has(Number(keep))) this.target.value = String(keep);
    this.run.disabled = !current || Boolean(this.controller) || Boolean(this.unavailable);
  }

  #useOther() {
    const id = app.findClass(this.other.value);
    if (id === null) {
      app.showError(`No class is called “${this.other.value.trim()}”: pick one from the list.`);
      return;
    }
    this.other.value = '';
    this.extraId = id;
    this.fillTargets(id);
  }

  clear() {
    this.answer = null;
    this.canvas = null;
    this.fixMask = null;
    this.extraId = null;
    this.results.hidden = true;
    this.status.textContent = this.#idleText();
    this.#setRegionPinned(false);
    app.overlay.clearExplanation();
  }

  markStale() {
    if (this.answer && this.canvas !== app.currentCanvas()) {
      this.status.textContent = 'The image changed since this explanation: run it again.';
      this.fixButton.disabled = true;
      this.regionButton.disabled = true;
      this.#setRegionPinned(false);
    }
  }

  stop(message) {
    if (this.controller) this.controller.abort(); // the server cancels its work too
    this.controller = null;
    this.running(false);
    if (message !== undefined) this.status.textContent = message || this.#idleText();
  }

  running(on) {
    this.run.disabled = on || !app.history.current || Boolean(this.unavailable);
    this.cancel.hidden = !on;
    this.progress.hidden = !on;
  }

  async start() {
    const blob = app.currentBlob();
    if (!blob) return;
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    const run = ++this.runs;
    const canvas = app.currentCanvas();
    this.running(true);
    this.progress.value = 0;
    this.status.textContent = 'Starting…';
    const show = async (answer, preview) => {
      const maps = await decodeMaps(answer);
      if (this.controller !== controller) return;
      this.answer = answer;
      this.canvas = canvas;
      app.overlay.setExplanation({ run, canvas, answer, maps, preview });
      this.#summarise(preview);
    };
    try {
      const answer = await app.api.explain({
        image: blob, target: this.target.value, backend: app.selectedBackend(), fix: 'true', model: app.model,
      }, {
        signal: controller.signal,
        onProgress: (done, total) => {
          this.progress.max = total;
          this.progress.value = done;
          this.status.textContent = `${done} / ${total} windows`;
        },
        onPreview: (line) => show(line, true),
      });
      if (this.controller !== controller) return;
      await show(answer, false);
      await this.#describeFix();
      this.controller = null;
      this.running(false);
      const ms = answer.timing_ms?.total;
      this.status.textContent = `${answer.windows} windows of ${answer.window} px`
        + (ms ? ` in ${(ms / 1000).toFixed(1)} s` : '') + ` (${answer.backend}).`;
    } catch (err) {
      if (err.name === 'AbortError') return;
      this.status.textContent = '';
      app.showError(err, 'The explanation failed');
      if (err.status === 503) this.#recheck(); // the explainer itself may be down
    } finally {
      if (this.controller === controller) { this.controller = null; this.running(false); }
    }
  }

  /** One line per map, with its range in bits and a button that lays it over the image. */
  #summarise(preview) {
    const a = this.answer;
    const name = shortLabel(a.target.label);
    const items = [
      ['net', `Hinders vs supports “${name}”`, null],
      ['hinder', 'Hinders', a.hinder],
      ['support', 'Supports', a.support],
      ...a.competitors.map((c, i) => [`competitor-${i}`, `Competitor ${shortLabel(c.label)} (${percent(c.probability)})`, c]),
    ];
    this.summary.replaceChildren(...items.map(([kind, text, m]) => {
      const button = element('button', { type: 'button', class: `map-choice ${kind.split('-')[0]}`, 'data-map': kind, text });
      button.addEventListener('click', () => {
        app.overlay.choice = kind;
        app.overlay.refresh();
      });
      const range = m ? element('span', { class: 'explain-range', text: `up to ${formatNumber(m.max)} bits` }) : element('span');
      return element('li', {}, [button, range]);
    }));
    this.results.hidden = false;
    this.results.classList.toggle('preview', preview);
  }

  async #describeFix() {
    const { fix, target } = this.answer;
    const name = shortLabel(target.label);
    this.fixMask = fix?.mask ? await grayMapFromBase64(fix.mask, 0, 255) : null;
    this.fixButton.disabled = !fix?.applied;
    this.regionButton.disabled = !fix?.applied;
    if (!fix?.applied) {
      this.fixText.textContent = fix?.message || '';
      return;
    }
    const after = fix.target;
    const change = `removing ${percent(fix.fraction)} of the image takes p(${name}) from `
      + `${percent(fix.probability_before)} to ${percent(after.probability)}`;
    if (fix.rank_before === 1) {
      // Already the top class: say what the fix does to it, not that it "becomes" the top.
      this.fixText.textContent = `“${name}” is already the top class; ${change}`
        + (after.rank === 1 ? ': it stays on top.' : `, and “${shortLabel(fix.top1.label)}” takes the top.`);
    } else {
      this.fixText.textContent = `${change[0].toUpperCase()}${change.slice(1)} (rank ${fix.rank_before} → ${after.rank})`
        + (fix.became_top1 ? ': it becomes the top class.' : `; the top class is ${shortLabel(fix.top1.label)}.`);
    }
  }

  #regionPinned() {
    return this.regionButton.getAttribute('aria-pressed') === 'true';
  }

  #setRegionPinned(on) {
    this.regionButton.setAttribute('aria-pressed', String(on));
    this.regionButton.textContent = on ? 'Hide the region' : 'Show the region';
    this.#showRegion(on);
  }

  #toggleRegion() {
    this.#setRegionPinned(!this.#regionPinned());
  }

  /** The region fix-it removes, hatched on the modified image (only while it shows the explained image). */
  #showRegion(on) {
    const visible = on && this.fixMask && this.canvas === app.currentCanvas() && !this.fixButton.disabled;
    app.overlay.showRegion(visible ? this.fixMask : null);
  }

  async applyFix() {
    const fix = this.answer?.fix;
    if (!fix?.applied) return;
    this.fixButton.disabled = true;
    const mask = this.fixMask;
    this.#setRegionPinned(false);
    try {
      const maskCanvas = document.createElement('canvas');
      maskCanvas.width = mask.width;
      maskCanvas.height = mask.height;
      const image = new ImageData(mask.width, mask.height);
      mask.levels.forEach((v, p) => image.data.set([255, 255, 255, v >= 128 ? 255 : 0], p * 4));
      maskCanvas.getContext('2d').putImageData(image, 0, 0);
      await app.applyInpaintedImage(fix.image, {
        note: `Fix it: removed what hinders ${shortLabel(this.answer.target.label)}`,
        backend: fix.backend, mask: maskCanvas,
      });
    } catch (err) {
      app.showError(err, 'The fix could not be applied');
      this.fixButton.disabled = false;
    }
  }
}

app.ready.then(() => {
  if (app.explainPanel) window.explainPanel = new ExplainPanel(app.explainPanel);
});
