// One entry per image state of the history: the image (canvas + PNG blob), its
// classification (top classes, every probability known for it) and the CAMs
// fetched so far. Entries never change pixels; CAMs are added lazily.

import * as api from './api.js';
import { camFromBase64 } from './colormap.js';

function toPrediction(p) {
  return { classId: p.class_id, label: p.label, probability: p.probability, rank: p.rank };
}

export const TOP_COUNT = 5;

/**
 * A history entry from an image and its classify/edit answer. `top` is the
 * image's top 5; `probs` holds every probability known (all 1000 for an
 * original, which is classified with top_k=1000).
 */
export async function makeEntry(canvas, blob, answer, extra = {}) {
  const ranked = (answer.predictions || []).map(toPrediction);
  const top = ranked.slice(0, TOP_COUNT);
  const probs = new Map();
  ranked.forEach((p, i) => probs.set(p.classId, { ...p, rank: p.rank || i + 1 }));
  for (const p of (answer.pinned || []).map(toPrediction)) probs.set(p.classId, p);
  const entry = { canvas, blob, top, probs, cams: new Map(), camRequests: new Map(), ...extra };
  await addCams(entry, answer.cams);
  return entry;
}

async function addCams(entry, cams) {
  for (const cam of cams || []) entry.cams.set(cam.class_id, await camFromBase64(cam.png));
}

/**
 * Make sure `entry` has the CAMs of `classIds`, asking the API once for the
 * missing ones (concurrent callers share the request).
 */
export async function ensureCams(entry, classIds, signal) {
  const missing = classIds.filter((id) => !entry.cams.has(id) && !entry.camRequests.has(id));
  if (missing.length) {
    const request = api.classify({ image: entry.blob, topK: 1, classes: missing, cam: missing }, { signal })
      .then((answer) => addCams(entry, answer.cams))
      .finally(() => missing.forEach((id) => entry.camRequests.delete(id)));
    missing.forEach((id) => entry.camRequests.set(id, request));
  }
  await Promise.all(classIds.map((id) => entry.camRequests.get(id)).filter(Boolean));
}

/** Make sure `entry` knows the probabilities of `classIds` (pinned classes added later). */
export async function ensureProbs(entry, classIds, signal) {
  const missing = classIds.filter((id) => !entry.probs.has(id));
  if (!missing.length) return false;
  const answer = await api.classify({ image: entry.blob, topK: 1, classes: missing }, { signal });
  for (const p of (answer.pinned || []).map(toPrediction)) entry.probs.set(p.classId, p);
  return true;
}

/** Table rows of `entry` for `ids`, each with its change against `original`. */
export function tableRows(entry, ids, original) {
  return ids.map((id) => {
    const known = entry.probs.get(id);
    const label = known?.label || original.probs.get(id)?.label || `class ${id}`;
    const p = known || { classId: id, label, probability: NaN };
    const before = original.probs.get(id);
    return { ...p, classId: id, change: before && known ? p.probability - before.probability : null };
  });
}

export async function blobToBase64(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
