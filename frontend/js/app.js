// Wiring of the page: choose a photo, tools and edits, history, tables, the map
// over the images and sessions. The `app` object exported at the end is what
// other modules (the Explain panel, js/explain.js) build on.

import * as api from './api.js';
import { BackendMenu } from './backends.js';
import { Brush } from './brush.js';
import { chooseSquare } from './crop.js';
import { EditRunner, PINNED_COUNT } from './edits.js';
import { ensureProbs, makeEntry, resetEntry, tableRows } from './entries.js';
import { EditHistory } from './history.js';
import { canvasToPng, centredSquare, downloadBlob, workingCopy } from './imaging.js';
import { ModelSwitch } from './models.js';
import { MapOverlay } from './overlays.js';
import { PhotoPicker } from './picker.js';
import { StateChanges } from './statechanges.js';
import { Stages, holdToCompare } from './stages.js';
import { SelectTool } from './select.js';
import { PredictionTable, shortLabel } from './tables.js';
import { ToolSwitch } from './tools.js';
import { ClassTracker, MAX_TRACKED, findClass } from './track.js';
import { Tutorial } from './tutorial.js';
import { Messages, Spinner, bindShortcuts } from './ui.js';

const $ = (id) => document.getElementById(id);

const el = {
  gallery: $('gallery'), upload: $('upload-input'), size: $('size-select'), framing: $('framing-select'),
  brushSize: $('brush-size'), brushSizeValue: $('brush-size-value'), backend: $('backend-select'),
  undo: $('undo-button'), redo: $('redo-button'), reset: $('reset-button'), download: $('download-button'),
  camOpacity: $('cam-opacity'), camOpacityValue: $('cam-opacity-value'),
  originalCaption: $('original-caption'), modifiedCaption: $('modified-caption'),
  tableModes: [...document.querySelectorAll('[data-table-mode]')], workspace: $('compare'),
  explainPanel: $('explain-panel'), exportButton: $('session-export'), sessionInput: $('session-input'),
  confirm: $('confirm-dialog'), crop: $('crop-dialog'),
};

const messages = new Messages(document);
const spinner = new Spinner($('spinner'), $('spinner-text'), el.workspace);
const tutorial = new Tutorial($('tutorial'));
const history = new EditHistory();
const brush = new Brush($('paint-canvas'), $('brush-cursor'), { size: Number(el.brushSize.value) });
const events = new EventTarget();

const state = {
  info: null,
  size: Number(el.size.value),
  framing: { kind: 'whole' }, // how the working copy is cut from the photo
  source: null, // the chosen photo as an ImageBitmap, kept to make another working copy
  sourceTitle: '',
  generation: 0, // bumps on every new photo or session: answers for an older one are dropped
  controller: new AbortController(),
  selectedClass: null,
  tableMode: 'pinned',
  trackedIds: [], // classes the person added to the modified table
};

const stages = new Stages({
  workspace: el.workspace, originalStage: $('original-stage'), modifiedStage: $('modified-stage'),
  originalCanvas: $('original-canvas'), modifiedCanvas: $('modified-canvas'), originalMap: $('original-cam'),
  modifiedMap: $('modified-cam'), region: $('region-preview'), below: [document.querySelector('.mapbar'), document.querySelector('.dock')],
});
const backends = new BackendMenu(el.backend, messages, $('backend-description'));
const labelOf = (id) => (history.original?.probs.get(id) || history.current?.probs.get(id))?.label
  || tracker.labels[id] || `class ${id}`;
const overlay = new MapOverlay({
  select: $('map-select'), legend: $('map-legend'), low: $('legend-low'), high: $('legend-high'),
  ramp: $('legend-ramp'), text: $('legend-text'), status: $('cam-status'),
  originalMap: $('original-cam'), modifiedMap: $('modified-cam'), region: $('region-preview'),
}, { stages, signal: () => state.controller.signal, labelOf, busy: (p, l) => spinner.during(p, l),
  showError: (err, context) => messages.showError(err, context) });
const picker = new PhotoPicker({ gallery: el.gallery, upload: el.upload, messages, onPhoto: choosePhoto, onSession: (file) => changes.open(file) });
const tracker = new ClassTracker({
  form: $('track-form'), input: $('track-input'), list: $('label-list'), clear: $('track-clear'),
  messages, onAdd: followClass, onClear: unfollowAll,
});
const originalTable = new PredictionTable($('original-table'), { onSelect: selectClass });
const modifiedTable = new PredictionTable($('modified-table'), { showChange: true, onSelect: selectClass });
const tools = new ToolSwitch(document.querySelector('.tool-switch'));
const models = new ModelSwitch(document, { state, history, tracker, overlay, spinner, messages, brush, events,
  tables: [originalTable, modifiedTable], signal: () => state.controller.signal, pinnedIds: () => pinnedIds(), camIds: () => camIdsForEdit(),
  selectClass, render });

const originalTopIds = () => (history.original ? history.original.top.slice(0, PINNED_COUNT).map((p) => p.classId) : []);
/** The classes every edit reports: the original's top 5 and the ones the person follows. */
const pinnedIds = () => [...new Set([...originalTopIds(), ...state.trackedIds])];

function camIdsForEdit() {
  if (!models.cam) return []; // the chosen model has none: cam=none
  const ids = new Set(originalTopIds());
  if (state.selectedClass !== null) ids.add(state.selectedClass);
  return [...ids];
}

const edits = new EditRunner({
  history, backends, spinner, messages, brush, signal: () => state.controller.signal,
  generation: () => state.generation, pinnedIds, camIds: camIdsForEdit, models: () => models.parts(),
  onFallback: () => backends.refresh().then((info) => { if (info) state.info = info; }),
});
const select = new SelectTool({ surface: $('paint-canvas'), outline: $('select-canvas'), cursor: $('select-cursor'),
  stage: $('modified-stage'), accept: $('select-accept'), grow: $('select-grow'), shrink: $('select-shrink'),
  cancel: $('select-cancel'), status: $('select-status'), keys: 'select-keys' },
{ history, edits, spinner, messages, signal: () => state.controller.signal });

// ---------- choosing a photo ----------

/** A new page state: drop what is in flight for the old one. */
function startOver() {
  state.generation += 1;
  state.controller.abort();
  state.controller = new AbortController();
  edits.clear();
  stages.setComparing(false);
  messages.clearNotice();
  return state.generation;
}

/** A photo was chosen: a square crop asks where (unless the photo is square). */
async function choosePhoto(bitmap, title) {
  let framing = { kind: 'whole' };
  if (el.framing.value === 'square') {
    framing = centredSquare(bitmap);
    if (bitmap.width !== bitmap.height) framing = await chooseSquare(el.crop, bitmap, framing);
    if (!framing) return; // cancelled: the current photo stays
  }
  await loadPhoto(bitmap, title, framing);
}

async function loadPhoto(bitmap, title, framing) {
  const generation = startOver();
  state.source = bitmap;
  state.sourceTitle = title;
  state.framing = framing;
  state.selectedClass = null;
  state.trackedIds = [];
  tracker.setCount(0);
  overlay.classId = null;
  overlay.choice = 'none';
  brush.enabled = false;

  const canvas = workingCopy(bitmap, state.size, framing);
  brush.reset(canvas.width, canvas.height);
  stages.setSize(canvas.width, canvas.height);
  stages.show({ canvas }, { canvas });
  originalTable.render([], null, 'Classifying…');
  modifiedTable.render([], null, 'Classifying…');
  el.originalCaption.textContent = `${title} · ${canvas.width}×${canvas.height}`;
  el.modifiedCaption.textContent = 'Classifying…';
  const blob = await canvasToPng(canvas);
  // One request: the top 5 and their CAMs, so a click on a row shows its map at once.
  const answer = await spinner.during(
    api.classify({ image: blob, topK: PINNED_COUNT, cam: models.cam ? 'top' : 'none', ...models.parts() },
      { signal: state.controller.signal }), 'Classifying…');
  if (generation !== state.generation) return;
  const entry = await makeEntry(canvas, blob, answer, { kind: 'original', title });
  history.start(entry);
  brush.enabled = true;
  events.dispatchEvent(new CustomEvent('image', { detail: { title, width: canvas.width, height: canvas.height } }));
}

// ---------- classes and tables ----------

function followClass(classId) {
  if (!history.original) return;
  if (!pinnedIds().includes(classId) && state.trackedIds.length < MAX_TRACKED) state.trackedIds.push(classId);
  tracker.setCount(state.trackedIds.length);
  selectClass(classId); // the table keeps its mode: a followed class shows in both
}

function unfollowAll() {
  state.trackedIds = [];
  tracker.setCount(0);
  render();
}

function selectClass(classId) {
  state.selectedClass = classId;
  overlay.classId = classId;
  overlay.choice = classId === null ? 'none' : 'cam';
  render();
}

function render() {
  const original = history.original;
  const current = history.current;
  if (!original || !models.ready(original, current)) return; // models.js classifies them first, then renders
  stages.show(original, current);
  const ownIds = current.top.slice(0, PINNED_COUNT).map((p) => p.classId);
  const rowIds = state.tableMode === 'own' ? [...new Set([...ownIds, ...state.trackedIds])] : pinnedIds();
  originalTable.render(original.top.slice(0, PINNED_COUNT), state.selectedClass);
  modifiedTable.render(tableRows(current, rowIds, original)
    .map((row) => ({ ...row, tracked: state.trackedIds.includes(row.classId) })), state.selectedClass);
  // Classes not asked for when these images were classified (followed later, a new top 5).
  Promise.all([ensureProbs(current, rowIds, state.controller.signal), ensureProbs(original, rowIds, state.controller.signal)])
    .then((fetched) => fetched.some(Boolean) && history.current === current && render())
    .catch((err) => messages.showError(err, 'Classification'));
  const top1 = original.top[0];
  el.originalCaption.textContent = `${original.title} · ${original.width}×${original.height}` +
    (top1 ? ` · “${shortLabel(top1.label)}”` : '');
  const count = history.depth;
  el.modifiedCaption.textContent = current.kind === 'original' ? 'Brush over the image, or select an object, to remove it'
    : `${count} edit${count === 1 ? '' : 's'}` + (current.backend ? ` · last by ${current.backend}` : '') +
      (current.ms ? ` in ${Math.round(current.ms)} ms` : '') +
      (current.kind === 'reset' ? ' · reset to the original' : '') + (current.note ? ` · ${current.note}` : '');
  el.modifiedCaption.title = el.modifiedCaption.textContent;
  updateControls();
  overlay.refresh();
  models.showCompare(rowIds);
}

function updateControls() {
  const ready = Boolean(history.current);
  el.undo.disabled = !history.canUndo || edits.editing;
  el.redo.disabled = !history.canRedo || edits.editing;
  el.reset.disabled = !ready || edits.editing || history.current === history.original ||
    history.current.kind === 'reset';
  el.download.disabled = !ready;
  el.exportButton.disabled = !ready || edits.editing;
  el.tableModes.forEach((b) => b.setAttribute('aria-checked', String(b.dataset.tableMode === state.tableMode)));
}

// ---------- commands ----------

const undo = () => !edits.editing && history.undo();
const redo = () => !edits.editing && history.redo();

function resetToOriginal() {
  if (edits.editing || !history.original || history.current === history.original) return;
  history.push(resetEntry(history.original));
}

function download() {
  if (!history.current) return;
  downloadBlob(history.current.blob, `${(state.sourceTitle || 'image').replace(/[^\w-]+/g, '_')}-edit${history.depth}.png`);
}

const changes = new StateChanges({
  state, el, history, brush, edits, tracker, overlay, backends, picker, stages, spinner, messages, events, models,
  startOver, loadPhoto, setBrushLimits,
});

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
  brush.addEventListener('stroke', (e) => edits.queueStroke(e.detail.mask, e.detail.id));
  brush.addEventListener('size', (e) => {
    el.brushSize.value = String(e.detail.size);
    el.brushSizeValue.textContent = `${e.detail.size} px`;
  });
  edits.addEventListener('busy', updateControls);
  tools.add('brush', { activate: () => { brush.active = true; }, deactivate: () => { brush.active = false; } });
  tools.add('select', select);
  el.brushSize.addEventListener('input', () => brush.setSize(Number(el.brushSize.value)));
  el.undo.addEventListener('click', undo);
  el.redo.addEventListener('click', redo);
  el.reset.addEventListener('click', resetToOriginal);
  el.download.addEventListener('click', download);
  holdToCompare($('hold-compare'), stages);
  stages.addEventListener('comparing', () => overlay.refresh());
  el.camOpacity.addEventListener('input', () => {
    document.documentElement.style.setProperty('--cam-opacity', String(Number(el.camOpacity.value) / 100));
    el.camOpacityValue.textContent = `${el.camOpacity.value}%`;
  });
  el.size.addEventListener('change', () => {
    const before = state.size;
    changes.changeWorkingCopy({ size: Number(el.size.value), revert: () => { el.size.value = String(before); } })
      .catch((err) => messages.showError(err, 'The working copy could not be changed'));
  });
  el.framing.addEventListener('change', async () => {
    const before = state.framing.kind;
    const revert = () => { el.framing.value = before; };
    if (!state.source) return;
    let framing = { kind: 'whole' };
    if (el.framing.value === 'square') {
      framing = state.framing.kind === 'square' ? state.framing : centredSquare(state.source);
      // A square photo has nothing to move.
      if (state.source.width !== state.source.height) framing = await chooseSquare(el.crop, state.source, framing);
      if (!framing) return revert();
    }
    changes.changeWorkingCopy({ framing, revert }).catch((err) => messages.showError(err, 'The working copy could not be changed'));
  });
  for (const button of el.tableModes) {
    button.addEventListener('click', () => {
      state.tableMode = button.dataset.tableMode;
      render();
    });
  }
  el.exportButton.addEventListener('click', () => changes.save().catch((err) => messages.showError(err, 'The session could not be saved')));
  el.sessionInput.addEventListener('change', () => {
    const file = el.sessionInput.files[0];
    el.sessionInput.value = '';
    if (file) changes.open(file);
  });
  $('help-button').addEventListener('click', () => tutorial.open());
  history.addEventListener('change', () => {
    render();
    events.dispatchEvent(new CustomEvent('change', { detail: { index: history.index } }));
  });
  bindShortcuts({
    undo, redo,
    smaller: () => brush.setSize(brush.size - Math.max(1, Math.round(brush.size * 0.15))),
    larger: () => brush.setSize(brush.size + Math.max(1, Math.round(brush.size * 0.15))),
    help: () => tutorial.open(),
    compare: (on) => stages.setComparing(on),
    brush: () => tools.select('brush'),
    select: () => tools.select('select'),
  });
}

async function start() {
  wireControls();
  // The models' list fills the menus and loads the chosen model's labels; without it, the default's.
  const modelsLoaded = models.load().catch((err) => {
    messages.showError(err, 'The list of models could not be loaded');
    tracker.load().catch(() => {});
  });
  try {
    state.info = await api.getInfo();
    backends.fill(state.info);
    setUpSizes(state.info);
  } catch (err) {
    messages.showError(err, 'The server did not describe itself');
  }
  await modelsLoaded;
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
 *  - applyInpaintedImage(base64Png|Blob, {note, backend, mask}): classify it and push it
 *    as an ordinary undoable edit
 *  - overlay: setExplanation / clearExplanation / showRegion (maps over the images)
 *  - showError(err, context) / showNotice(text) / busy(promise, label): page feedback
 *  - events: 'image' (a new photo or session), 'change' (the history moved), 'model' (another model chosen)
 *  - model: the chosen model's name (js/models.js), sent with every request
 *  - history.current / originalEntry(): entries { canvas, blob, width, height, top (the
 *    top 5, ranked), probs (Map classId -> {label, probability, rank}), cams, kind, backend,
 *    note, results (Map model -> the same per model) }
 */
export const app = {
  api,
  history,
  events,
  overlay,
  explainPanel: el.explainPanel,
  ready: start(),
  get info() { return state.info; },
  get size() { return state.size; },
  get selectedClass() { return state.selectedClass; },
  get trackedIds() { return state.trackedIds; },
  get labels() { return tracker.labels; },
  get model() { return models.model; },
  findClass: (text) => findClass(tracker.labels, text),
  selectedBackend: () => backends.value,
  currentCanvas: () => history.current?.canvas || null,
  currentBlob: () => history.current?.blob || null,
  originalEntry: () => history.original,
  pinnedClassIds: pinnedIds,
  selectClass,
  showError: (err, context) => messages.showError(err, context),
  showNotice: (text) => messages.showNotice(text),
  busy: (promise, label) => spinner.during(promise, label),
  applyInpaintedImage: (image, options) => edits.applyImage(image, options),
};
