// One colour logic for every map laid over the images:
//  - "how much evidence" is sequential and transparent at zero: inferno for the
//    class activation map, orange for what hinders a class, blue for what
//    supports it, purple for a competing class;
//  - hinder against support is diverging: orange below zero, blue above, zero
//    transparent.
// A value v on a scale S is drawn with t = v / S: the colour of t, and an
// opacity that grows with t (so weak evidence stays see-through). Values above
// S are drawn as S (clipped); the legend says so.

import { INFERNO, rampLut } from './colormap.js';
import { makeCanvas } from './imaging.js';

const HINDER = rampLut(['#fdd0a2', '#fd8d3c', '#e6550d', '#a63603']);
const SUPPORT = rampLut(['#c6dbef', '#6baed6', '#2171b5', '#08306b']);
const COMPETITOR = rampLut(['#dadaeb', '#9e9ac8', '#6a51a3', '#3f007d']);

export const SCHEMES = {
  evidence: { diverging: false, lut: INFERNO },
  hinder: { diverging: false, lut: HINDER },
  support: { diverging: false, lut: SUPPORT },
  competitor: { diverging: false, lut: COMPETITOR },
  net: { diverging: true, negative: HINDER, positive: SUPPORT },
};

/** Opacity of a value at t in (0, 1]: 0 at zero, 1 at the top of the scale. */
const alphaOf = (t) => Math.round(255 * Math.pow(Math.min(1, t), 0.6));

/** The colour (r, g, b, a) of `value` on `scale` in `scheme`, written at out[i..i+3]. */
function colourInto(out, i, value, scale, scheme) {
  const t = scale > 0 ? value / scale : 0;
  let lut = scheme.lut;
  let magnitude = t;
  if (scheme.diverging) {
    lut = t < 0 ? scheme.negative : scheme.positive;
    magnitude = Math.abs(t);
  }
  if (!(magnitude > 0)) {
    out[i + 3] = 0;
    return;
  }
  const c = Math.round(Math.min(1, magnitude) * 255) * 3;
  out[i] = lut[c];
  out[i + 1] = lut[c + 1];
  out[i + 2] = lut[c + 2];
  out[i + 3] = alphaOf(magnitude);
}

/**
 * Draw a field of values (Float32Array, width x height) on an overlay canvas,
 * stretched to the canvas. Returns how many values were clipped at the scale.
 * `field` null clears the canvas.
 */
export function paintField(canvas, field, scheme, scale) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!field) return 0;
  const image = new ImageData(field.width, field.height);
  let clipped = 0;
  for (let p = 0; p < field.values.length; p++) {
    const v = field.values[p];
    if (Math.abs(v) > scale * 1.001) clipped++; // beyond 8-bit rounding
    colourInto(image.data, p * 4, v, scale, scheme);
  }
  const tile = makeCanvas(field.width, field.height);
  tile.getContext('2d').putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tile, 0, 0, canvas.width, canvas.height);
  return clipped;
}

/** The legend ramp of a scheme: 0 -> scale (sequential) or -scale -> +scale (diverging). */
export function paintRamp(canvas, scheme) {
  const ctx = canvas.getContext('2d');
  const image = new ImageData(canvas.width, canvas.height);
  for (let x = 0; x < canvas.width; x++) {
    const u = x / Math.max(1, canvas.width - 1);
    const value = scheme.diverging ? 2 * u - 1 : u;
    for (let y = 0; y < canvas.height; y++) colourInto(image.data, (y * canvas.width + x) * 4, value, 1, scheme);
  }
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.putImageData(image, 0, 0);
}

/** A number for a legend: 3 significant digits, no exponent for ordinary sizes. */
export function formatNumber(value) {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs === 0) return '0';
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}
