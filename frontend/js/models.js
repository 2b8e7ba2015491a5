// The model picker and "Compare with" (GET /api/v1/models). Every panel follows
// the chosen model: the tables, the labels of "Follow a class", the CAMs and the
// Map menu, Explain. A model the classifier cannot serve stays listed, disabled,
// with its reason written out; a model without CAM structure hides the CAM
// choices (explanations treat it as a black box and still work).
//
// Each history entry keeps one result per model (js/entries.js). Choosing
// another model classifies what is on screen (the original, then the current
// image) with it, and any other history step when undo or redo shows it: the
// edits stay, only their classification is added.
//
// The compare model rides along on every request (`compare=NAME`): one edit
// request answers both models, so its table (changes against its own view of
// the original) and its CAM of the chosen class sit beside the first after
// every stroke.

import * as api from './api.js';
import { addResults, ensureCams, ensureProbs, resultOf, tableRows } from './entries.js';
import { mapValues } from './colormap.js';
import { PINNED_COUNT } from './edits.js';
import { showOn } from './imaging.js';
import { SCHEMES, formatNumber, paintField } from './maps.js';
import { PredictionTable, percent, shortLabel } from './tables.js';

const MAX_REASON = 90; // characters of a reason inside a menu option (the note below has it all)

const clip = (text, n = MAX_REASON) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

export class ModelSwitch {
  /**
   * @param {Document} root  the page: its model tool (#model-select, ...) and compare block (#compare-...)
   * @param {Object} app state, history, tracker, overlay, spinner, messages, brush, tables,
   *                     events, signal(), pinnedIds(), camIds(), selectClass(id), render()
   */
  constructor(root, app) {
    const $ = (id) => root.getElementById(id);
    const el = {
      select: $('model-select'), compareSelect: $('compare-select'), note: $('model-note'), block: $('compare-block'),
      title: $('compare-title'), table: $('compare-table'), status: $('compare-status'),
      originalImage: $('compare-original-image'), originalCam: $('compare-original-cam'),
      modifiedImage: $('compare-modified-image'), modifiedCam: $('compare-modified-cam'),
    };
    this.el = el;
    this.app = app;
    this.models = []; // GET /api/v1/models
    this.model = undefined; // the chosen model's name (undefined: the server's default, unlisted)
    this.compare = undefined; // the compare model's name, or undefined
    this.pending = null; // classifying the shown entries with the chosen model
    this.comparePending = null; // the same for the compare model
    this.drawing = 0;
    this.announce = false; // a model was chosen: say so once the page shows its view
    this.table = new PredictionTable(el.table, { showChange: true, onSelect: (id) => app.selectClass(id) });
    el.select.addEventListener('change', () => this.#chooseModel(el.select.value));
    el.compareSelect.addEventListener('change', () => this.#chooseCompare(el.compareSelect.value || undefined));
  }

  info(name) {
    return this.models.find((m) => m.name === name) || null;
  }

  title(name) {
    const m = this.info(name);
    return m?.title || m?.name || name || 'the default model'; // a card that could not be read has no title
  }

  /** Whether the chosen model has CAMs (a model the page does not know is taken to have them). */
  get cam() {
    return this.info(this.model)?.cam !== false;
  }

  /** The `model`, `compare` and `top_k` parts of every classify and edit request (a model may have fewer than 5 classes). */
  parts() {
    return { model: this.model, compare: this.compare, topK: this.#topK(this.model) };
  }

  #topK(name) {
    return Math.min(PINNED_COUNT, this.info(name)?.num_classes || PINNED_COUNT);
  }

  /** Fill the menus from the server's list: the default model (or the first available one) chosen. */
  async load() {
    const { models } = await api.getModels();
    this.models = models;
    this.model = (models.find((m) => m.default && m.available) || models.find((m) => m.available))?.name;
    this.compare = undefined;
    this.#fill();
    this.#follow(null);
  }

  /** A restored session's models (already checked against this server's list). */
  restore(model, compare) {
    const previous = this.model;
    // Without the server's list (it failed to load) the session's model is still the one to ask for.
    if (this.info(model)?.available || !this.models.length) this.model = model;
    this.compare = compare && this.#compareProblem(this.info(compare)) === '' ? compare : undefined;
    this.#fill();
    this.#follow(previous, { keepClasses: true });
  }

  /** Why `m` cannot be the compare model of the chosen one ('' when it can). */
  #compareProblem(m) {
    if (!m) return 'not served here';
    if (!m.available) return `unavailable: ${m.unavailable_reason || 'the classifier cannot serve it'}`;
    const chosen = this.info(this.model);
    if (chosen && m.num_classes !== chosen.num_classes) return `other classes (${m.num_classes}, not ${chosen.num_classes})`;
    return '';
  }

  #fill() {
    const { select, compareSelect, note } = this.el;
    select.replaceChildren(...this.models.map((m) => {
      const text = m.available ? this.title(m.name) : `${this.title(m.name)} (unavailable: ${clip(m.unavailable_reason || 'no reason given')})`;
      const option = new Option(text, m.name, false, m.name === this.model);
      option.disabled = !m.available;
      return option;
    }));
    if (this.model) select.value = this.model;
    select.disabled = !this.models.some((m) => m.available);
    compareSelect.replaceChildren(new Option('None', ''), ...this.models.filter((m) => m.name !== this.model).map((m) => {
      const problem = this.#compareProblem(m);
      const option = new Option(problem ? `${this.title(m.name)} (${clip(problem)})` : this.title(m.name), m.name);
      option.disabled = Boolean(problem);
      return option;
    }));
    compareSelect.value = this.compare || '';
    // Why a model cannot be used is written out, not only in the menu or a tooltip.
    const down = this.models.filter((m) => !m.available);
    note.textContent = down.map((m) => `${this.title(m.name)} is unavailable: ${m.unavailable_reason || 'no reason given'}`).join(' · ');
    note.title = note.textContent;
    note.hidden = !down.length;
  }

  #chooseModel(name) {
    if (name === this.model || !this.info(name)?.available) return;
    const previous = this.model;
    this.model = name;
    // The former model becomes the comparison when the compare model is chosen: nothing is asked twice.
    if (this.compare === name) this.compare = previous;
    if (this.compare && this.#compareProblem(this.info(this.compare))) this.compare = undefined;
    this.#fill();
    this.#follow(previous);
    this.announce = true; // once the shown images have this model's view (ready())
    this.app.render();
  }

  #chooseCompare(name) {
    this.compare = name;
    this.app.render();
  }

  /** The parts of the page that depend on the chosen model: CAM choices, labels, followed classes. */
  #follow(previous, { keepClasses = false } = {}) {
    const { app } = this;
    const chosen = this.info(this.model);
    app.overlay.camReason = chosen && !chosen.cam ? (chosen.cam_reason || 'no CAM structure') : '';
    // Class ids of a model with other classes mean other things: followed classes and the choice go.
    const before = this.info(previous);
    if (!keepClasses && before && chosen && before.num_classes !== chosen.num_classes) {
      app.state.trackedIds = [];
      app.state.selectedClass = null;
      app.overlay.classId = null;
    }
    app.tracker.setCount(app.state.trackedIds.length);
    app.tracker.load(this.model).then(() => app.tracker.setCount(app.state.trackedIds.length))
      .catch((err) => app.messages.showError(err, 'The class names could not be loaded'));
    app.overlay.refresh();
  }

  // ---------- the chosen model on the shown entries ----------

  /**
   * True when the original and the current entry have the chosen model's
   * result (they then show it). Otherwise classify them and render again.
   */
  ready(original, current) {
    const name = this.model;
    if (!name) return true;
    if (original.results.has(name) && current.results.has(name)) {
      original.model = name;
      current.model = name;
      if (this.announce) {
        // After this render: Explain drops the other model's explanation and offers this one's classes.
        this.announce = false;
        queueMicrotask(() => this.app.events.dispatchEvent(new CustomEvent('model', { detail: { model: name } })));
      }
      return true;
    }
    if (!this.pending) {
      const shown = current.model;
      const text = `Classifying with ${this.title(name)}…`;
      this.app.tables.forEach((table) => table.render([], null, text));
      this.app.brush.enabled = false; // strokes wait for the new model's view of the image
      this.pending = this.app.spinner.during(this.#classifyShown(original, current, name), text)
        .then(() => true, (err) => this.#failed(err, name, shown, original, current))
        .then((again) => {
          this.pending = null;
          if (again === null) return; // superseded: the new photo or session sets the brush itself
          this.app.brush.enabled = true;
          if (again) this.app.render();
        });
    }
    return false;
  }

  async #classifyShown(original, current, name) {
    const cam = () => (this.cam ? this.app.camIds() : 'none');
    if (!original.results.has(name)) {
      await this.#classify(original, name, { classes: this.app.state.trackedIds, cam: this.cam ? 'top' : 'none' });
    }
    original.model = name; // the current image's classes follow the original's top 5 of this model
    if (!current.results.has(name)) await this.#classify(current, name, { classes: this.app.pinnedIds(), cam: cam() });
  }

  /** One request: the chosen model, and the compare model too when the entry lacks it. */
  async #classify(entry, name, { classes, cam }) {
    const compare = this.compare && !entry.results.has(this.compare) ? this.compare : undefined;
    const answer = await api.classify({ image: entry.blob, topK: this.#topK(name), classes, cam, model: name, compare },
      { signal: this.app.signal() });
    addResults(entry, answer);
    entry.model = name;
  }

  /** A failed classification: back to the model shown before (if it can be); whether to render again (null: superseded). */
  #failed(err, name, shown, original, current) {
    if (err.name === 'AbortError') return null; // a new photo or session: it renders itself
    this.app.messages.showError(err, `${this.title(name)} could not classify this image`);
    if (shown && shown !== name && original.results.has(shown) && current.results.has(shown)) {
      this.model = shown;
      this.#fill();
      this.#follow(name);
      return true;
    }
    this.app.tables.forEach((table) => table.render([], null, 'No classification: see the error above.'));
    return false;
  }

  // ---------- the compare model ----------

  /** The compare block for the shown entries and the rows of the modified table. */
  showCompare(rowIds) {
    const { history, state } = this.app;
    const name = this.compare;
    this.el.block.hidden = !name;
    if (!name) return;
    const original = history.original;
    const current = history.current;
    this.el.title.textContent = `Compare: ${this.title(name)}`;
    const missing = [...new Set([original, current])].filter((e) => !e.results.has(name));
    if (missing.length) {
      this.table.render([], null, `Classifying with ${this.title(name)}…`);
      if (!this.comparePending) {
        this.comparePending = this.#classifyCompare(missing, name, rowIds)
          .then(() => { this.comparePending = null; this.app.render(); })
          .catch((err) => {
            this.comparePending = null;
            this.app.messages.showError(err, `${this.title(name)} could not classify this image`);
          });
      }
      return;
    }
    this.table.render(tableRows(current, rowIds, original, name)
      .map((row) => ({ ...row, tracked: state.trackedIds.includes(row.classId) })), state.selectedClass);
    const signal = this.app.signal();
    Promise.all([ensureProbs(current, rowIds, signal, name), ensureProbs(original, rowIds, signal, name)])
      .then((fetched) => fetched.some(Boolean) && history.current === current && this.app.render())
      .catch((err) => this.app.messages.showError(err, `${this.title(name)}: classification`));
    const [now, then] = [current, original].map((e) => resultOf(e, name).top[0]);
    const top = now ? `Its top class: ${shortLabel(now.label)} ${percent(now.probability)}` +
      (then && current !== original ? ` (was ${shortLabel(then.label)} ${percent(then.probability)}). ` : '. ') : '';
    this.#drawCams(original, current, name, top).catch((err) => this.app.messages.showError(err, `${this.title(name)}: activation map`));
  }

  async #classifyCompare(entries, name, rowIds) {
    const cam = this.info(name)?.cam === false ? 'none' : this.app.camIds();
    for (const entry of entries) {
      const answer = await api.classify({ image: entry.blob, topK: this.#topK(name), classes: rowIds, cam, model: name },
        { signal: this.app.signal() });
      addResults(entry, answer);
    }
  }

  /** The compare model's CAM of the chosen class (else the original's top class) on both images, one scale. */
  async #drawCams(original, current, name, top) {
    const ticket = ++this.drawing;
    const { el } = this;
    showOn(el.originalImage, original.canvas);
    showOn(el.modifiedImage, current.canvas);
    for (const canvas of [el.originalCam, el.modifiedCam]) {
      canvas.width = original.width;
      canvas.height = original.height;
    }
    delete el.block.dataset.camClass;
    const m = this.info(name);
    const say = (text) => {
      el.status.textContent = top + text;
      el.status.title = el.status.textContent;
    };
    if (m && !m.cam) return say(`No class activation maps: ${m.cam_reason || 'no CAM structure'}.`);
    const id = this.app.state.selectedClass ?? original.top[0]?.classId;
    if (id === undefined || id === null) return say('');
    const signal = this.app.signal();
    await Promise.all([original, current].map((e) => ensureCams(e, [id], signal, name)));
    if (ticket !== this.drawing) return; // drawn again meanwhile
    const [base, now] = [original, current].map((e) => resultOf(e, name).cams.get(id));
    const scale = base.max > 0 ? base.max : Math.max(now.max, 1e-6);
    paintField(el.originalCam, { values: mapValues(base), width: base.width, height: base.height }, SCHEMES.evidence, scale);
    paintField(el.modifiedCam, { values: mapValues(now), width: now.width, height: now.height }, SCHEMES.evidence, scale);
    const mean = (cam) => mapValues(cam).reduce((a, v) => a + v, 0) / (cam.width * cam.height);
    const label = shortLabel(resultOf(original, name).probs.get(id)?.label || this.app.tracker.labels[id] || `class ${id}`);
    say(`Its map of “${label}”: mean evidence ${formatNumber(mean(base))} in the original, ` +
      `${formatNumber(mean(now))} in the modified (scale 0 to the original's peak, ${formatNumber(scale)}).`);
    el.block.dataset.camClass = String(id); // drawn: tests and tools wait for this
  }
}
