// The Explain panel: "undesirable pixels" (Kang, Jung & Lee 2019) for the image
// being edited. POST /api/v1/explain with Accept: application/x-ndjson streams
// {"done", "total"} lines (a progress bar) and then the maps: what hinders the
// target class, what supports it, and what supports each competing class,
// drawn over the image in three distinct colour maps whose legends give the
// raw range in bits. "Fix it" applies the counterfactual the server computed
// (the strongest hindering region inpainted) as an ordinary undoable edit.

import { ApiError } from './api.js';
import { app } from './app.js';
import { camFromBase64 } from './colormap.js';
import { makeCanvas } from './imaging.js';
import { percent, shortLabel } from './tables.js';

const EXPLAIN_URL = new URL('api/v1/explain', document.baseURI);
const VIEW_SIZE = 260;

/** A 256-colour table interpolated through `stops` (hex colours, low -> high). */
function rampLut(stops) {
  const rgb = stops.map((hex) => [1, 3, 5].map((i) => parseInt(hex.substr(i, 2), 16)));
  const lut = new Uint8Array(256 * 3);
  for (let v = 0; v < 256; v++) {
    const x = (v / 255) * (rgb.length - 1);
    const i = Math.min(rgb.length - 2, Math.floor(x));
    const t = x - i;
    for (let c = 0; c < 3; c++) lut[v * 3 + c] = Math.round(rgb[i][c] * (1 - t) + rgb[i + 1][c] * t);
  }
  return lut;
}

// Distinct sequential maps that stay distinct for colour-blind people:
// orange-red (hinders), blue (supports), purple (competitor).
const MAPS = {
  hinder: { title: 'Hinders', lut: rampLut(['#fff5eb', '#fd8d3c', '#d94801', '#7f2704']) },
  support: { title: 'Supports', lut: rampLut(['#f7fbff', '#6baed6', '#2171b5', '#08306b']) },
  competitor: { title: 'Competitor', lut: rampLut(['#fcfbfd', '#9e9ac8', '#6a51a3', '#3f007d']) },
};

/** Read an NDJSON response: onLine(object) for every line; resolves at the end. */
async function readLines(response, onLine) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 1);
      if (line) onLine(JSON.parse(line));
    }
    if (done) break;
  }
  if (buffer.trim()) onLine(JSON.parse(buffer));
}

/** POST /api/v1/explain, streaming; onProgress(done, total); resolves with the answer. */
export async function explainStream(parts, { signal, onProgress }) {
  const form = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (value === undefined || value === null) continue;
    if (value instanceof Blob) form.append(name, value, `${name}.png`);
    else form.append(name, String(value));
  }
  let response;
  try {
    response = await fetch(EXPLAIN_URL, {
      method: 'POST', body: form, signal, headers: { Accept: 'application/x-ndjson' },
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError('The server cannot be reached. Is the gateway running?', 0, 'network');
  }
  if (!response.ok) {
    let error = null;
    try { error = (await response.json()).error; } catch { error = null; }
    throw new ApiError(error?.message || `The server answered HTTP ${response.status}.`,
      response.status, error?.code || 'http_error');
  }
  let answer = null;
  await readLines(response, (line) => {
    if (line.error) throw new ApiError(line.error.message, 200, line.error.code);
    if ('hinder' in line) answer = line;
    else if ('done' in line) onProgress(line.done, line.total);
  });
  if (!answer) throw new ApiError('The explanation stopped before it was complete.', 200, 'incomplete');
  return answer;
}

/** Draw `image` (a canvas) with a map over it: opacity grows with the map's level. */
function drawOverlay(canvas, image, map, lut) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  if (!map) return;
  const tile = makeCanvas(map.width, map.height);
  const data = new ImageData(map.width, map.height);
  for (let p = 0, i = 0; p < map.levels.length; p++, i += 4) {
    const v = map.levels[p];
    data.data[i] = lut[v * 3];
    data.data[i + 1] = lut[v * 3 + 1];
    data.data[i + 2] = lut[v * 3 + 2];
    data.data[i + 3] = Math.round(40 + v * 0.75); // faint where low, strong where high
  }
  tile.getContext('2d').putImageData(data, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tile, 0, 0, canvas.width, canvas.height);
}

function drawRamp(canvas, lut) {
  const ctx = canvas.getContext('2d');
  for (let x = 0; x < canvas.width; x++) {
    const v = Math.round((x / Math.max(1, canvas.width - 1)) * 255) * 3;
    ctx.fillStyle = `rgb(${lut[v]}, ${lut[v + 1]}, ${lut[v + 2]})`;
    ctx.fillRect(x, 0, 1, canvas.height);
  }
}

const bits = (value) => `${value.toFixed(2)} bits`;

function element(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

/** One map view: title, canvas over the image, legend with the raw range. */
class MapView {
  constructor(kind, extra = null) {
    this.kind = kind;
    this.canvas = element('canvas', { width: VIEW_SIZE, height: VIEW_SIZE, class: 'explain-canvas', 'data-map': kind });
    this.ramp = element('canvas', { width: 160, height: 10, class: 'explain-ramp' });
    drawRamp(this.ramp, MAPS[kind].lut);
    this.low = element('span', { class: 'explain-low' });
    this.high = element('span', { class: 'explain-high' });
    this.caption = element('p', { class: 'explain-caption' });
    this.root = element('figure', { class: `explain-view ${kind}` }, [
      element('figcaption', {}, [element('strong', { text: MAPS[kind].title }), ...(extra ? [extra] : [])]),
      this.canvas,
      element('div', { class: 'explain-legend' }, [this.low, this.ramp, this.high]),
      this.caption,
    ]);
  }

  async show(image, item, caption) {
    const map = item ? await camFromBase64(item.png) : null;
    drawOverlay(this.canvas, image, map, MAPS[this.kind].lut);
    this.low.textContent = item ? bits(item.min) : '';
    this.high.textContent = item ? bits(item.max) : '';
    this.caption.textContent = caption;
    this.canvas.dataset.drawn = item ? 'true' : 'false';
  }
}

class ExplainPanel {
  constructor(panel) {
    this.panel = panel;
    this.controller = null;
    this.answer = null;
    this.image = null;
    this.target = element('select', { id: 'explain-target', 'aria-label': 'Class to explain' });
    this.run = element('button', { class: 'button primary', type: 'button', id: 'explain-run', text: 'Explain' });
    this.cancel = element('button', { class: 'button ghost', type: 'button', text: 'Cancel', hidden: '' });
    this.progress = element('progress', { max: 1, value: 0, hidden: '' });
    this.status = element('span', { class: 'explain-status', 'aria-live': 'polite' });
    this.competitor = element('select', { 'aria-label': 'Competing class' });
    this.fixButton = element('button', { class: 'button', type: 'button', id: 'explain-fix', text: 'Fix it', disabled: '' });
    this.fixText = element('p', { class: 'explain-fix-text' });
    this.views = {
      hinder: new MapView('hinder'),
      support: new MapView('support'),
      competitor: new MapView('competitor', this.competitor),
    };
    this.results = element('div', { class: 'explain-results', hidden: '' }, [
      element('div', { class: 'explain-views' }, Object.values(this.views).map((v) => v.root)),
      element('div', { class: 'explain-fix' }, [this.fixButton, this.fixText]),
    ]);
    panel.replaceChildren(
      element('div', { class: 'explain-head' }, [
        element('h2', { text: 'Explain: undesirable pixels' }),
        element('p', {
          class: 'explain-intro',
          text: 'Every window of the image is removed in turn and the image reclassified. '
            + 'Where removal raises the chosen class, those pixels hinder it; where it lowers '
            + 'it, they support it. Weights of evidence in bits (log2 odds).',
        }),
      ]),
      element('div', { class: 'explain-controls' }, [
        element('label', { for: 'explain-target', text: 'Class' }), this.target,
        this.run, this.cancel, this.progress, this.status,
      ]),
      this.results,
    );
    panel.hidden = false;
    this.run.addEventListener('click', () => this.start());
    this.cancel.addEventListener('click', () => this.stop('Cancelled.'));
    this.competitor.addEventListener('change', () => this.showCompetitor());
    this.fixButton.addEventListener('click', () => this.applyFix());
    app.events.addEventListener('image', () => { this.stop(''); this.clear(); this.fillTargets(); });
    app.events.addEventListener('change', () => { this.fillTargets(); this.markStale(); });
    this.fillTargets();
  }

  /** The current image's top classes, the first selected (the default target). */
  fillTargets() {
    const top = app.history.current?.top || [];
    const keep = this.target.value;
    this.target.replaceChildren(...top.map((c) => element('option', {
      value: c.classId, text: `${shortLabel(c.label)} (${percent(c.probability)})`,
    })));
    if (top.some((c) => String(c.classId) === keep)) this.target.value = keep;
    this.run.disabled = !top.length;
  }

  clear() {
    this.answer = null;
    this.results.hidden = true;
    this.status.textContent = '';
  }

  markStale() {
    if (this.answer && this.image !== app.currentCanvas()) {
      this.status.textContent = 'The image changed since this explanation: run it again.';
      this.fixButton.disabled = true;
    }
  }

  stop(message) {
    if (this.controller) this.controller.abort(); // the server cancels its work too
    this.controller = null;
    this.running(false);
    if (message !== undefined) this.status.textContent = message;
  }

  running(on) {
    this.run.disabled = on;
    this.cancel.hidden = !on;
    this.progress.hidden = !on;
  }

  async start() {
    const blob = app.currentBlob();
    if (!blob) return;
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    this.image = app.currentCanvas();
    this.running(true);
    this.progress.value = 0;
    this.status.textContent = 'Starting…';
    try {
      const answer = await explainStream({
        image: blob, target: this.target.value, backend: app.selectedBackend(), fix: 'true',
      }, {
        signal: controller.signal,
        onProgress: (done, total) => {
          this.progress.max = total;
          this.progress.value = done;
          this.status.textContent = `${done} / ${total} windows`;
        },
      });
      if (this.controller !== controller) return;
      this.answer = answer;
      await this.render();
      const ms = answer.timing_ms?.total;
      this.status.textContent = `${answer.windows} windows of ${answer.window} px`
        + (ms ? ` in ${(ms / 1000).toFixed(1)} s` : '') + ` (${answer.backend}).`;
    } catch (err) {
      if (err.name === 'AbortError') return;
      this.status.textContent = '';
      app.showError(err, 'The explanation failed');
    } finally {
      if (this.controller === controller) { this.controller = null; this.running(false); }
    }
  }

  async render() {
    const { answer, image } = this;
    const name = shortLabel(answer.target.label);
    this.results.hidden = false;
    await this.views.hinder.show(image, answer.hinder, `Removing these raises p(${name}).`);
    await this.views.support.show(image, answer.support, `Removing these lowers p(${name}).`);
    this.competitor.replaceChildren(...answer.competitors.map((c, i) => element('option', {
      value: i, text: `${shortLabel(c.label)} (${percent(c.probability)})`,
    })));
    await this.showCompetitor();
    this.describeFix();
  }

  async showCompetitor() {
    const item = this.answer?.competitors[Number(this.competitor.value)];
    await this.views.competitor.show(this.image, item || null,
      item ? `Where the model sees ${shortLabel(item.label)}.` : 'No competing class.');
  }

  describeFix() {
    const fix = this.answer.fix;
    const name = shortLabel(this.answer.target.label);
    this.fixButton.disabled = !fix?.applied;
    if (!fix?.applied) {
      this.fixText.textContent = fix?.message || '';
      return;
    }
    const after = fix.target;
    this.fixText.textContent = `Removing ${percent(fix.fraction)} of the image takes p(${name}) `
      + `from ${percent(fix.probability_before)} (rank ${fix.rank_before}) to `
      + `${percent(after.probability)} (rank ${after.rank})`
      + (fix.became_top1 ? `: it becomes the top class.` : `; the top class is ${shortLabel(fix.top1.label)}.`);
  }

  async applyFix() {
    const fix = this.answer?.fix;
    if (!fix?.applied) return;
    this.fixButton.disabled = true;
    try {
      await app.applyInpaintedImage(fix.image, {
        note: `Fix it: removed what hinders ${shortLabel(this.answer.target.label)}`,
        backend: fix.backend,
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
