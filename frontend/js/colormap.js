// Colour tables and the gray maps of the API: an 8-bit gray PNG (a CAM, or an
// explanation map) and the real range its levels stand for. How maps are
// coloured on the page lives in maps.js. Inferno is perceptually uniform and
// reads correctly in grayscale and for colour-blind people, unlike "jet".

import { base64ToBytes } from './api.js';
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

/**
 * A canvas image source (bitmap, canvas) of a gray map -> its levels
 * (Uint8ClampedArray), and `seen`: for a gray + alpha map (a CAM of a model that
 * crops: transparent where the model did not look) 1 where it looked and 0
 * elsewhere; null when it saw everything.
 */
export function grayLevels(source) {
  const canvas = makeCanvas(source.width, source.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0);
  const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const levels = new Uint8ClampedArray(canvas.width * canvas.height);
  const seen = new Uint8Array(levels.length);
  let hidden = 0;
  for (let p = 0, i = 0; p < levels.length; p++, i += 4) {
    levels[p] = rgba[i];
    seen[p] = rgba[i + 3] > 0 ? 1 : 0;
    hidden += 1 - seen[p];
  }
  return { levels, seen: hidden ? seen : null };
}

/**
 * A base64 8-bit gray PNG of the API -> { levels, width, height, min, max }:
 * level 0 stands for `min` and 255 for `max` (raw CAM values in score units, or
 * bits for the explanation maps), so `mapValues` gives the real numbers back.
 */
export async function grayMapFromBase64(base64, min = 0, max = 1) {
  const bytes = base64ToBytes(base64);
  // No colour management: the levels are data, not colours.
  const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }),
    { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const map = { ...grayLevels(bitmap), width: bitmap.width, height: bitmap.height, min, max };
  bitmap.close();
  return map;
}

/** A CAM of the API (png, raw_min, raw_max) -> a gray map in score units. */
export const camFromBase64 = (base64, rawMin = 0, rawMax = 1) => grayMapFromBase64(base64, rawMin, rawMax);

/** The real values of a gray map, as a Float32Array. */
export function mapValues(map) {
  const values = new Float32Array(map.levels.length);
  const step = (map.max - map.min) / 255;
  // Where the model did not look there is no evidence: 0, not the level-0 value `min`.
  for (let i = 0; i < values.length; i++) values[i] = map.seen && !map.seen[i] ? 0 : map.min + map.levels[i] * step;
  return values;
}

/** A 256-colour table interpolated through `stops` (hex colours, low -> high). */
export function rampLut(stops) {
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
