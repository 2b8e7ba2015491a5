// The prediction tables: class, confidence (with a bar), and on the modified
// side the change against the original. A row is a control: clicking it (or
// Enter/Space on it) selects that class, whose CAM is then shown on both images.

const NO_CHANGE = 0.0005; // below 0.05 percentage points a change is noise

/** "cash machine, cash dispenser, ..." -> "cash machine" (the rest goes in a tooltip). */
export function shortLabel(label) {
  return String(label).split(',')[0].trim();
}

export function percent(probability) {
  if (Number.isNaN(probability)) return '…';
  const value = probability * 100;
  if (value >= 10) return `${value.toFixed(1)}%`;
  if (value >= 0.01) return `${value.toFixed(2)}%`;
  return value > 0 ? '<0.01%' : '0%';
}

/** A signed change in percentage points, with its direction for colour and screen readers. */
export function describeChange(delta) {
  if (delta === null || delta === undefined || Number.isNaN(delta)) {
    return { text: '–', direction: 'unknown', words: 'change unknown' };
  }
  if (Math.abs(delta) < NO_CHANGE) return { text: '0.0', direction: 'same', words: 'no change' };
  const points = Math.abs(delta * 100);
  const shown = points >= 10 ? points.toFixed(1) : points.toFixed(2);
  return delta > 0
    ? { text: `▲ +${shown}`, direction: 'up', words: `up ${shown} points` }
    : { text: `▼ −${shown}`, direction: 'down', words: `down ${shown} points` };
}

function cell(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export class PredictionTable {
  /**
   * @param {HTMLTableElement} table  with a <tbody>; a "change" column if `showChange`
   * @param {{showChange?: boolean, onSelect: (classId: number|null) => void}} options
   */
  constructor(table, { showChange = false, onSelect }) {
    this.table = table;
    this.body = table.tBodies[0];
    this.showChange = showChange;
    this.onSelect = onSelect;
    this.body.addEventListener('click', (e) => this.#activate(e.target));
    this.body.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        this.#activate(e.target);
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        const row = e.target.closest('tr');
        const next = e.key === 'ArrowDown' ? row?.nextElementSibling : row?.previousElementSibling;
        if (next) {
          e.preventDefault();
          next.focus();
        }
      }
    });
  }

  #activate(target) {
    const row = target.closest('tr[data-class-id]');
    if (!row) return;
    const id = Number(row.dataset.classId);
    this.onSelect(row.getAttribute('aria-selected') === 'true' ? null : id);
  }

  /**
   * rows: [{classId, label, probability, change?}] in display order.
   * Keeps keyboard focus on the same class across re-renders.
   */
  render(rows, selectedId, emptyText = 'No classification yet.') {
    const focused = this.body.contains(document.activeElement)
      ? document.activeElement.closest('tr')?.dataset.classId : undefined;
    this.body.replaceChildren();
    if (!rows.length) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = cell('td', null, emptyText);
      td.colSpan = this.showChange ? 3 : 2;
      tr.append(td);
      this.body.append(tr);
      return;
    }
    for (const row of rows) {
      const tr = document.createElement('tr');
      tr.dataset.classId = String(row.classId);
      tr.dataset.probability = String(row.probability);
      tr.tabIndex = 0;
      const selected = row.classId === selectedId;
      tr.setAttribute('aria-selected', String(selected));
      tr.title = `${row.label} (class ${row.classId}). Click to show where the model sees it.`;

      const name = cell('td', 'class-name');
      name.append(cell('span', 'label', shortLabel(row.label)));
      if (row.rank) name.append(cell('span', 'rank', `#${row.rank}`));
      if (row.tracked) name.append(cell('span', 'tag', 'followed'));

      const confidence = cell('td', 'confidence');
      const bar = cell('span', 'bar');
      bar.style.setProperty('--p', String(Math.max(0, Math.min(1, row.probability))));
      confidence.append(bar, cell('span', 'value', percent(row.probability)));

      tr.append(name, confidence);
      if (this.showChange) {
        const change = describeChange(row.change);
        const td = cell('td', `change ${change.direction}`, change.text);
        td.setAttribute('aria-label', change.words);
        tr.append(td);
      }
      this.body.append(tr);
      if (focused === tr.dataset.classId) tr.focus();
    }
  }
}
