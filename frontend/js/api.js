// The page's only way to talk to the gateway: the public HTTP API of
// shared/design/API.md. Requests with images are multipart; answers are JSON.
// Every failure becomes an ApiError whose message is the API's own plain-words
// error.message, so callers can show it as it is.

// Relative to the page, so the page also works when mounted under a prefix.
const API_ROOT = new URL('api/v1/', document.baseURI);

export class ApiError extends Error {
  /**
   * @param {string} message  what went wrong, in words a person can read
   * @param {number} status   HTTP status (0 when the request never got an answer)
   * @param {string} code     the API's error.code, or a local one
   */
  constructor(message, status = 0, code = 'error') {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

function apiUrl(path) {
  return new URL(path.replace(/^\//, ''), API_ROOT);
}

async function readAnswer(response) {
  let body = null;
  const text = await response.text();
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (response.ok) {
    if (body === null) {
      throw new ApiError(`The server sent an answer that is not JSON (HTTP ${response.status}).`,
        response.status, 'bad_answer');
    }
    return body;
  }
  const error = body && body.error;
  if (error && error.message) {
    throw new ApiError(error.message, response.status, error.code || 'error');
  }
  throw new ApiError(`The server answered HTTP ${response.status} ${response.statusText}`.trim() + '.',
    response.status, 'http_error');
}

async function send(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError('The server cannot be reached. Is the gateway running?', 0, 'network');
  }
  return readAnswer(response);
}

/** GET a JSON resource of the API, e.g. getJson('info'). */
export function getJson(path, { signal } = {}) {
  return send(apiUrl(path), { headers: { Accept: 'application/json' }, signal });
}

/**
 * POST multipart/form-data. `parts` maps names to Blob (sent as a file part),
 * string/number (a text part) or arrays (joined by commas); undefined/null skip.
 */
export function postForm(path, parts, { signal, headers } = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (value === undefined || value === null) continue;
    if (value instanceof Blob) {
      const extension = (value.type.split('/')[1] || 'bin').replace('jpeg', 'jpg');
      form.append(name, value, value.name || `${name}.${extension}`);
    } else if (Array.isArray(value)) {
      form.append(name, value.join(','));
    } else {
      form.append(name, String(value));
    }
  }
  return send(apiUrl(path), {
    method: 'POST', body: form, signal,
    headers: { Accept: 'application/json', ...(headers || {}) },
  });
}

export const getInfo = (opts) => getJson('info', opts);
export const getGallery = (opts) => getJson('gallery', opts);
export const getModels = (opts) => getJson('models', opts);
/** The labels of `model` (undefined: the server's default model), in class-id order. */
export const getLabels = (model, opts) => getJson(model ? `labels?model=${encodeURIComponent(model)}` : 'labels', opts);

/** The `cam` part: 'top', 'none', or a list of class ids. */
function camPart(cam) {
  if (cam === undefined || cam === null) return undefined;
  if (Array.isArray(cam)) return cam.length ? cam.join(',') : 'none';
  return String(cam);
}

/**
 * POST /classify: { image: Blob, topK, classes: [ids], cam: 'top'|'none'|[ids],
 * model, compare } (model undefined: the server's default model; compare: a
 * second model whose answer comes under `compare`).
 */
export function classify({ image, topK = 5, classes, cam, model, compare }, opts) {
  return postForm('classify', {
    image, top_k: topK, classes: classes && classes.length ? classes : undefined, cam: camPart(cam), model, compare,
  }, opts);
}

/** POST /inpaint: { image, mask, backend }. */
export function inpaint({ image, mask, backend }, opts) {
  return postForm('inpaint', { image, mask, backend }, opts);
}

/**
 * POST /segment: the object under a click ({x, y}) or inside a box ([x, y,
 * width, height]) of `image`, grown (grow > 0) or shrunk by `grow` pixels.
 */
export function segment({ image, x, y, box, grow = 0 }, opts) {
  return postForm('segment', { image, x, y, box, grow: grow || undefined }, opts);
}

/**
 * POST /edit: inpaint, then classify the result (with `compare`: by two models), in one request.
 * `answer`: 'region' for only the filled box ({x, y, width, height, png} or null) in place of the
 * whole picture; undefined for the whole picture.
 */
export function edit({ image, mask, backend, topK = 5, classes, cam, model, compare, answer }, opts) {
  return postForm('edit', {
    image, mask, backend, top_k: topK,
    classes: classes && classes.length ? classes : undefined, cam: camPart(cam), model, compare, answer,
  }, opts);
}

/** Read an NDJSON response: onLine(object) for every line; resolves at the end. */
async function readLines(response, onLine) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 1);
      if (line) await onLine(JSON.parse(line));
    }
    if (done) break;
  }
  if (buffer.trim()) await onLine(JSON.parse(buffer));
}

/**
 * POST /explain with Accept: application/x-ndjson. The stream holds progress
 * lines {done, total} (onProgress), maybe preview maps from a coarse pass
 * (lines with maps and "final": false: onPreview), then the final answer,
 * which this resolves with.
 */
export async function explain(parts, { signal, onProgress = () => {}, onPreview = () => {} } = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (value === undefined || value === null) continue;
    if (value instanceof Blob) form.append(name, value, `${name}.png`);
    else form.append(name, String(value));
  }
  let response;
  try {
    response = await fetch(apiUrl('explain'), {
      method: 'POST', body: form, signal, headers: { Accept: 'application/x-ndjson' },
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError('The server cannot be reached. Is the gateway running?', 0, 'network');
  }
  if (!response.ok) return readAnswer(response); // throws the API's error
  let answer = null;
  await readLines(response, async (line) => {
    if (line.error) throw new ApiError(line.error.message, 200, line.error.code);
    if ('hinder' in line && line.final === false) await onPreview(line);
    else if ('hinder' in line) answer = line;
    else if ('done' in line) onProgress(line.done, line.total);
  });
  if (!answer) throw new ApiError('The explanation stopped before it was complete.', 200, 'incomplete');
  return answer;
}

/** Base64 text -> bytes (a plain loop: several times faster than Uint8Array.from with a map). */
export function base64ToBytes(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Base64 PNG of an API answer -> Blob. */
export function base64ToBlob(base64, type = 'image/png') {
  return new Blob([base64ToBytes(base64)], { type });
}
