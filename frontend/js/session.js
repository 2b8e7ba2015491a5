// Sessions as one file: the working copy, every history entry (how it was made:
// stroke mask and backend; its image; its results per model), the position in
// the history (so undo and redo work after opening), and the view (followed
// classes, chosen class, table mode, backend, the chosen model and the compare
// model). A versioned JSON document with images as base64 PNG. Files saved
// before the page had a model picker (no view.model) open with the model their
// results name.
//
// Opening a file checks all of it first (format name, version, every field,
// every image decoded and of the stated size, the server's image limits) and
// only then replaces the state: a file that is not ours, cut short, from a
// newer version or too large is refused with the reason, and nothing changes.

import { base64ToBytes } from './api.js';
import { blobToBase64, makeEntry, resetEntry, resultOf, resultToJson } from './entries.js';
import { canvasToPng, makeCanvas } from './imaging.js';

export const FORMAT = 'interactive-classification-session';
export const VERSION = 1;
export const MAX_SESSION_BYTES = 100 * 1024 * 1024;
export const MAX_ENTRIES = 500;
const KINDS = new Set(['original', 'edit', 'reset', 'external']);
const TABLE_MODES = new Set(['pinned', 'own']);

export class SessionError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SessionError';
  }
}

const pngBase64 = async (canvas) => blobToBase64(await canvasToPng(canvas));

/** The session as a JSON string. `state` holds entries, index, title, workingSize, framing, view. */
export async function exportSession(state) {
  const entries = [];
  for (const entry of state.entries) {
    if (entry.kind === 'reset') {
      entries.push({ kind: 'reset' });
      continue;
    }
    const item = {
      kind: entry.kind,
      image: await pngBase64(entry.canvas),
      // The shown model's result first: it is the one the entry shows when opened.
      results: [resultOf(entry), ...[...entry.results.values()].filter((r) => r !== resultOf(entry))].map(resultToJson),
    };
    if (entry.kind !== 'original') {
      Object.assign(item, { backend: entry.backend || null, requested: entry.requested || null,
        fallback: Boolean(entry.fallback), note: entry.note || '', ms: entry.ms ?? null });
      if (entry.mask) item.mask = await pngBase64(entry.mask);
    }
    entries.push(item);
  }
  const { width, height } = state.entries[0];
  return JSON.stringify({
    format: FORMAT,
    version: VERSION,
    saved: new Date().toISOString(),
    model: state.entries[0].model,
    photo: { title: state.title, width, height, working_size: state.workingSize, framing: state.framing },
    entries,
    index: state.index,
    view: state.view,
  });
}

// ---------- reading ----------

const isInt = (v) => Number.isInteger(v);
const fail = (message) => {
  throw new SessionError(message);
};

/** The models this server serves (an older server only describes its one model). */
const modelsOf = (info) => (info.models?.length ? info.models : [info.model]);

/** The server's description of the model `name`, or a SessionError saying why it cannot be used. */
function servedModel(name, info, what) {
  const models = modelsOf(info);
  const model = models.find((m) => m.name === name);
  if (!model) {
    fail(`${what} the model “${String(name).slice(0, 60)}”; this server's models are ${models.map((m) => `“${m.name}”`).join(', ')}.`);
  }
  if (model.available === false) fail(`${what} the model “${model.name}”, unavailable on this server: ${model.unavailable_reason}.`);
  return model;
}

function checkResult(result, where, info) {
  if (!result || typeof result !== 'object') fail(`${where} has no classification.`);
  const classes = servedModel(result.model, info, `${where} was classified by`).num_classes || 1000;
  for (const list of ['predictions', 'pinned']) {
    if (!Array.isArray(result[list]) || result[list].length > classes) fail(`${where}: its ${list} are not a list of classes.`);
    for (const p of result[list]) {
      if (!p || !isInt(p.class_id) || p.class_id < 0 || p.class_id >= classes || typeof p.label !== 'string'
        || typeof p.probability !== 'number' || !(p.probability >= 0 && p.probability <= 1)) {
        fail(`${where}: a class in its ${list} is not valid (class ids 0–${classes - 1}, probabilities 0–1).`);
      }
    }
  }
  if (!result.predictions.length) fail(`${where} has no top classes.`);
}

/**
 * Check a session document's fields against this page's format and the
 * server's limits (GET /info). Throws a SessionError naming the problem.
 */
export function checkSession(data, info) {
  if (!data || typeof data !== 'object' || Array.isArray(data) || data.format !== FORMAT) {
    fail('This file is not a session of this page (its “format” is not “interactive-classification-session”).');
  }
  if (!isInt(data.version) || data.version < 1) fail('The session file has no valid version number.');
  if (data.version > VERSION) {
    fail(`The session was saved by a newer version of the page (version ${data.version}); this page reads version ${VERSION}.`);
  }
  const photo = data.photo;
  if (!photo || !isInt(photo.width) || !isInt(photo.height) || photo.width < 1 || photo.height < 1) {
    fail('The session does not say the size of its images.');
  }
  const limits = info.limits || {};
  if ((limits.max_side && Math.max(photo.width, photo.height) > limits.max_side)
    || (limits.max_pixels && photo.width * photo.height > limits.max_pixels)) {
    fail(`The session's images are ${photo.width}×${photo.height}: more than this server accepts `
      + `(at most ${limits.max_side} px a side and ${limits.max_pixels} pixels).`);
  }
  if (typeof photo.title !== 'string' || photo.title.length > 300) fail('The session has no valid photo title.');
  const entries = data.entries;
  if (!Array.isArray(entries) || !entries.length) fail('The session has no images.');
  if (entries.length > MAX_ENTRIES) fail(`The session has ${entries.length} history steps; at most ${MAX_ENTRIES} can be opened.`);
  entries.forEach((entry, i) => {
    const where = i === 0 ? 'The original' : `Step ${i} of the history`;
    if (!entry || !KINDS.has(entry.kind) || (i === 0) !== (entry.kind === 'original')) {
      fail(`${where} is not a valid history step (the first must be the original, the others edits or resets).`);
    }
    if (entry.kind === 'reset') return;
    if (typeof entry.image !== 'string' || !entry.image) fail(`${where} has no image.`);
    if ('mask' in entry && typeof entry.mask !== 'string') fail(`${where} has a mask that is not an image.`);
    if (!Array.isArray(entry.results) || !entry.results.length) fail(`${where} has no classification.`);
    entry.results.forEach((r) => checkResult(r, where, info));
  });
  if (!isInt(data.index) || data.index < 0 || data.index >= entries.length) fail('The session\'s position in its history is not valid.');
  const view = data.view || {};
  // The view's class ids are the shown model's: the first result of the original.
  const model = servedModel(view.model ?? entries[0].results[0].model, info, 'The session shows');
  if (view.compare != null) servedModel(view.compare, info, 'The session compares with');
  const classes = model.num_classes || 1000;
  if (view.tracked !== undefined && (!Array.isArray(view.tracked) || view.tracked.length > 5
    || !view.tracked.every((id) => isInt(id) && id >= 0 && id < classes))) {
    fail('The session\'s followed classes are not valid.');
  }
  if (view.selected_class != null && !(isInt(view.selected_class) && view.selected_class >= 0
    && view.selected_class < classes)) fail('The session\'s chosen class is not valid.');
  if (view.table_mode !== undefined && !TABLE_MODES.has(view.table_mode)) fail('The session\'s table mode is not valid.');
}

/** base64 PNG -> canvas of exactly width x height, or a SessionError. */
async function decodePng(base64, width, height, what) {
  let bytes;
  try {
    bytes = base64ToBytes(base64);
  } catch {
    fail(`${what} is not base64.`);
  }
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 8 || signature.some((b, i) => bytes[i] !== b)) fail(`${what} is not a PNG image.`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
  } catch {
    fail(`${what} is a damaged PNG image.`);
  }
  if (bitmap.width !== width || bitmap.height !== height) {
    bitmap.close();
    fail(`${what} is ${bitmap.width}×${bitmap.height}, not ${width}×${height} as the session says.`);
  }
  const canvas = makeCanvas(width, height);
  canvas.getContext('2d').drawImage(bitmap, 0, 0);
  bitmap.close();
  return { canvas, blob: new Blob([bytes], { type: 'image/png' }) };
}

/**
 * Read a session file: text -> checked document -> entries with decoded images.
 * Nothing of the page is touched; the caller applies the result.
 */
export async function readSession(file, info) {
  if (file.size > MAX_SESSION_BYTES) {
    fail(`The file is ${(file.size / 1048576).toFixed(0)} MB: a session can be at most ${MAX_SESSION_BYTES / 1048576} MB.`);
  }
  const text = await file.text();
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    fail(text.trimStart().startsWith('{') ? 'The session file is cut short or damaged: it is not complete JSON.'
      : 'This file is not a session of this page (it is not JSON).');
  }
  checkSession(data, info);
  const { width, height, title } = data.photo;
  const entries = [];
  for (const [i, item] of data.entries.entries()) {
    const where = i === 0 ? 'The original image' : `The image of step ${i}`;
    if (item.kind === 'reset') {
      entries.push(resetEntry(entries[0]));
      continue;
    }
    const { canvas, blob } = await decodePng(item.image, width, height, where);
    const mask = item.mask ? (await decodePng(item.mask, width, height, `The mask of step ${i}`)).canvas : null;
    const [first, ...others] = item.results;
    const extra = i === 0 ? { kind: 'original', title }
      : { kind: item.kind, mask, backend: item.backend || undefined, requested: item.requested || undefined,
        fallback: Boolean(item.fallback), note: String(item.note || ''), ms: item.ms ?? undefined };
    const entry = await makeEntry(canvas, blob, first, extra);
    for (const result of others) {
      const more = await makeEntry(canvas, blob, result);
      entry.results.set(more.model, more.results.get(more.model));
    }
    entries.push(entry);
  }
  const view = data.view || {};
  return { entries, index: data.index, title, framing: data.photo.framing, workingSize: data.photo.working_size,
    view, model: view.model ?? entries[0].model, compare: view.compare ?? null };
}
