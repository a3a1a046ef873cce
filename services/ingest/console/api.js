// The hookline API as the console calls it: the key from sessionStorage in
// an Authorization header, JSON in and out, errors as APIError.

const keyName = 'hookline.apiKey';

export const session = {
  get key() { return sessionStorage.getItem(keyName) || ''; },
  set(key) { sessionStorage.setItem(keyName, key); },
  clear() { sessionStorage.removeItem(keyName); },
};

export class APIError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let onUnauthorized = () => {};

// whenUnauthorized sets what happens when the API refuses the key.
export function whenUnauthorized(fn) { onUnauthorized = fn; }

function request(method, path, body, signal, accept) {
  const headers = { Authorization: 'Bearer ' + session.key, Accept: accept || 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(path, init);
}

async function failure(resp) {
  let e = {};
  try { e = (await resp.json()).error || {}; } catch { /* not JSON */ }
  if (resp.status === 401) onUnauthorized();
  return new APIError(resp.status, e.code || 'http_' + resp.status, e.message || resp.statusText || 'HTTP ' + resp.status, e.field);
}

// api makes one call and returns its decoded answer (null when empty).
export async function api(method, path, body, signal) {
  const resp = await request(method, path, body, signal);
  if (!resp.ok) throw await failure(resp);
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

// listAll reads a list that may come in pages (limit, cursor, nextCursor),
// up to max items; more says whether items were left.
export async function listAll(path, field, max, signal) {
  const items = [];
  let cursor = '';
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const data = await api('GET', path + sep + 'limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''), undefined, signal);
    items.push(...(data[field] || []));
    if (!data.nextCursor || items.length >= max) return { items, more: Boolean(data.nextCursor) };
    cursor = data.nextCursor;
  }
}

// NoStream says the API has no event stream at that path.
export class NoStream extends Error {}

// streamEvents reads a text/event-stream answer (with the key in a header,
// which EventSource cannot send), calling onEvent(type, data) per event. It
// resolves when the server ends the stream.
export async function streamEvents(path, signal, onEvent) {
  const resp = await request('GET', path, undefined, signal, 'text/event-stream');
  if (!resp.ok) {
    const err = await failure(resp);
    throw resp.status === 404 || resp.status === 405 ? new NoStream(err.message) : err;
  }
  if (!(resp.headers.get('Content-Type') || '').startsWith('text/event-stream')) throw new NoStream('not an event stream');
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let type = 'message';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      let line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) onEvent(type, data.join('\n'));
        type = 'message';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? '' : line.slice(colon + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (name === 'event') type = v;
      else if (name === 'data') data.push(v);
    }
  }
}
