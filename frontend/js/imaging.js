// Canvas helpers: decoding files and API images, the square working copy,
// and encoding a canvas as the PNG that is sent to the API.

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
 * The working copy: the largest centred square of `bitmap`, scaled to
 * size x size. Every edit works on (and sends) this square.
 */
export function centreCropSquare(bitmap, size) {
  const side = Math.min(bitmap.width, bitmap.height);
  const sx = Math.floor((bitmap.width - side) / 2);
  const sy = Math.floor((bitmap.height - side) / 2);
  const canvas = makeCanvas(size);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, sx, sy, side, side, 0, 0, size, size);
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
 * A base64 PNG from the API -> canvas. With `expectSize`, checks the answer has
 * the size of what was sent: a mismatch would misalign every later stroke.
 */
export async function canvasFromBase64Png(base64, expectSize) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const bitmap = await decodeImage(new Blob([bytes], { type: 'image/png' }));
  if (expectSize && (bitmap.width !== expectSize || bitmap.height !== expectSize)) {
    throw new Error(`The server returned a ${bitmap.width}x${bitmap.height} image for a ` +
      `${expectSize}x${expectSize} request.`);
  }
  const canvas = makeCanvas(bitmap.width, bitmap.height);
  canvas.getContext('2d').drawImage(bitmap, 0, 0);
  bitmap.close();
  return canvas;
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
