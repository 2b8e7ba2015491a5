// The map laid over the images, and its legend. One map at a time (the "Map"
// menu): a class's activation map (CAM) on both images, or a map of the last
// explanation (hinders vs supports, hinders, supports, a competitor) on the
// image it explains. Colours follow maps.js; the legend gives the numbers.
//
// CAMs of the original and the modified image share one scale: 0 to the
// original's peak for that class (score units), so removing the evidence
// visibly dims the modified map; its values above the original's peak are
// drawn at the peak, and the legend says so. Maps take a model name, so a
// second model can be drawn the same way.

import { ensureCams, resultOf } from './entries.js';
import { mapValues } from './colormap.js';
import { SCHEMES, formatNumber, paintField, paintRamp } from './maps.js';
import { shortLabel } from './tables.js';

const KINDS = {
  net: { title: 'Hinders vs supports', scheme: SCHEMES.net },
  hinder: { title: 'Hinders', scheme: SCHEMES.hinder },
  support: { title: 'Supports', scheme: SCHEMES.support },
};
const HINT = 'Click a row of a table to see where the model finds that class.';

export class MapOverlay {
  /**
   * @param {Object} el  select, legend, low, high, ramp, text, status, originalMap, modifiedMap, region
   * @param {{stages, signal: () => AbortSignal, labelOf: (id) => string, busy, showError}} deps
   */
  constructor(el, deps) {
    this.el = el;
    this.deps = deps;
    this.model = null; // null: each entry's own (the default) model
    this.classId = null; // the class whose CAM the menu offers
    this.camReason = ''; // why the chosen model has no CAMs (then none are offered), or ''
    this.choice = 'none'; // 'none' | 'cam' | 'net' | 'hinder' | 'support' | 'competitor-<i>'
    this.explanation = null; // { run, canvas, answer, maps: {hinder, support, competitors}, preview }
    this.drawing = 0;
    el.select.addEventListener('change', () => {
      this.choice = el.select.value;
      this.refresh();
    });
  }

  /** A table row was chosen (or unchosen): show that class's CAM. */
  selectClass(classId) {
    this.classId = classId;
    this.choice = classId === null ? 'none' : 'cam';
    this.refresh();
  }

  /** A (preview or final) explanation arrived: offer its maps; a new one is shown at once. */
  setExplanation(explanation) {
    const fresh = !this.explanation || this.explanation.run !== explanation.run;
    this.explanation = explanation;
    if (fresh || !this.choice.match(/^(net|hinder|support|competitor)/)) this.choice = 'net';
    this.refresh();
  }

  clearExplanation() {
    this.explanation = null;
    if (this.choice !== 'cam') this.choice = this.classId === null ? 'none' : 'cam';
    this.refresh();
  }

  #fillMenu() {
    const options = [['none', 'None']];
    if (this.classId !== null && !this.camReason) options.push(['cam', `Class evidence: ${shortLabel(this.deps.labelOf(this.classId))}`]);
    const groups = [];
    const ex = this.explanation;
    if (ex) {
      const name = shortLabel(ex.answer.target.label);
      const items = Object.entries(KINDS).map(([kind, k]) => [kind, `${k.title} “${name}”`]);
      ex.answer.competitors.forEach((c, i) => items.push([`competitor-${i}`, `Competitor: ${shortLabel(c.label)}`]));
      groups.push([`Explanation${ex.preview ? ' (preview)' : ''}`, items]);
    }
    const known = new Set([...options, ...groups.flatMap(([, items]) => items)].map(([value]) => value));
    if (!known.has(this.choice)) this.choice = 'none';
    const make = ([value, text]) => new Option(text, value, false, value === this.choice);
    this.el.select.replaceChildren(...options.map(make), ...groups.map(([label, items]) => {
      const group = document.createElement('optgroup');
      group.label = label;
      group.append(...items.map(make));
      return group;
    }));
    this.el.select.value = this.choice;
  }

  /** Redraw the chosen map on the stages (after any change of images, choice or data). */
  async refresh() {
    const ticket = ++this.drawing;
    this.#fillMenu();
    const { stages } = this.deps;
    const clear = () => {
      paintField(this.el.originalMap, null);
      paintField(this.el.modifiedMap, null);
    };
    if (!stages.original || this.choice === 'none') {
      clear();
      this.#legend(null);
      this.el.status.textContent = this.camReason ? `This model has no class activation maps (${this.camReason}); Explain still works.` : HINT;
      return;
    }
    try {
      if (this.choice === 'cam') await this.#drawCam(ticket);
      else this.#drawExplanation(clear);
    } catch (err) {
      if (ticket === this.drawing) this.deps.showError(err, 'Class activation map');
    }
  }

  async #drawCam(ticket) {
    const { stages } = this.deps;
    const id = this.classId;
    const pairs = [[stages.original, this.el.originalMap], [stages.onModified, this.el.modifiedMap]];
    const label = shortLabel(this.deps.labelOf(id));
    this.el.status.textContent = `Showing where the model sees “${label}” (class ${id}).`;
    const model = (entry) => this.model || entry.model;
    await this.deps.busy(Promise.all(pairs.map(([entry]) => ensureCams(entry, [id], this.deps.signal(), model(entry)))),
      'Computing the activation map…');
    if (ticket !== this.drawing) return; // another map was chosen meanwhile
    const base = resultOf(stages.original, model(stages.original)).cams.get(id);
    const now = resultOf(stages.onModified, model(stages.onModified)).cams.get(id);
    // The original's peak is the scale; without positive evidence there, the larger peak.
    const scale = base.max > 0 ? base.max : Math.max(now.max, 1e-6);
    let clipped = 0;
    for (const [entry, canvas] of pairs) {
      const cam = resultOf(entry, model(entry)).cams.get(id);
      const n = paintField(canvas, { values: mapValues(cam), width: cam.width, height: cam.height }, SCHEMES.evidence, scale);
      if (entry === stages.onModified && entry !== stages.original) clipped = n;
    }
    // The class score is the CAM's mean plus the bias (global average pooling):
    // the mean is the evidence the whole picture gives, the number that falls
    // when the evidence is removed.
    const [before, after] = [base, now].map((cam) => mapValues(cam).reduce((a, v) => a + v, 0) / (cam.width * cam.height));
    this.#legend(SCHEMES.evidence, '0', `${formatNumber(scale)} (original's peak)`,
      `Mean evidence for “${label}”: ${formatNumber(before)} in the original, ${formatNumber(after)} in the modified`
      + `${before > 0 ? ` (${Math.round((100 * after) / before)}%)` : ''}. The class activation map in score units `
      + `(Σ w·f per place, before the bias); both images on the original's scale, peak ${formatNumber(base.max)}`
      + `${clipped ? '; higher values are drawn at the top' : ''}.`);
  }

  #drawExplanation(clear) {
    const ex = this.explanation;
    const { stages } = this.deps;
    clear();
    const name = shortLabel(ex.answer.target.label);
    const { hinder, support, competitors } = ex.maps;
    const scale = Math.max(1e-6, hinder.max, support.max, ...competitors.map((c) => c.max));
    let field;
    let scheme;
    let text;
    if (this.choice.startsWith('competitor-')) {
      const i = Number(this.choice.split('-')[1]);
      const c = competitors[i];
      field = { values: mapValues(c), width: c.width, height: c.height };
      scheme = SCHEMES.competitor;
      text = `Supports the competitor “${shortLabel(ex.answer.competitors[i].label)}”: removing these lowers its odds.`;
    } else {
      const h = mapValues(hinder);
      const s = mapValues(support);
      scheme = KINDS[this.choice].scheme;
      let values = h;
      if (this.choice === 'support') values = s;
      if (this.choice === 'net') values = s.map((v, i) => v - h[i]);
      field = { values, width: hinder.width, height: hinder.height };
      text = {
        net: `Orange hinders “${name}” (removing it raises p), blue supports it (removing it lowers p).`,
        hinder: `Hinders “${name}”: removing these raises p(${name}).`,
        support: `Supports “${name}”: removing these lowers p(${name}).`,
      }[this.choice];
    }
    const unit = ' bits';
    const low = scheme.diverging ? `−${formatNumber(scale)}` : '0';
    this.#legend(scheme, low, `${scheme.diverging ? '+' : ''}${formatNumber(scale)}${unit}`,
      `${ex.preview ? 'Preview from a coarse pass, replaced when the explanation is complete. ' : ''}${text} `
      + 'Weight of evidence in bits; one scale for every map of this explanation.');
    let drawn = 0;
    for (const [entry, canvas] of [[stages.original, this.el.originalMap], [stages.onModified, this.el.modifiedMap]]) {
      if (entry.canvas === ex.canvas) {
        paintField(canvas, field, scheme, scale);
        drawn++;
      }
    }
    this.el.status.textContent = drawn ? `Explanation of “${name}”${ex.preview ? ' (preview)' : ''}.`
      : 'This explanation is of an earlier image: run Explain again to see it on this one.';
  }

  #legend(scheme, low, high, text) {
    this.el.legend.hidden = !scheme;
    if (!scheme) return;
    paintRamp(this.el.ramp, scheme);
    this.el.low.textContent = low;
    this.el.high.textContent = high;
    this.el.text.textContent = text;
    this.el.text.title = text;
  }

  /** Outline and hatch a region (a gray mask map) on the modified stage; null clears it. */
  showRegion(mask) {
    const canvas = this.el.region;
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!mask) return;
    const image = new ImageData(mask.width, mask.height);
    for (let y = 0, p = 0; y < mask.height; y++) {
      for (let x = 0; x < mask.width; x++, p++) {
        if (mask.levels[p] < 128) continue;
        const edge = (x > 0 && mask.levels[p - 1] < 128) || (x < mask.width - 1 && mask.levels[p + 1] < 128)
          || (y > 0 && mask.levels[p - mask.width] < 128) || (y < mask.height - 1 && mask.levels[p + mask.width] < 128);
        const stripe = (x + y) % 8 < 3;
        const i = p * 4;
        if (edge) image.data.set([255, 255, 255, 255], i);
        else if (stripe) image.data.set([20, 184, 166, 200], i);
      }
    }
    ctx.putImageData(image, 0, 0);
  }
}
