// DOM building without HTML strings: every value from the API becomes text.

// el makes an element: props set attributes (class, text, on<event>,
// dataset), children are nodes or strings (as text).
export function el(tag, props, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = String(v);
    else if (k === 'dataset') Object.assign(n.dataset, v);
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) n.append(c instanceof Node ? c : String(c));
  }
  return n;
}

export function table(id, headings, rows, empty) {
  const body = el('tbody', {}, rows);
  if (!rows.length) body.append(el('tr', {}, el('td', { class: 'empty', colspan: headings.length, text: empty })));
  return el('table', { id, class: 'list' }, el('thead', {}, el('tr', {}, headings.map((h) => el('th', { text: h })))), body);
}

export function when(s) {
  if (!s) return '—';
  const d = new Date(s);
  return isNaN(d) ? String(s) : d.toLocaleString();
}

export function ms(n) {
  if (n === undefined || n === null) return '—';
  return n >= 1000 ? (n / 1000).toFixed(1) + ' s' : n + ' ms';
}

export function excerpt(s, n) {
  s = String(s || '');
  return s.length > n ? s.slice(0, n) + '…' : s;
}

const statuses = new Set(['delivering', 'completed', 'failed', 'active', 'paused', 'delivered', 'retrying']);

// badge shows a status; only known values become a class.
export function badge(status) {
  return el('span', { class: 'badge' + (statuses.has(status) ? ' s-' + status : ''), text: status || '—' });
}

// progress is a bar of delivered (and failed) pages out of the total.
export function progress(u) {
  const total = Math.max(Number(u.totalPages) || 0, 1);
  const done = (Number(u.deliveredPages) || 0) + (Number(u.failedPages) || 0);
  const bar = el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': u.totalPages, 'aria-valuenow': done });
  const ok = el('span', { class: 'ok' });
  const bad = el('span', { class: 'bad' });
  ok.style.width = (100 * (Number(u.deliveredPages) || 0)) / total + '%';
  bad.style.width = (100 * (Number(u.failedPages) || 0)) / total + '%';
  bar.append(ok, bad);
  return bar;
}
