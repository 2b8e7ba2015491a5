// Colouring class activation maps: an 8-bit gray CAM (255 = most activated)
// becomes an inferno-coloured overlay. Inferno is perceptually uniform and
// reads correctly in grayscale and for colour-blind people, unlike "jet".

import { INFERNO_HEX } from './colormap_data.js';
import { makeCanvas } from './imaging.js';

/** Parse a hex table into a Uint8Array of 256 RGB triples. */
export function parseLut(hex) {
  if (hex.length !== 256 * 6) throw new Error(`a colour map needs 256 colours, got ${hex.length / 6}`);
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256 * 3; i++) lut[i] = parseInt(hex.substr(i * 2, 2), 16);
  return lut;
}

export const INFERNO = parseLut(INFERNO_HEX);

/** The colour of a value in 0..1, as a CSS rgb() string. */
export function cssColour(value, lut = INFERNO) {
  const i = Math.max(0, Math.min(255, Math.round(value * 255))) * 3;
  return `rgb(${lut[i]}, ${lut[i + 1]}, ${lut[i + 2]})`;
}

/** A canvas image source (bitmap, canvas) of a gray map -> Uint8ClampedArray of its levels. */
export function grayLevels(source) {
  const canvas = makeCanvas(source.width, source.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0);
  const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const levels = new Uint8ClampedArray(canvas.width * canvas.height);
  for (let p = 0, i = 0; p < levels.length; p++, i += 4) levels[p] = rgba[i];
  return levels;
}

/**
 * Gray levels (width x height) -> ImageData coloured through `lut`.
 * Opacity is left to the caller (the overlay canvas' CSS opacity), so moving
 * the opacity slider needs no recolouring.
 */
export function colourise(levels, width, height, lut = INFERNO) {
  const image = new ImageData(width, height);
  const out = image.data;
  for (let p = 0, i = 0; p < levels.length; p++, i += 4) {
    const c = levels[p] * 3;
    out[i] = lut[c];
    out[i + 1] = lut[c + 1];
    out[i + 2] = lut[c + 2];
    out[i + 3] = 255;
  }
  return image;
}

/**
 * Draw a CAM on an overlay canvas the size of the image below it.
 * `cam` is { levels, width, height } (see camFromBase64); null clears it.
 */
export function drawCam(canvas, cam, lut = INFERNO) {
  const ctx = canvas.getContext('2d');
  if (!cam) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    return;
  }
  const tile = makeCanvas(cam.width, cam.height);
  tile.getContext('2d').putImageData(colourise(cam.levels, cam.width, cam.height, lut), 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tile, 0, 0, canvas.width, canvas.height);
}

/** A base64 8-bit gray PNG of the API -> { levels, width, height }. */
export async function camFromBase64(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  // No colour management: the levels are data, not colours.
  const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }),
    { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const cam = { levels: grayLevels(bitmap), width: bitmap.width, height: bitmap.height };
  bitmap.close();
  return cam;
}

/** Paint a horizontal legend of the colour map (low -> high) into a canvas. */
export function drawLegend(canvas, lut = INFERNO) {
  const ctx = canvas.getContext('2d');
  for (let x = 0; x < canvas.width; x++) {
    ctx.fillStyle = cssColour(x / Math.max(1, canvas.width - 1), lut);
    ctx.fillRect(x, 0, 1, canvas.height);
  }
}
