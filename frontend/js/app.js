// Wiring of the page: choose a photo, brush strokes -> POST /edit, history,
// tables and CAM overlays. The `app` object exported at the end is what other
// modules (the Explain panel, js/explain.js) build on.

import * as api from './api.js';
import { BackendMenu } from './backends.js';
import { Brush } from './brush.js';
import { drawCam, drawLegend } from './colormap.js';
import { blobToBase64, ensureCams, ensureProbs, makeEntry, tableRows } from './entries.js';
import { EditHistory } from './history.js';
import { canvasFromBase64Png, canvasToPng, centreCropSquare, downloadBlob, showOn } from './imaging.js';
import { PhotoPicker } from './picker.js';
import { PredictionTable, shortLabel } from './tables.js';
import { ClassTracker, MAX_TRACKED } from './track.js';
import { Messages, Spinner, Tutorial, bindShortcuts } from './ui.js';

const $ = (id) => document.getElementById(id);
const PINNED_COUNT = 5; // the original's top-5 follow every edit, as in the original demo
const ALL_CLASSES = 1000; // the original is classified once for all probabilities

const el = {
  gallery: $('gallery'), upload: $('upload-input'), size: $('size-select'),
  brushSize: $('brush-size'), brushSizeValue: $('brush-size-value'), backend: $('backend-select'),
  undo: $('undo-button'), redo: $('redo-button'), reset: $('reset-button'), download: $('download-button'),
  camOpacity: $('cam-opacity'), camOpacityValue: $('cam-opacity-value'), legend: $('cam-legend'),
  originalCanvas: $('original-canvas'), originalCam: $('original-cam'), modifiedCanvas: $('modified-canvas'),
  modifiedCam: $('modified-cam'), paint: $('paint-canvas'), cursor: $('brush-cursor'),
  originalCaption: $('original-caption'), modifiedCaption: $('modified-caption'),
  tableModes: [...document.querySelectorAll('[data-table-mode]')], compare: $('compare'),
  camStatus: $('cam-status'), explainPanel: $('explain-panel'),
};

const messages = new Messages(document);
const spinner = new Spinner($('spinner'), $('spinner-text'), el.compare);
const tutorial = new Tutorial($('tutorial'));
const history = new EditHistory();
const brush = new Brush(el.paint, el.cursor, { size: Number(el.brushSize.value) });
const events = new EventTarget();

const state = {
  info: null,
  size: Number(el.size.value),
  source: null, // the chosen photo as an ImageBitmap, kept to re-crop at another size
  sourceTitle: '',
  generation: 0, // bumps on every new photo: answers for an older one are dropped
  controller: new AbortController(),
  selectedClass: null,
  tableMode: 'pinned',
  comparing: false, // C held: the modified side shows the original
  trackedIds: [], // classes the person added to the modified table
  strokeQueue: [], // finished strokes waiting for the edit in flight
  editing: false,
};

const backends = new BackendMenu(el.backend, messages);
const picker = new PhotoPicker({ gallery: el.gallery, upload: el.upload, messages, onPhoto: loadPhoto });
const tracker = new ClassTracker({
  form: $('track-form'), input: $('track-input'), list: $('label-list'), clear: $('track-clear'),
  messages, onAdd: followClass, onClear: unfollowAll,
});
const originalTable = new PredictionTable($('original-table'), { onSelect: selectClass });
const modifiedTable = new PredictionTable($('modified-table'), { showChange: true, onSelect: selectClass });

const originalTopIds = () => (history.original ? history.original.top.slice(0, PINNED_COUNT).map((p) => p.classId) : []);
/** The classes every edit reports: the original's top 5 and the ones the person follows. */
const pinnedIds = () => [...new Set([...originalTopIds(), ...state.trackedIds])];

function camIdsForEdit() {
  const ids = new Set(originalTopIds());
  if (state.selectedClass !== null) ids.add(state.selectedClass);
  return [...ids];
}

// ---------- choosing a photo ----------

async function loadPhoto(bitmap, title) {
  state.generation += 1;
  const generation = state.generation;
  state.controller.abort();
  state.controller = new AbortController();
  state.strokeQueue = [];
  state.source = bitmap;
  state.sourceTitle = title;
  state.selectedClass = null;
  state.trackedIds = [];
  tracker.setCount(0);
  brush.enabled = false;
  brush.reset(state.size);
  messages.clearNotice();

  const canvas = centreCropSquare(bitmap, state.size);
  showOn(el.originalCanvas, canvas);
  showOn(el.modifiedCanvas, canvas);
  for (const cam of [el.originalCam, el.modifiedCam]) {
    cam.width = state.size;
    cam.height = state.size;
  }
  originalTable.render([], null, 'Classifying…');
  modifiedTable.render([], null, 'Classifying…');
  el.originalCaption.textContent = `${title} · ${state.size}×${state.size}`;
  const blob = await canvasToPng(canvas);
  const answer = await spinner.during(
    api.classify({ image: blob, topK: ALL_CLASSES }, { signal: state.controller.signal }), 'Classifying…');
  if (generation !== state.generation) return;
  const entry = await makeEntry(canvas, blob, answer, { kind: 'original', title });
  history.start(entry);
  brush.enabled = true;
  events.dispatchEvent(new CustomEvent('image', { detail: { title, size: state.size } }));
  // Fetch the top-5 CAMs now, so a click on a row shows its map at once.
  ensureCams(entry, originalTopIds(), state.controller.signal).catch((err) => messages.showError(err, 'Class activation maps'));
}

// ---------- brush strokes -> edits ----------

function queueStroke(mask) {
  state.strokeQueue.push(mask);
  pumpStrokes();
}

/** One edit at a time: each stroke is applied to the result of the previous one. */
async function pumpStrokes() {
  if (state.editing || !state.strokeQueue.length) return;
  state.editing = true;
  updateControls();
  const mask = state.strokeQueue.shift();
  const generation = state.generation;
  try {
    const current = history.current;
    if (!current) throw new Error('Choose a photo first.');
    if (mask.width !== current.canvas.width || mask.height !== current.canvas.height) {
      throw new Error(`The stroke (${mask.width}×${mask.height}) does not match the image ` +
        `(${current.canvas.width}×${current.canvas.height}).`);
    }
    const backend = backends.value;
    const answer = await spinner.during(api.edit({
      image: current.blob, mask: await canvasToPng(mask), backend, topK: PINNED_COUNT,
      classes: pinnedIds(), cam: camIdsForEdit(),
    }, { signal: state.controller.signal }), `Inpainting with ${backend || 'the default backend'}…`);
    if (generation !== state.generation) return;
    await pushAnswer(answer, { kind: 'edit', requested: backend });
  } catch (err) {
    if (generation === state.generation) {
      messages.showError(err, 'The edit failed');
      state.strokeQueue = [];
      brush.clearPending();
    }
  } finally {
    brush.settle(mask);
    state.editing = false;
    updateControls();
    pumpStrokes();
  }
}

/** Turn an edit answer into a history entry, and say so when a fallback backend did the work. */
async function pushAnswer(answer, extra) {
  const canvas = await canvasFromBase64Png(answer.image, state.size);
  const entry = await makeEntry(canvas, api.base64ToBlob(answer.image), answer,
    { ...extra, backend: answer.backend, fallback: Boolean(answer.fallback), ms: answer.timing_ms?.total });
  history.push(entry);
  if (entry.fallback) {
    messages.showNotice(`The “${extra.requested || 'requested'}” backend was unavailable, ` +
      `so “${answer.backend}” inpainted this stroke.`);
    backends.refresh().then((info) => { if (info) state.info = info; });
  }
  return entry;
}

// ---------- CAMs ----------

async function showCams() {
  const id = state.selectedClass;
  const pairs = [[history.original, el.originalCam], [history.current, el.modifiedCam]];
  if (id === null || !history.current) {
    pairs.forEach(([, canvas]) => drawCam(canvas, null));
    el.camStatus.textContent = 'Click a row of a table to see where the model finds that class.';
    return;
  }
  const label = shortLabel((history.original.probs.get(id) || history.current.probs.get(id) || {}).label || id);
  el.camStatus.textContent = `Showing where the model sees “${label}” (class ${id}).`;
  try {
    await Promise.all(pairs.map(([entry]) => spinner.during(ensureCams(entry, [id], state.controller.signal), 'Computing the activation map…')));
  } catch (err) {
    messages.showError(err, 'Class activation map');
    return;
  }
  if (state.selectedClass !== id) return; // another row was chosen meanwhile
  for (const [entry, canvas] of pairs) {
    drawCam(canvas, entry.cams.get(id));
  }
}

function followClass(classId) {
  if (!history.original) return;
  if (!pinnedIds().includes(classId) && state.trackedIds.length < MAX_TRACKED) state.trackedIds.push(classId);
  tracker.setCount(state.trackedIds.length);
  state.tableMode = 'pinned';
  selectClass(classId);
}

function unfollowAll() {
  state.trackedIds = [];
  tracker.setCount(0);
  render();
}

function selectClass(classId) {
  state.selectedClass = classId;
  render();
}

// ---------- rendering ----------

function render() {
  const original = history.original;
  const current = history.current;
  if (!original) return;
  showOn(el.originalCanvas, original.canvas);
  showOn(el.modifiedCanvas, current.canvas);
  const ownIds = current.top.slice(0, PINNED_COUNT).map((p) => p.classId);
  const rowIds = state.tableMode === 'own' ? ownIds : pinnedIds();
  originalTable.render(original.top.slice(0, PINNED_COUNT), state.selectedClass);
  modifiedTable.render(tableRows(current, rowIds, original)
    .map((row) => ({ ...row, tracked: state.trackedIds.includes(row.classId) })), state.selectedClass);
  // A followed class added after this image was classified: ask for its probability.
  ensureProbs(current, rowIds, state.controller.signal)
    .then((fetched) => fetched && history.current === current && render())
    .catch((err) => messages.showError(err, 'Classification'));
  const top1 = original.top[0];
  el.originalCaption.textContent = `${original.title} · ${original.canvas.width}×${original.canvas.height}` +
    (top1 ? ` · “${shortLabel(top1.label)}”` : '');
  const edits = history.depth;
  el.modifiedCaption.textContent = current.kind === 'original' ? 'Brush over the image to remove a region'
    : `${edits} edit${edits === 1 ? '' : 's'}` + (current.backend ? ` · last by ${current.backend}` : '') +
      (current.ms ? ` in ${Math.round(current.ms)} ms` : '') +
      (current.kind === 'reset' ? ' · reset to the original' : '') + (current.note ? ` · ${current.note}` : '');
  updateControls();
  showCams();
}

function updateControls() {
  const ready = Boolean(history.current);
  el.undo.disabled = !history.canUndo || state.editing;
  el.redo.disabled = !history.canRedo || state.editing;
  el.reset.disabled = !ready || state.editing || history.current === history.original ||
    history.current.kind === 'reset';
  el.download.disabled = !ready;
  el.tableModes.forEach((b) => b.setAttribute('aria-checked', String(b.dataset.tableMode === state.tableMode)));
}

// ---------- commands ----------

function undo() {
  if (!state.editing) history.undo();
}

function redo() {
  if (!state.editing) history.redo();
}

function resetToOriginal() {
  if (state.editing || !history.original || history.current === history.original) return;
  history.push({ ...history.original, kind: 'reset' });
}

/** While C is held, the modified side shows the original, for a quick before/after. */
function showOriginalInPlace(on) {
  if (!history.original || on === state.comparing) return;
  state.comparing = on;
  showOn(el.modifiedCanvas, on ? history.original.canvas : history.current.canvas);
  el.modifiedCanvas.closest('.stage').classList.toggle('comparing', on);
}

function setBrushSize(size) {
  brush.setSize(size);
}

function download() {
  if (!history.current) return;
  downloadBlob(history.current.blob, `${(state.sourceTitle || 'image').replace(/[^\w-]+/g, '_')}-edit${history.depth}.png`);
}

// ---------- set-up ----------

/** Working sizes the server accepts (its pixel and side limits). */
function setUpSizes(info) {
  const limits = info.limits || {};
  for (const option of el.size.options) {
    const side = Number(option.value);
    option.disabled = (limits.max_side && side > limits.max_side) || (limits.max_pixels && side * side > limits.max_pixels);
  }
  if (el.size.selectedOptions[0]?.disabled) el.size.value = [...el.size.options].find((o) => !o.disabled)?.value;
  state.size = Number(el.size.value);
  setBrushLimits();
}

/** The brush can cover up to a third of the picture, whatever the working size. */
function setBrushLimits() {
  brush.setLimits(2, Math.round(state.size / 3));
  el.brushSize.max = String(brush.max);
  el.brushSize.value = String(brush.size);
}

function wireControls() {
  brush.addEventListener('stroke', (e) => queueStroke(e.detail.mask));
  brush.addEventListener('size', (e) => {
    el.brushSize.value = String(e.detail.size);
    el.brushSizeValue.textContent = `${e.detail.size} px`;
  });
  el.brushSize.addEventListener('input', () => setBrushSize(Number(el.brushSize.value)));
  el.undo.addEventListener('click', undo);
  el.redo.addEventListener('click', redo);
  el.reset.addEventListener('click', resetToOriginal);
  el.download.addEventListener('click', download);
  el.camOpacity.addEventListener('input', () => {
    const opacity = Number(el.camOpacity.value) / 100;
    document.documentElement.style.setProperty('--cam-opacity', String(opacity));
    el.camOpacityValue.textContent = `${el.camOpacity.value}%`;
  });
  el.size.addEventListener('change', () => {
    const old = state.size;
    state.size = Number(el.size.value);
    // Keep the brush covering the same part of the picture.
    setBrushLimits();
    brush.setSize((brush.size * state.size) / old);
    if (state.source) {
      if (history.depth) messages.showNotice(`Working size is now ${state.size} px: the photo was reloaded and its edits cleared.`);
      loadPhoto(state.source, state.sourceTitle).catch((err) => messages.showError(err, 'Could not reload the photo'));
    }
  });
  for (const button of el.tableModes) {
    button.addEventListener('click', () => {
      state.tableMode = button.dataset.tableMode;
      render();
    });
  }
  $('help-button').addEventListener('click', () => tutorial.open());
  history.addEventListener('change', () => {
    render();
    events.dispatchEvent(new CustomEvent('change', { detail: { index: history.index } }));
  });
  bindShortcuts({
    undo, redo,
    smaller: () => setBrushSize(brush.size - Math.max(1, Math.round(brush.size * 0.15))),
    larger: () => setBrushSize(brush.size + Math.max(1, Math.round(brush.size * 0.15))),
    help: () => tutorial.open(),
    compare: showOriginalInPlace,
  });
}

async function start() {
  drawLegend(el.legend);
  wireControls();
  try {
    state.info = await api.getInfo();
    backends.fill(state.info);
    setUpSizes(state.info);
  } catch (err) {
    messages.showError(err, 'The server did not describe itself');
  }
  tracker.load().catch((err) => messages.showError(err, 'The class names could not be loaded'));
  try {
    const images = await picker.showGallery();
    const first = el.gallery.querySelector('.thumb');
    if (first && images.length) first.click();
  } catch (err) {
    messages.showError(err, 'The gallery could not be loaded');
  }
}

/**
 * What other modules (js/explain.js) use. Await `app.ready` before reading it.
 *  - currentCanvas()/currentBlob(): the image being edited (working copy, PNG)
 *  - applyInpaintedImage(base64Png|Blob, {note, backend}): classify it and push it
 *    as an ordinary undoable edit
 *  - showError(err, context) / showNotice(text) / busy(promise, label): page feedback
 *  - events: 'image' (a new photo was chosen), 'change' (the history moved)
 *  - history.current / originalEntry(): entries { canvas, blob, top (the top 5, ranked),
 *    probs (Map classId -> {label, probability, rank}: all 1000 for the original),
 *    cams (Map classId -> {levels, width, height}), kind, backend, note }
 * Drawing helpers live in colormap.js (camFromBase64, drawCam, colourise, INFERNO);
 * the HTTP client in api.js.
 */
export const app = {
  api,
  history,
  events,
  explainPanel: el.explainPanel,
  ready: start(),
  get info() { return state.info; },
  get size() { return state.size; },
  get selectedClass() { return state.selectedClass; },
  selectedBackend: () => backends.value,
  currentCanvas: () => history.current?.canvas || null,
  currentBlob: () => history.current?.blob || null,
  originalEntry: () => history.original,
  pinnedClassIds: pinnedIds,
  selectClass,
  showError: (err, context) => messages.showError(err, context),
  showNotice: (text) => messages.showNotice(text),
  busy: (promise, label) => spinner.during(promise, label),
  async applyInpaintedImage(image, { note = 'from Explain', backend } = {}) {
    const blob = image instanceof Blob ? image : api.base64ToBlob(image);
    const base64 = image instanceof Blob ? await blobToBase64(image) : image;
    const answer = await spinner.during(api.classify({
      image: blob, topK: PINNED_COUNT, classes: pinnedIds(), cam: camIdsForEdit(),
    }, { signal: state.controller.signal }), 'Classifying…');
    return pushAnswer({ ...answer, image: base64, backend, fallback: false }, { kind: 'external', note, requested: backend });
  },
};
