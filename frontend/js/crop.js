// The square crop a person can move: a dialog showing the whole photo with a
// square over it, moved by dragging (mouse, finger, pen) or the arrow keys.
// Resolves with the square in the photo's own pixels, or null if cancelled.

const SHADE = 'rgba(15, 23, 42, 0.55)';

export function chooseSquare(dialog, bitmap, start) {
  const canvas = dialog.querySelector('#crop-canvas');
  const fit = Math.min(320 / bitmap.width, 320 / bitmap.height);
  canvas.width = Math.round(bitmap.width * fit);
  canvas.height = Math.round(bitmap.height * fit);
  const square = { ...start };
  const clamp = () => {
    square.x = Math.max(0, Math.min(bitmap.width - square.side, square.x));
    square.y = Math.max(0, Math.min(bitmap.height - square.side, square.y));
  };
  const draw = () => {
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const [x, y, s] = [square.x * fit, square.y * fit, square.side * fit];
    ctx.fillStyle = SHADE;
    ctx.beginPath();
    ctx.rect(0, 0, canvas.width, canvas.height);
    ctx.rect(x, y, s, s);
    ctx.fill('evenodd');
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 2;
    ctx.strokeRect(x + 1, y + 1, s - 2, s - 2);
  };
  let drag = null;
  const onDown = (e) => {
    canvas.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, y: e.clientY, from: { ...square } };
  };
  const onMove = (e) => {
    if (!drag) return;
    const scale = canvas.width / canvas.getBoundingClientRect().width / fit;
    square.x = drag.from.x + (e.clientX - drag.x) * scale;
    square.y = drag.from.y + (e.clientY - drag.y) * scale;
    clamp();
    draw();
  };
  const onUp = () => {
    drag = null;
  };
  const onKey = (e) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (!moves[e.key]) return;
    e.preventDefault();
    const step = Math.max(1, Math.round(square.side / (e.shiftKey ? 4 : 20)));
    square.x += moves[e.key][0] * step;
    square.y += moves[e.key][1] * step;
    clamp();
    draw();
  };
  canvas.addEventListener('pointerdown', onDown);
  canvas.addEventListener('pointermove', onMove);
  canvas.addEventListener('pointerup', onUp);
  canvas.addEventListener('keydown', onKey);
  clamp();
  draw();
  return new Promise((resolve) => {
    const ok = dialog.querySelector('[data-action="ok"]');
    const cancel = dialog.querySelector('[data-action="cancel"]');
    const close = (value) => () => dialog.close(value);
    const onOk = close('ok');
    const onCancel = close('');
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('close', () => {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      for (const [type, fn] of [['pointerdown', onDown], ['pointermove', onMove], ['pointerup', onUp], ['keydown', onKey]]) {
        canvas.removeEventListener(type, fn);
      }
      resolve(dialog.returnValue === 'ok'
        ? { kind: 'square', x: Math.round(square.x), y: Math.round(square.y), side: square.side } : null);
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    canvas.focus();
  });
}
