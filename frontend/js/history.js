// Undo/redo of edits as a list of states and a cursor. Entry 0 is the
// original; a new edit after some undos drops the undone ones (as in every
// editor). Listeners hear about every move, so buttons and views follow.

export class EditHistory extends EventTarget {
  constructor() {
    super();
    this.entries = [];
    this.index = -1;
  }

  /** Start over with `original` as the only entry. */
  start(original) {
    this.entries = [original];
    this.index = 0;
    this.#changed('start');
  }

  /** Add an entry after the current one (dropping any redo entries). */
  push(entry) {
    if (this.index < 0) throw new Error('no image yet: start() the history first');
    this.entries.splice(this.index + 1);
    this.entries.push(entry);
    this.index = this.entries.length - 1;
    this.#changed('push');
  }

  /** Take over a whole history (a restored session, replayed edits), positioned at `index`. */
  restore(entries, index) {
    if (!entries.length || index < 0 || index >= entries.length) throw new Error('no such history position');
    this.entries = [...entries];
    this.index = index;
    this.#changed('restore');
  }

  get current() {
    return this.index >= 0 ? this.entries[this.index] : null;
  }

  get original() {
    return this.entries[0] || null;
  }

  get canUndo() {
    return this.index > 0;
  }

  get canRedo() {
    return this.index >= 0 && this.index < this.entries.length - 1;
  }

  /** How many edits lie between the original and the current entry. */
  get depth() {
    return Math.max(0, this.index);
  }

  undo() {
    if (!this.canUndo) return false;
    this.index -= 1;
    this.#changed('undo');
    return true;
  }

  redo() {
    if (!this.canRedo) return false;
    this.index += 1;
    this.#changed('redo');
    return true;
  }

  #changed(action) {
    this.dispatchEvent(new CustomEvent('change', { detail: { action, index: this.index } }));
  }
}
