// The hookline console: uploads, their pages, attempts and failures, and
// templates, all through the public /v1 API with the key of this tab.
import { api, listAll, streamEvents, session, whenUnauthorized, NoStream } from './api.js';
import { el, table, when, ms, excerpt, badge, progress } from './dom.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let current = null; // the view shown: { stop() }

function show(message) {
  if (current) current.stop();
  current = null;
  main.replaceChildren();
  if (!session.key) {
    nav.hidden = true;
    signIn(message);
    return;
  }
  nav.hidden = false;
  const hash = location.hash || '#/uploads';
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('current', hash.startsWith(a.getAttribute('href')));
  const m = hash.match(/^#\/uploads\/(.+)$/);
  if (m) current = uploadPage(safeDecode(m[1]));
  else if (hash === '#/templates') current = templatesPage();
  else current = uploadsPage();
}

function safeDecode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

whenUnauthorized(() => {
  session.clear();
  show('The API refused that key: sign in again.');
});
window.addEventListener('hashchange', () => show());
document.getElementById('signout').addEventListener('click', () => {
  session.clear();
  show();
});

function signIn(message) {
  const input = el('input', { type: 'password', id: 'apikey', name: 'apikey', autocomplete: 'off', spellcheck: 'false', required: true });
  const error = el('p', { id: 'signin-error', class: 'error', role: 'alert', text: message || '' });
  const form = el('form', { id: 'signin', class: 'card signin', novalidate: true },
    el('h1', { text: 'Sign in' }),
    el('label', { for: 'apikey', text: 'API key' }),
    input,
    el('p', { class: 'muted', text: 'The key stays in this browser tab only (session storage) and is sent in the Authorization header.' }),
    el('button', { type: 'submit', class: 'primary', text: 'Sign in' }),
    error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    input.value = '';
    if (!key) {
      error.textContent = 'Enter an API key.';
      return;
    }
    session.set(key);
    try {
      await api('GET', '/v1/uploads?limit=1');
      show();
    } catch (e) {
      if (e.status !== 401) {
        session.clear();
        error.textContent = 'The API did not answer: ' + e.message;
      }
    }
  });
  main.append(form);
  input.focus();
}

// A view's loop: run, then wait ms (or until woken), until stopped.
function loop(run, ms) {
  let stopped = false;
  let timer = null;
  let wake = null;
  const ctl = new AbortController();
  (async () => {
    while (!stopped) {
      const wait = await run(ctl.signal);
      if (stopped) return;
      await new Promise((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, wait ?? ms);
      });
    }
  })();
  return {
    stop() { stopped = true; clearTimeout(timer); ctl.abort(); if (wake) wake(); },
    wake() { clearTimeout(timer); if (wake) wake(); },
    get signal() { return ctl.signal; },
  };
}

const uploadHeadings = ['Upload', 'Template', 'Status', 'Progress', 'Pages', 'Records', 'Created'];

function uploadsPage() {
  const note = el('p', { class: 'muted', id: 'uploads-note' });
  const filter = el('select', { id: 'status-filter', 'aria-label': 'Status' },
    ['', 'delivering', 'completed', 'failed'].map((s) => el('option', { value: s, text: s || 'every status' })));
  let box = table('uploads', uploadHeadings, [], 'Loading…');
  const section = el('section', {}, el('div', { class: 'head' }, el('h1', { text: 'Uploads' }), filter), box, note);
  main.append(section);
  const view = loop(async (signal) => {
    try {
      const q = filter.value ? '&status=' + encodeURIComponent(filter.value) : '';
      const data = await api('GET', '/v1/uploads?limit=100' + q, undefined, signal);
      const next = table('uploads', uploadHeadings, (data.uploads || []).map(uploadRow), 'No uploads yet: import a file with the API or `hookline import`.');
      box.replaceWith(next);
      box = next;
      note.textContent = 'Newest first; updates every 2 s.';
    } catch (e) {
      if (e.name !== 'AbortError') note.textContent = 'Could not load uploads: ' + e.message;
    }
  }, 2000);
  filter.addEventListener('change', () => view.wake());
  return view;
}

function uploadRow(u) {
  return el('tr', { dataset: { upload: u.uploadId, status: u.status } },
    el('td', {}, el('a', { href: '#/uploads/' + encodeURIComponent(u.uploadId), class: 'mono', text: u.uploadId })),
    el('td', { text: u.template }),
    el('td', {}, badge(u.status)),
    el('td', { class: 'wide' }, progress(u)),
    el('td', { class: 'num pages', text: pagesText(u) }),
    el('td', { class: 'num', text: u.totalRecords }),
    el('td', { text: when(u.createdAt) }));
}

function pagesText(u) {
  let s = u.deliveredPages + '/' + u.totalPages + ' delivered';
  if (u.failedPages) s += ', ' + u.failedPages + ' failed';
  return s;
}

const maxCells = 5000;
const maxRows = 500;

function uploadPage(id) {
  const path = '/v1/uploads/' + encodeURIComponent(id);
  let u = null;
  let attempts = [];
  let failures = [];
  let more = false;

  const summary = el('dl', { class: 'summary', id: 'summary' });
  const bar = el('div', { id: 'progress' });
  const retry = el('button', { id: 'retry', type: 'button', class: 'primary', disabled: true, text: 'Retry failed pages' });
  const retryNote = el('span', { id: 'retry-result', class: 'muted', role: 'status' });
  const grid = el('div', { id: 'pages', class: 'grid' });
  const gridNote = el('p', { class: 'muted' });
  const failBox = el('div', {});
  const attBox = el('div', {});
  const note = el('p', { class: 'muted', id: 'live-note' });
  main.append(el('section', {},
    el('p', {}, el('a', { href: '#/uploads', text: '← Uploads' })),
    el('h1', {}, 'Upload ', el('span', { class: 'mono', text: id })),
    summary, bar,
    el('div', { class: 'actions' }, retry, retryNote),
    el('h2', { text: 'Pages' }),
    el('ul', { class: 'legend' }, ['delivered', 'failed', 'retrying', 'pending'].map((s) => el('li', {}, el('span', { class: 'cell ' + s }), s))),
    grid, gridNote,
    el('h2', { text: 'Failure log' }), failBox,
    el('h2', { text: 'Attempts' }), attBox,
    note));

  function renderSummary() {
    summary.replaceChildren(...[
      ['Template', u.template], ['Status', badge(u.status)], ['Records', u.totalRecords],
      ['Pages', pagesText(u) + (u.pendingPages ? ', ' + u.pendingPages + ' pending' : '')],
      ['Created', when(u.createdAt)], ['Updated', when(u.updatedAt)], ['Completed', when(u.completedAt)],
    ].flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { dataset: { field: k.toLowerCase() } }, v)]));
    bar.replaceChildren(progress(u));
    retry.disabled = !(u.failedPages > 0);
  }

  function renderDetails() {
    const n = Math.min(u.totalPages || 0, maxCells);
    const state = new Array(n).fill('pending');
    for (const a of attempts) {
      if (a.page < 1 || a.page > n) continue;
      if (a.outcome === 'delivered' || a.outcome === 'retrying' || a.outcome === 'failed') state[a.page - 1] = a.outcome;
    }
    const failed = new Set(failures.map((f) => f.page));
    for (let i = 0; i < n; i++) {
      if (failed.has(i + 1)) state[i] = 'failed';
      else if (state[i] === 'failed') state[i] = 'pending'; // sent again since
      if (u.status === 'completed') state[i] = 'delivered';
    }
    grid.replaceChildren(...state.map((s, i) => el('span', { class: 'cell ' + s, title: 'page ' + (i + 1) + ': ' + s, dataset: { page: i + 1, state: s } })));
    gridNote.textContent = (u.totalPages > maxCells ? 'The first ' + maxCells + ' of ' + u.totalPages + ' pages. ' : '') +
      (more ? 'Derived from the latest attempts only.' : '');

    failBox.replaceChildren(table('failures', ['Page', 'Attempts', 'Status', 'Error', 'At'], failures.slice(0, maxRows).map((f) =>
      el('tr', {},
        el('td', { class: 'num', text: f.page }), el('td', { class: 'num', text: f.attempts }),
        el('td', { class: 'num', text: f.statusCode || '—' }), el('td', { class: 'err', text: f.error }),
        el('td', { text: when(f.at) }))), 'No undelivered pages.'));

    const shown = attempts.slice(-maxRows).reverse();
    attBox.replaceChildren(table('attempts', ['Page', 'Attempt', 'Outcome', 'Status', 'Latency', 'Error', 'Response', 'At'], shown.map((a) =>
      el('tr', {},
        el('td', { class: 'num', text: a.page }), el('td', { class: 'num', text: a.attempt }),
        el('td', {}, badge(a.outcome)), el('td', { class: 'num', text: a.statusCode || '—' }),
        el('td', { class: 'num', text: ms(a.durationMs) }), el('td', { class: 'err', text: a.error }),
        el('td', {}, a.responseBody ? el('code', { class: 'excerpt', title: excerpt(a.responseBody, 4096), text: excerpt(a.responseBody, 160) }) : ''),
        el('td', { text: when(a.at) }))), 'No attempts yet.'));
    if (attempts.length > maxRows) attBox.append(el('p', { class: 'muted', text: 'The latest ' + maxRows + ' of ' + attempts.length + ' attempts, newest first.' }));
  }

  async function refresh(signal) {
    const [up, att, fl] = await Promise.all([
      api('GET', path, undefined, signal),
      listAll(path + '/attempts', 'attempts', 20000, signal),
      listAll(path + '/failures', 'failures', 20000, signal),
    ]);
    u = up;
    attempts = att.items;
    failures = fl.items;
    more = att.more;
    renderSummary();
    renderDetails();
  }

  let streams = true; // until the API shows it has no event stream
  let pending = null;
  const view = loop(async (signal) => {
    try {
      await refresh(signal);
      if (u.status !== 'delivering') {
        note.textContent = 'Finished; checked again every 5 s.';
        return 5000;
      }
      if (!streams) {
        note.textContent = 'Live: polling every second.';
        return 1000;
      }
      note.textContent = 'Live: following the event stream.';
      await streamEvents(path + '/events', signal, (type, data) => {
        let ev;
        try { ev = JSON.parse(data); } catch { return; }
        for (const k of ['status', 'deliveredPages', 'failedPages', 'pendingPages', 'totalPages', 'updatedAt', 'completedAt']) {
          if (k in ev) u[k] = ev[k];
        }
        renderSummary();
        if (!pending) pending = setTimeout(() => { pending = null; refresh(signal).catch(() => {}); }, 500);
      });
      return 0;
    } catch (e) {
      if (e instanceof NoStream) {
        streams = false;
        return 0;
      }
      if (e.name === 'AbortError') return 0;
      note.textContent = e.status === 404 ? 'No such upload.' : 'Could not load the upload: ' + e.message;
      return 3000;
    }
  }, 1000);

  retry.addEventListener('click', async () => {
    retry.disabled = true;
    retryNote.textContent = 'Sending the failed pages again…';
    try {
      const res = await api('POST', path + '/retry', undefined, view.signal);
      retryNote.textContent = res.requeuedPages + ' page' + (res.requeuedPages === 1 ? '' : 's') + ' queued again.';
    } catch (e) {
      retryNote.textContent = 'Retry refused: ' + e.message;
    }
    view.wake();
  });
  const stop = view.stop;
  view.stop = () => { clearTimeout(pending); stop(); };
  return view;
}

function templatesPage() {
  const note = el('p', { class: 'muted', id: 'templates-note' });
  let box = table('templates', ['Code', 'Name', 'Destination', 'State', ''], [], 'Loading…');
  main.append(el('section', {}, el('div', { class: 'head' }, el('h1', { text: 'Templates' })), box, note));
  const view = loop(async (signal) => {
    if (box.querySelector('.test-row:not([hidden])')) return 15000; // a test form is open
    try {
      const { items } = await listAll('/v1/templates', 'templates', 10000, signal);
      const next = table('templates', ['Code', 'Name', 'Destination', 'State', ''], items.map((t) => templateRows(t, () => view.wake())).flat(),
        'No templates yet: create one with PUT /v1/templates/{code} or `hookline templates apply`.');
      box.replaceWith(next);
      box = next;
    } catch (e) {
      if (e.name !== 'AbortError') note.textContent = 'Could not load templates: ' + e.message;
    }
    return 15000;
  }, 15000);
  return view;
}

// templateRows is a template's row, and a row for its test form and result.
function templateRows(t, reload) {
  const wh = (t.destination && t.destination.webhook) || {};
  const path = '/v1/templates/' + encodeURIComponent(t.code);
  const dest = el('div', {},
    el('div', { class: 'mono', text: wh.url }),
    el('div', { class: 'muted' }, [
      wh.authHeaderName ? 'auth header ' + wh.authHeaderName : 'no auth header',
      wh.signingSecret ? 'signing secret ' + wh.signingSecret : 'unsigned',
      'pages of ' + wh.chunkSize, 'retries ' + wh.retryCount + ' every ' + ms(wh.retryInterval),
      'timeout ' + ms(wh.timeout), 'in flight ' + wh.maxInFlight,
    ].join(' · ')));
  const actions = el('td', { class: 'actions' });
  const testRow = el('tr', { class: 'test-row', hidden: true });
  const result = el('div', { class: 'test-result', role: 'status' });
  const state = el('td', {});
  if ('state' in t) {
    state.append(badge(t.state));
    if (t.state === 'paused') state.append(el('div', { class: 'muted', text: [t.pauseReason, t.pausedAt && 'since ' + when(t.pausedAt)].filter(Boolean).join(', ') }));
    const paused = t.state === 'paused';
    const toggle = el('button', { type: 'button', class: 'pause', text: paused ? 'Resume' : 'Pause' });
    toggle.addEventListener('click', async () => {
      toggle.disabled = true;
      try {
        await api('POST', path + (paused ? '/resume' : '/pause'));
        reload();
      } catch (e) {
        result.replaceChildren((paused ? 'Resume' : 'Pause') + ' refused: ' + e.message);
        testRow.hidden = false;
        toggle.disabled = false;
      }
    });
    const testBtn = el('button', { type: 'button', class: 'test', text: 'Send test' });
    testBtn.addEventListener('click', () => { testRow.hidden = !testRow.hidden; });
    actions.append(toggle, testBtn);

    const value = el('input', { type: 'password', autocomplete: 'off', 'aria-label': 'Auth header value', placeholder: wh.authHeaderName ? wh.authHeaderName + ' value (optional)' : 'auth header value (optional)' });
    const send = el('button', { type: 'button', class: 'primary send', text: 'Send one test request' });
    send.addEventListener('click', async () => {
      send.disabled = true;
      result.replaceChildren('Sending…');
      try {
        const body = value.value ? { authHeaderValue: value.value } : {};
        const r = await api('POST', path + '/test', body);
        result.replaceChildren(
          badge(r.delivered ? 'delivered' : 'failed'),
          ' status ' + (r.statusCode || '—') + ' in ' + ms(r.durationMs) + (r.error ? ': ' + r.error : ''),
          r.responseBody ? el('pre', { class: 'excerpt', text: excerpt(r.responseBody, 2000) }) : '');
      } catch (e) {
        result.replaceChildren('Test refused: ' + e.message);
      }
      send.disabled = false;
    });
    testRow.append(el('td', { colspan: 5 }, el('div', { class: 'test-form' }, value, send), result));
  } else {
    state.append(el('span', { class: 'muted', text: '—' }));
  }
  return [el('tr', { dataset: { template: t.code } },
    el('td', { class: 'mono', text: t.code }), el('td', { text: t.name }), el('td', {}, dest), state, actions), testRow];
}

show();
