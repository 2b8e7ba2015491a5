// Changes that replace the whole page state: a new working copy (another
// working size or framing: asks first when there are edits, and can replay
// them at the new size) and sessions (saved to one file, opened again).

import { ask } from './ui.js';
import { downloadBlob } from './imaging.js';
import { exportSession, readSession } from './session.js';

export class StateChanges {
  /** @param {Object} app  the page's parts and state (see app.js) */
  constructor(app) {
    this.app = app;
  }

  /**
   * The working copy changes (size or framing): with edits, ask first. A new size
   * can replay the edits (masks scaled); a new framing can only start over.
   */
  async changeWorkingCopy({ size = this.app.state.size, framing = this.app.state.framing, revert }) {
    const { state, history, brush, edits, tracker, messages, el } = this.app;
    const steps = history.entries.length - 1;
    let choice = 'over';
    if (state.source && steps > 0) {
      const choices = [{ value: 'over', label: 'Start over' }, { value: 'cancel', label: 'Keep things as they are' }];
      if (size !== state.size) choices.unshift({ value: 'replay', label: `Replay the ${steps} edit${steps === 1 ? '' : 's'}`, primary: true });
      else choices[0].primary = true;
      choice = await ask(el.confirm, {
        title: size !== state.size ? `Work at ${size} px?` : 'Change the framing?',
        text: `The photo has ${steps} history step${steps === 1 ? '' : 's'} at ${state.size} px. ` +
          (size !== state.size ? 'Replaying applies each stroke again, scaled, with its backend; starting over clears them. '
            : 'Starting over clears them. ') + 'Export the session first to keep this state.',
        choices,
      });
    }
    if (!choice || choice === 'cancel') return revert();
    const old = { entries: history.entries, index: history.index, tracked: state.trackedIds, selected: state.selectedClass };
    const brushShare = brush.size / state.size;
    state.size = size;
    this.app.setBrushLimits();
    brush.setSize(brushShare * size); // the brush keeps covering the same part of the picture
    if (!state.source) return;
    await this.app.loadPhoto(state.source, state.sourceTitle, framing);
    if (choice !== 'replay') return;
    const generation = state.generation;
    const replayed = await edits.replay(old.entries);
    if (generation !== state.generation) return;
    state.trackedIds = old.tracked;
    tracker.setCount(state.trackedIds.length);
    state.selectedClass = old.selected;
    history.restore(history.entries, Math.min(old.index, history.entries.length - 1));
    messages.showNotice(replayed === steps ? `Replayed ${steps} history steps at ${size} px.`
      : `Replayed ${replayed} of ${steps} history steps at ${size} px: step ${replayed + 1} was not a stroke and cannot be replayed.`);
  }

  /** Download the session as one JSON file. */
  async save() {
    const { state, history, backends, models } = this.app;
    if (!history.original) return;
    const json = await exportSession({
      entries: history.entries, index: history.index, title: state.sourceTitle, workingSize: state.size,
      framing: state.framing, view: { tracked: state.trackedIds, selected_class: state.selectedClass,
        table_mode: state.tableMode, backend: backends.value || null, model: history.current.model,
        compare: models.compare || null },
    });
    const name = `${(state.sourceTitle || 'session').replace(/\.[a-z]+$/i, '').replace(/[^\w-]+/g, '_')}-session.json`;
    downloadBlob(new Blob([json], { type: 'application/json' }), name);
  }

  /** Open a session file: everything is checked first; a refused file changes nothing. */
  async open(file) {
    const { state, el, spinner, messages, brush, stages, tracker, overlay, backends, picker, history, events, models } = this.app;
    let session;
    try {
      if (!state.info) throw new Error('The server has not described itself yet: try again in a moment.');
      session = await spinner.during(readSession(file, state.info), 'Opening the session…');
    } catch (err) {
      messages.showError(err, `“${file.name}” could not be opened`);
      return;
    }
    this.app.startOver();
    const original = session.entries[0];
    state.source = await createImageBitmap(original.canvas);
    state.sourceTitle = session.title;
    state.framing = { kind: 'whole' }; // the session's original is the whole working copy
    if ([...el.size.options].some((o) => Number(o.value) === session.workingSize && !o.disabled)) {
      state.size = session.workingSize;
      el.size.value = String(state.size);
    }
    el.framing.value = 'whole';
    this.app.setBrushLimits();
    state.trackedIds = session.view.tracked || [];
    tracker.setCount(state.trackedIds.length);
    state.selectedClass = session.view.selected_class ?? null;
    overlay.classId = state.selectedClass;
    overlay.choice = state.selectedClass === null ? 'none' : 'cam';
    state.tableMode = session.view.table_mode || 'pinned';
    if (session.view.backend) backends.choose(session.view.backend);
    models.restore(session.model, session.compare);
    brush.reset(original.width, original.height);
    stages.setSize(original.width, original.height);
    picker.press(null);
    brush.enabled = true;
    history.restore(session.entries, session.index);
    events.dispatchEvent(new CustomEvent('image', { detail: { title: session.title, width: original.width, height: original.height } }));
    messages.clearError();
    messages.showNotice(`Opened the session “${session.title}”: ${session.entries.length - 1} history steps.`);
  }
}
