// Canvas helpers: decoding files and API images, the working copy, masks,
// and encoding a canvas as the PNG that is sent to the API.

import { base64ToBytes } from './api.js';

/** A Blob or URL -> ImageBitmap. Throws a readable Error for non-images. */
export async function decodeImage(source) {
  let blob = source;
  if (typeof source === 'string') {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`The image ${source} could not be loaded (HTTP ${response.status}).`);
    blob = await response.blob();
  }
  try {
    return await createImageBitmap(blob);
  } catch {
    throw new Error('The browser cannot read this file as an image.');
  }
}

/** A new canvas of the given size. */
export function makeCanvas(width, height = width) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

/**
 * The working copy of `bitmap` at working size `size`:
 *  - framing {kind: 'whole'} (the default): the whole picture, aspect ratio
 *    kept, its longer side `size` (the classifier is fully convolutional and
 *    sees every pixel);
 *  - framing {kind: 'square', x, y, side}: that square of the photo (source
 *    pixels), scaled to size x size.
 */
export function workingCopy(bitmap, size, framing = { kind: 'whole' }) {
  let sx = 0;
  let sy = 0;
  let sw = bitmap.width;
  let sh = bitmap.height;
  let width;
  let height;
  if (framing.kind === 'square') {
    sw = sh = Math.min(framing.side, bitmap.width, bitmap.height);
    sx = Math.max(0, Math.min(bitmap.width - sw, Math.round(framing.x)));
    sy = Math.max(0, Math.min(bitmap.height - sh, Math.round(framing.y)));
    width = height = size;
  } else {
    const scale = size / Math.max(bitmap.width, bitmap.height);
    width = Math.max(1, Math.round(bitmap.width * scale));
    height = Math.max(1, Math.round(bitmap.height * scale));
  }
  const canvas = makeCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, sx, sy, sw, sh, 0, 0, width, height);
  return canvas;
}

/** The centred square of a photo, in its own pixels (the crop's starting place). */
export function centredSquare(bitmap) {
  const side = Math.min(bitmap.width, bitmap.height);
  return { kind: 'square', x: Math.floor((bitmap.width - side) / 2), y: Math.floor((bitmap.height - side) / 2), side };
}

/** A mask canvas scaled to width x height, kept binary (replaying edits at another size). */
export function scaleMask(mask, width, height) {
  const canvas = makeCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(mask, 0, 0, width, height);
  const image = ctx.getImageData(0, 0, width, height);
  const d = image.data;
  for (let i = 0; i < d.length; i += 4) {
    const on = Math.max(d[i], d[i + 3]) >= 128 ? 255 : 0;
    d[i] = d[i + 1] = d[i + 2] = 255;
    d[i + 3] = on;
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

/** A copy of a canvas (history entries must not share pixels). */
export function copyCanvas(source) {
  const canvas = makeCanvas(source.width, source.height);
  canvas.getContext('2d').drawImage(source, 0, 0);
  return canvas;
}

/** Canvas -> PNG Blob (lossless, so repeated edits do not add JPEG noise). */
export function canvasToPng(canvas) {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('The image could not be encoded as PNG.'))),
      'image/png');
  });
}

/**
 * A PNG Blob from the API -> canvas. With `expect` ({width, height}), checks
 * the answer has the size of what was sent: a mismatch would misalign every
 * later stroke.
 */
export async function canvasFromPngBlob(blob, expect) {
  const bitmap = await decodeImage(blob);
  if (expect && (bitmap.width !== expect.width || bitmap.height !== expect.height)) {
    bitmap.close();
    throw new Error(`The server returned a ${bitmap.width}×${bitmap.height} image for a ` +
      `${expect.width}×${expect.height} request.`);
  }
  const canvas = makeCanvas(bitmap.width, bitmap.height);
  canvas.getContext('2d').drawImage(bitmap, 0, 0);
  bitmap.close();
  return canvas;
}

/**
 * A copy of `canvas` with an answer's region ({x, y, width, height, png}, or
 * null: nothing changed) pasted in. The region must lie inside the canvas and
 * its PNG have the stated size: a misplaced patch would spoil every later edit.
 */
export async function pasteRegion(canvas, region) {
  const copy = copyCanvas(canvas);
  if (!region) return copy;
  const { x, y, width, height } = region;
  if (x < 0 || y < 0 || x + width > canvas.width || y + height > canvas.height) {
    throw new Error(`The server returned a region at x=${x} y=${y} ${width}×${height} ` +
      `outside the ${canvas.width}×${canvas.height} image.`);
  }
  const bytes = base64ToBytes(region.png);
  // Pixels as they are in the file: the server's fill, not a colour-managed version of it.
  const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }),
    { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    if (bitmap.width !== width || bitmap.height !== height) {
      throw new Error(`The server returned a ${bitmap.width}×${bitmap.height} region for a ` +
        `${width}×${height} box.`);
    }
    copy.getContext('2d').drawImage(bitmap, x, y);
  } finally {
    bitmap.close();
  }
  return copy;
}

/** A small square thumbnail (data URL) of a photo, for the picker. */
export function thumbnailUrl(bitmap, side = 88) {
  const canvas = workingCopy(bitmap, side, centredSquare(bitmap));
  return canvas.toDataURL('image/jpeg', 0.85);
}

/** Draw `source` onto `target`, resizing the target to match. */
export function showOn(target, source) {
  if (target.width !== source.width || target.height !== source.height) {
    target.width = source.width;
    target.height = source.height;
  }
  const ctx = target.getContext('2d');
  ctx.clearRect(0, 0, target.width, target.height);
  ctx.drawImage(source, 0, 0);
}

/** Offer a Blob as a file download. */
export function downloadBlob(blob, filename) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
