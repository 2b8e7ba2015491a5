// One entry per image state of the history: the image (canvas + PNG blob), how
// it was made (kind, stroke mask, backend) and, per model, its classification
// (top classes, every probability known, CAMs fetched so far). Entries never
// change pixels; probabilities and CAMs are added lazily.
//
// Results are kept per model name, so a second model (compare) adds a second
// result to the same entries; `entry.top/probs/cams` are those of `entry.model`,
// the model the page shows (js/models.js moves it when another model is chosen).
// Requests always name their model: the entry's model need not be the server's default.

import * as api from './api.js';
import { camFromBase64 } from './colormap.js';

export const TOP_COUNT = 5;

function toPrediction(p) {
  return { classId: p.class_id, label: p.label, probability: p.probability, rank: p.rank };
}

/** A model's result from a classify/edit answer. */
function resultFromAnswer(answer) {
  const ranked = (answer.predictions || []).map(toPrediction);
  const probs = new Map();
  ranked.forEach((p, i) => probs.set(p.classId, { ...p, rank: p.rank || i + 1 }));
  for (const p of (answer.pinned || []).map(toPrediction)) probs.set(p.classId, p);
  return { model: answer.model || '', top: ranked.slice(0, TOP_COUNT), probs, cams: new Map(), camRequests: new Map() };
}

/** The result of `model` (default: the model the entry was made with). */
export function resultOf(entry, model = entry.model) {
  return entry.results.get(model) || null;
}

/**
 * A history entry from an image and its classify/edit answer. `extra` says how
 * it was made: kind ('original', 'edit', 'reset', 'external'), mask (the stroke,
 * a canvas), backend, note, ...
 */
export function makeEntry(canvas, blob, answer, extra = {}) {
  const entry = { canvas, blob, width: canvas.width, height: canvas.height, model: answer.model || '',
    results: new Map(), ...extra };
  Object.defineProperties(entry, {
    top: { get: () => resultOf(entry).top, enumerable: false },
    probs: { get: () => resultOf(entry).probs, enumerable: false },
    cams: { get: () => resultOf(entry).cams, enumerable: false },
  });
  addResults(entry, answer);
  return entry;
}

/**
 * Add a classify/edit answer's result to `entry`, and the compare model's
 * (`answer.compare`) when there is one; a model's earlier result is replaced.
 */
export function addResults(entry, answer) {
  for (const part of [answer, answer.compare].filter(Boolean)) {
    const result = resultFromAnswer(part);
    entry.results.set(result.model, result);
    // The CAMs decode in the background: the table does not wait for them, and
    // ensureCams() waits for the ones it needs.
    const cams = part.cams || [];
    if (cams.length) {
      const decoding = addCams(result, cams).finally(() => cams.forEach((c) => result.camRequests.delete(c.class_id)));
      cams.forEach((c) => result.camRequests.set(c.class_id, decoding));
      decoding.catch(() => {}); // a failure shows when the map is asked for
    }
  }
}

/** A reset entry: the original's pixels and results, a history step of its own. */
export function resetEntry(original) {
  const entry = Object.create(original);
  entry.kind = 'reset';
  entry.mask = null;
  entry.note = '';
  return entry;
}

async function addCams(result, cams) {
  const decoded = await Promise.all((cams || []).map((cam) => camFromBase64(cam.png, cam.raw_min, cam.raw_max)));
  (cams || []).forEach((cam, i) => result.cams.set(cam.class_id, decoded[i]));
}

/**
 * Make sure `entry` has the CAMs of `classIds` for `model`, asking the API once
 * for the missing ones (concurrent callers share the request).
 */
export async function ensureCams(entry, classIds, signal, model = entry.model) {
  const result = resultOf(entry, model);
  const missing = classIds.filter((id) => !result.cams.has(id) && !result.camRequests.has(id));
  if (missing.length) {
    const request = api.classify({ image: entry.blob, topK: 1, classes: missing, cam: missing, model }, { signal })
      .then((answer) => addCams(result, answer.cams))
      .finally(() => missing.forEach((id) => result.camRequests.delete(id)));
    missing.forEach((id) => result.camRequests.set(id, request));
  }
  await Promise.all(classIds.map((id) => result.camRequests.get(id)).filter(Boolean));
}

/** Make sure `entry` knows the probabilities of `classIds` (classes followed later). */
export async function ensureProbs(entry, classIds, signal, model = entry.model) {
  const result = resultOf(entry, model);
  const missing = classIds.filter((id) => !result.probs.has(id));
  if (!missing.length) return false;
  const answer = await api.classify({ image: entry.blob, topK: 1, classes: missing, model }, { signal });
  for (const p of (answer.pinned || []).map(toPrediction)) result.probs.set(p.classId, p);
  return true;
}

/** Table rows of `entry` for `ids`, each with its change against `original`. */
export function tableRows(entry, ids, original, model = entry.model) {
  const now = resultOf(entry, model);
  const before = resultOf(original, model);
  return ids.map((id) => {
    const known = now.probs.get(id);
    const label = known?.label || before.probs.get(id)?.label || `class ${id}`;
    const p = known || { classId: id, label, probability: NaN };
    const then = before.probs.get(id);
    return { ...p, classId: id, change: then && known ? p.probability - then.probability : null };
  });
}

/** A result as plain data (sessions): what the API answered, in its own field names. */
export function resultToJson(result) {
  const score = (p) => ({ class_id: p.classId, label: p.label, probability: p.probability, rank: p.rank });
  const topIds = new Set(result.top.map((p) => p.classId));
  return {
    model: result.model,
    predictions: result.top.map(score),
    pinned: [...result.probs.values()].filter((p) => !topIds.has(p.classId)).map(score),
  };
}

export async function blobToBase64(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
