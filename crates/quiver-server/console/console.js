// QuiverDB console: one page, no framework, no build step. It talks to the same REST API as every client.
'use strict';

const KEY_STORE = 'quiver-api-key';
const state = { key: localStorage.getItem(KEY_STORE) || '', infos: {}, map: null, live: [], lastScrape: null };

// ---------- helpers ----------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) el.append(kid instanceof Node ? kid : String(kid));
  return el;
}
const $ = (sel, el = document) => el.querySelector(sel);
const fmt = n => (typeof n === 'number' ? n.toLocaleString('en-US') : n ?? '–');
function bytes(n) {
  if (typeof n !== 'number') return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
function short(v, max = 160) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > max ? s.slice(0, max) + '…' : s;
}
function errorBox(e) { return h('p', { class: 'error', text: String(e.message || e) }); }

// ---------- API ----------
let asking = null;
function askKey() {
  // One prompt at a time, however many requests were refused.
  if (asking) return asking;
  asking = new Promise(resolve => {
    const d = $('#key-dialog');
    $('#key-input').value = state.key;
    d.onclose = () => {
      if (d.returnValue === 'save') {
        state.key = $('#key-input').value.trim();
        localStorage.setItem(KEY_STORE, state.key);
        resolve(true);
      } else resolve(false);
    };
    d.showModal();
  }).finally(() => { asking = null; });
  return asking;
}

async function api(method, path, body, raw = false) {
  const headers = { 'content-type': 'application/json' };
  if (state.key) headers['api-key'] = state.key;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) {
    if (await askKey()) return api(method, path, body, raw);
    throw new Error('this server needs an API key');
  }
  const text = await r.text();
  if (raw && r.ok) return text;
  let j = null;
  try { j = JSON.parse(text); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new Error(`${r.status}: ${(j && j.status && j.status.error) || text || r.statusText}`);
  return j ? j.result : null;
}
const enc = encodeURIComponent;

// ---------- routing ----------
const TABS = ['overview', 'points', 'search', 'map'];
function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const view = $('#view');
  view.replaceChildren();
  const crumbs = $('#crumbs');
  crumbs.replaceChildren(h('a', { href: '#/', text: 'collections' }));
  if (parts[0] === 'c' && parts[1]) {
    const name = parts[1], tab = TABS.includes(parts[2]) ? parts[2] : 'overview';
    crumbs.append(' / ', h('span', { text: name }));
    view.append(h('div', { class: 'tabs' },
      TABS.map(t => h('a', { href: `#/c/${enc(name)}/${t}`, class: t === tab ? 'on' : null, text: t }))));
    const body = h('div', { id: 'tab' });
    view.append(body);
    ({ overview: showOverview, points: showPoints, search: showSearch, map: showMap })[tab](name, body)
      .catch(e => body.append(errorBox(e)));
  } else {
    showCollections(view).catch(e => view.append(errorBox(e)));
  }
}

async function info(name) {
  const i = await api('GET', `/collections/${enc(name)}`);
  state.infos[name] = i;
  return i;
}
function vectorsOf(i) { return (i.config && i.config.params && i.config.params.vectors) || {}; }
function modelOf(i) {
  let found = null;
  const walk = v => {
    if (!v || typeof v !== 'object' || found) return;
    if (v.embedding && typeof v.embedding === 'object' && v.embedding.model) { found = v.embedding.model; return; }
    Object.values(v).forEach(walk);
  };
  walk(i);
  return found;
}

// ---------- collections ----------
async function showCollections(view) {
  view.append(h('h1', { text: 'Collections' }));
  const list = (await api('GET', '/collections')).collections || [];
  if (!list.length) {
    view.append(h('p', { class: 'muted', text: 'No collections yet. Create one with PUT /collections/{name} or run `quiver demo`.' }));
    return;
  }
  const rows = await Promise.all(list.map(async c => {
    try {
      const i = await info(c.name);
      const v = vectorsOf(i);
      return h('tr', {},
        h('td', {}, h('a', { href: `#/c/${enc(c.name)}/overview`, class: 'collection-link', text: c.name })),
        h('td', { class: 'num', text: fmt(i.points_count) }),
        h('td', { class: 'num', text: fmt(i.segments_count) }),
        h('td', { text: `${v.size ?? '?'} · ${v.distance ?? '?'}` }),
        h('td', { text: modelOf(i) || '–' }),
        h('td', { text: i.status }));
    } catch (e) {
      return h('tr', {}, h('td', { text: c.name }), h('td', { colspan: 5, class: 'error', text: e.message }));
    }
  }));
  view.append(h('table', { id: 'collections' },
    h('tr', {}, ['name', 'points', 'segments', 'vectors', 'model', 'status'].map(t => h('th', { text: t }))), rows));
}

// ---------- overview ----------
async function showOverview(name, el) {
  const i = await info(name);
  const q = i.quiver || {};
  const v = vectorsOf(i);
  const card = (label, value) => h('div', { class: 'card' }, h('div', { class: 'label', text: label }), h('div', { class: 'v', text: value }));
  el.append(h('div', { class: 'cards', id: 'overview-cards' },
    card('points', fmt(i.points_count)), card('indexed', fmt(i.indexed_vectors_count)),
    card('segments', fmt(i.segments_count)), card('status', i.status),
    card('vectors', `${v.size ?? '?'} · ${v.distance ?? '?'}`), card('model', modelOf(i) || '–'),
    card('memory', bytes(q.memory_bytes)), card('disk', bytes(q.disk_bytes))));
  const segs = Array.isArray(q.segments) ? q.segments : [];
  if (segs.length) {
    const cols = Object.keys(segs[0]).filter(k => typeof segs[0][k] !== 'object' || segs[0][k] === null);
    el.append(h('h2', { text: 'Segments' }), h('table', {},
      h('tr', {}, cols.map(c => h('th', { text: c }))),
      segs.map(s => h('tr', {}, cols.map(c => h('td', { class: typeof s[c] === 'number' ? 'num' : null,
        text: /bytes$/.test(c) ? bytes(s[c]) : fmt(s[c]) }))))));
  }
  const rest = Object.fromEntries(Object.entries(q).filter(([k]) => k !== 'segments'));
  el.append(h('h2', { text: 'Tiers, optimizer, sequence numbers' }), h('pre', { text: JSON.stringify(rest, null, 2) }));
  el.append(h('h2', { text: 'Configuration' }), h('pre', { text: JSON.stringify(i.config, null, 2) }));
  el.append(h('h2', { text: 'Payload indexes' }), h('pre', { text: JSON.stringify(i.payload_schema, null, 2) }));
}

// ---------- filter builder ----------
const OPS = [['eq', '='], ['any', 'any of (a, b)'], ['text', 'text contains'], ['gte', '≥'], ['lte', '≤'], ['empty', 'is empty']];
function parseValue(s) {
  const t = s.trim();
  if (t === 'true' || t === 'false') return t === 'true';
  if (t !== '' && !isNaN(Number(t))) return Number(t);
  return t;
}
function filterBuilder() {
  const box = h('div', { class: 'filter' });
  const out = h('pre', { class: 'small filter-json', text: '(no filter)' });
  const conds = h('div');
  const conditions = [];
  const update = () => {
    const f = build();
    out.textContent = f ? JSON.stringify(f) : '(no filter)';
  };
  const add = () => {
    const c = {
      clause: h('select', { onchange: update }, h('option', { value: 'must', text: 'must' }), h('option', { value: 'must_not', text: 'must not' })),
      key: h('input', { type: 'text', placeholder: 'payload key', size: 14, oninput: update, class: 'filter-key' }),
      op: h('select', { onchange: update, class: 'filter-op' }, OPS.map(([v, t]) => h('option', { value: v, text: t }))),
      value: h('input', { type: 'text', placeholder: 'value', size: 16, oninput: update, class: 'filter-value' }),
    };
    const row = h('div', { class: 'cond' }, c.clause, c.key, c.op, c.value,
      h('button', { type: 'button', class: 'plain', text: '×', onclick: () => {
        conditions.splice(conditions.indexOf(c), 1); row.remove(); update(); } }));
    conditions.push(c);
    conds.append(row);
  };
  const build = () => {
    const f = {};
    for (const c of conditions) {
      const key = c.key.value.trim();
      if (!key) continue;
      const val = c.value.value;
      let cond;
      switch (c.op.value) {
        case 'eq': cond = { key, match: { value: parseValue(val) } }; break;
        case 'any': cond = { key, match: { any: val.split(',').map(parseValue) } }; break;
        case 'text': cond = { key, match: { text: val } }; break;
        case 'gte': cond = { key, range: { gte: Number(val) } }; break;
        case 'lte': cond = { key, range: { lte: Number(val) } }; break;
        default: cond = { is_empty: { key } };
      }
      (f[c.clause.value] = f[c.clause.value] || []).push(cond);
    }
    return Object.keys(f).length ? f : null;
  };
  box.append(conds, h('div', { class: 'row' }, h('button', { type: 'button', class: 'plain add-condition', text: '+ condition', onclick: () => { add(); update(); } }), out));
  box.build = build;
  return box;
}

// ---------- points ----------
async function showPoints(name, el) {
  const fb = filterBuilder();
  const table = h('div', { id: 'points' });
  let offset = null;
  const more = h('button', { type: 'button', class: 'plain', text: 'Next page', disabled: true });
  const load = async (reset) => {
    if (reset) { offset = null; table.replaceChildren(); }
    const body = { limit: 20, with_payload: true, with_vector: false };
    const f = fb.build();
    if (f) body.filter = f;
    if (offset !== null) body.offset = offset;
    try {
      const r = await api('POST', `/collections/${enc(name)}/points/scroll`, body);
      const rows = r.points.map(p => h('tr', {}, h('td', { text: p.id }), h('td', { class: 'payload', text: short(p.payload, 600) })));
      if (!table.firstChild) table.append(h('table', {}, h('tr', {}, h('th', { text: 'id' }), h('th', { text: 'payload' }))));
      table.firstChild.append(...rows);
      offset = r.next_page_offset;
      more.disabled = offset === null || offset === undefined;
    } catch (e) { table.append(errorBox(e)); }
  };
  more.onclick = () => load(false);
  el.append(h('h2', { text: 'Filter' }), fb, h('div', { class: 'row' }, h('button', { type: 'button', text: 'Scroll', onclick: () => load(true) })), table, more);
  await load(true);
}

// ---------- search ----------
async function showSearch(name, el) {
  const i = state.infos[name] || await info(name);
  const model = modelOf(i);
  const mode = h('select', { id: 'search-mode' },
    model ? h('option', { value: 'text', text: `text (${model})` }) : null,
    h('option', { value: 'id', text: 'more like point id' }),
    h('option', { value: 'vector', text: 'raw vector (JSON array)' }));
  const input = h('textarea', { id: 'search-input', rows: 2, cols: 70, placeholder: model ? 'what to look for' : 'a point id, or [0.1, …]' });
  const limit = h('input', { type: 'number', value: 10, min: 1, max: 1000, style: 'width:6em' });
  const explain = h('input', { type: 'checkbox', checked: true, id: 'search-explain' });
  const fb = filterBuilder();
  const out = h('div', { id: 'search-results' });
  const run = async () => {
    out.replaceChildren();
    const raw = input.value.trim();
    let query;
    try {
      if (mode.value === 'text') query = { text: raw };
      else if (mode.value === 'id') query = /^\d+$/.test(raw) ? Number(raw) : raw;
      else query = JSON.parse(raw);
    } catch (e) { out.append(errorBox(`the vector is not JSON: ${e.message}`)); return; }
    const body = { query, limit: Number(limit.value) || 10, with_payload: true, explain: explain.checked };
    const f = fb.build();
    if (f) body.filter = f;
    const t = performance.now();
    try {
      const r = await api('POST', `/collections/${enc(name)}/points/query`, body);
      const pts = r.points || r;
      out.append(h('p', { class: 'muted', text: `${pts.length} hits in ${(performance.now() - t).toFixed(0)} ms (round trip)` }),
        h('table', {}, h('tr', {}, ['#', 'score', 'id', 'payload'].map(x => h('th', { text: x }))),
          pts.map((p, k) => h('tr', { class: 'hit' }, h('td', { class: 'num', text: k + 1 }), h('td', { class: 'num', text: p.score.toFixed(4) }),
            h('td', { text: p.id }), h('td', { class: 'payload', text: short(p.payload, 400) })))));
      if (r.explain) out.append(h('h2', { text: 'Plan (explain)' }), h('pre', { id: 'search-explain-out', text: JSON.stringify(r.explain, null, 2) }));
    } catch (e) { out.append(errorBox(e)); }
  };
  el.append(h('div', { class: 'row' }, mode, input),
    h('div', { class: 'row' }, h('label', {}, 'limit ', limit), h('label', {}, explain, ' explain the plan'),
      h('button', { type: 'button', id: 'search-run', text: 'Search', onclick: run })),
    h('h2', { text: 'Filter' }), fb, out);
  input.addEventListener('keydown', e => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); run(); } });
}

// ---------- map ----------
const PALETTE = ['#2f6fde', '#e8590c', '#2b8a3e', '#c2255c', '#7048e8', '#0c8599', '#e67700', '#5c940d', '#d6336c', '#364fc7', '#a61e4d'];
const OTHER = '#adb5bd';
function colourer(points) {
  const vals = points.map(p => p.color).filter(v => v !== undefined && v !== null);
  if (!vals.length) return { of: () => PALETTE[0], legend: [] };
  if (vals.every(v => typeof v === 'number')) {
    const lo = Math.min(...vals), hi = Math.max(...vals), span = hi - lo || 1;
    const ramp = t => `hsl(${Math.round(240 - 220 * t)}, 70%, ${Math.round(42 + 8 * t)}%)`;
    return { of: v => (typeof v === 'number' ? ramp((v - lo) / span) : OTHER), legend: [[ramp(0), fmt(lo)], [ramp(1), fmt(hi)]] };
  }
  const counts = new Map();
  for (const v of vals) { const k = short(v, 40); counts.set(k, (counts.get(k) || 0) + 1); }
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, PALETTE.length).map(e => e[0]);
  const index = new Map(top.map((k, i) => [k, PALETTE[i]]));
  const legend = top.map(k => [index.get(k), `${k} (${counts.get(k)})`]);
  if (counts.size > top.length) legend.push([OTHER, 'other']);
  return { of: v => (v === undefined || v === null ? OTHER : index.get(short(v, 40)) || OTHER), legend };
}

async function payloadKeys(name) {
  const keys = new Set(Object.keys((state.infos[name] || {}).payload_schema || {}));
  try {
    const r = await api('POST', `/collections/${enc(name)}/points/scroll`, { limit: 50, with_payload: true });
    for (const p of r.points) for (const [k, v] of Object.entries(p.payload || {})) if (typeof v !== 'object' || Array.isArray(v)) keys.add(k);
  } catch (_) { /* keys from the schema only */ }
  return [...keys].sort();
}

async function showMap(name, el) {
  const keys = await payloadKeys(name);
  const sample = h('input', { type: 'number', id: 'map-sample', value: 2000, min: 1, max: 50000, style: 'width:7em' });
  const method = h('select', { id: 'map-method' }, h('option', { value: 'umap', text: 'UMAP' }), h('option', { value: 'pca', text: 'PCA' }));
  const colour = h('select', { id: 'map-color' }, h('option', { value: '', text: '(one colour)' }),
    keys.map(k => h('option', { value: k, text: k, selected: ['topic', 'category', 'tag', 'tags', 'label'].includes(k) })));
  const status = h('p', { class: 'muted', id: 'map-status' });
  const canvas = h('canvas', { id: 'map', width: 760, height: 560 });
  const tip = h('div', { id: 'map-tip' });
  const legend = h('div', { class: 'legend', id: 'map-legend' });
  const hits = h('div', { id: 'map-hits' });
  el.append(h('div', { class: 'row' }, h('label', {}, 'sample ', sample), method, h('label', {}, 'colour by ', colour),
    h('button', { type: 'button', id: 'map-draw', text: 'Draw', onclick: () => draw() })),
    status, legend, h('div', { id: 'map-wrap' }, canvas, tip),
    h('p', { class: 'muted small', text: 'Hover a point to read it; click it to find the points most like it (ringed).' }), hits);

  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, PAD = 14;
  const px = p => [PAD + p.x * (W - 2 * PAD), PAD + (1 - p.y) * (H - 2 * PAD)];
  let m = null, paint = null, highlight = new Set(), chosen = null;

  const render = () => {
    ctx.clearRect(0, 0, W, H);
    if (!m) return;
    const r = m.points.length > 20000 ? 1.2 : m.points.length > 5000 ? 1.8 : 2.6;
    ctx.globalAlpha = highlight.size ? 0.35 : 0.85;
    for (const p of m.points) {
      const [x, y] = px(p);
      ctx.fillStyle = paint.of(p.color);
      ctx.fillRect(x - r, y - r, 2 * r, 2 * r);
    }
    ctx.globalAlpha = 1;
    ctx.strokeStyle = '#1d2330'; ctx.lineWidth = 1.2;
    for (const c of m.cells) {
      const [x, y] = px(c);
      ctx.beginPath(); ctx.moveTo(x - 4, y); ctx.lineTo(x + 4, y); ctx.moveTo(x, y - 4); ctx.lineTo(x, y + 4); ctx.stroke();
    }
    ctx.lineWidth = 2;
    for (const p of m.points) {
      if (!highlight.has(String(p.id))) continue;
      const [x, y] = px(p);
      ctx.strokeStyle = '#e03131'; ctx.beginPath(); ctx.arc(x, y, 6, 0, 2 * Math.PI); ctx.stroke();
    }
    if (chosen) {
      const [x, y] = px(chosen);
      ctx.fillStyle = '#000'; ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill();
    }
  };
  const nearest = (ev) => {
    if (!m) return null;
    const b = canvas.getBoundingClientRect();
    const mx = (ev.clientX - b.left) * (W / b.width), my = (ev.clientY - b.top) * (H / b.height);
    let best = null, bd = 64;
    for (const p of m.points) {
      const [x, y] = px(p);
      const d = (x - mx) ** 2 + (y - my) ** 2;
      if (d < bd) { bd = d; best = p; }
    }
    return best;
  };
  canvas.addEventListener('mousemove', ev => {
    const p = nearest(ev);
    if (!p) { tip.style.display = 'none'; return; }
    const [x, y] = px(p);
    tip.replaceChildren(h('b', { text: `#${p.id}` }), p.color !== undefined ? h('span', { text: ` · ${short(p.color, 40)}` }) : null,
      p.text ? h('div', { text: p.text }) : null);
    tip.style.left = `${Math.min(x + 12, W - 200)}px`;
    tip.style.top = `${y + 12}px`;
    tip.style.display = 'block';
  });
  canvas.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
  canvas.addEventListener('click', async ev => {
    const p = nearest(ev);
    if (!p) return;
    chosen = p;
    hits.replaceChildren(h('p', { class: 'muted', text: `Points most like #${p.id}…` }));
    try {
      const r = await api('POST', `/collections/${enc(name)}/points/query`, { query: p.id, limit: 10, with_payload: true });
      const pts = r.points || r;
      highlight = new Set(pts.map(x => String(x.id)));
      const onMap = m.points.filter(x => highlight.has(String(x.id))).length;
      document.body.dataset.mapHighlighted = String(highlight.size);
      hits.replaceChildren(h('h2', { text: `Most like #${p.id}${p.text ? ` — ${short(p.text, 80)}` : ''}` }),
        h('p', { class: 'muted', text: `${pts.length} hits, ${onMap} of them in this sample (ringed in red)` }),
        h('table', {}, pts.map(x => h('tr', { class: 'map-hit' }, h('td', { class: 'num', text: x.score.toFixed(3) }), h('td', { text: x.id }),
          h('td', { class: 'payload', text: short(x.payload && (x.payload[m.text_field] ?? x.payload), 200) })))));
    } catch (e) { hits.replaceChildren(errorBox(e)); }
    render();
  });

  async function draw() {
    status.textContent = 'Computing the map…';
    const q = new URLSearchParams({ sample: sample.value, method: method.value });
    if (colour.value) q.set('color_by', colour.value);
    try {
      m = await api('GET', `/collections/${enc(name)}/map?${q}`);
    } catch (e) { status.replaceChildren(errorBox(e)); return; }
    paint = colourer(m.points);
    highlight = new Set(); chosen = null; hits.replaceChildren();
    legend.replaceChildren(...paint.legend.map(([c, t]) => h('span', {}, h('i', { style: `background:${c}` }), t)),
      ...(m.cells.length ? [h('span', { text: `+ ${m.cells.length} IVF cells` })] : []));
    const ev = m.explained_variance.map(v => (100 * v).toFixed(1) + '%').join(' + ');
    status.textContent = `${fmt(m.points.length)} of ${fmt(m.total)} points · ${m.method.toUpperCase()} · ${fmt(m.took_ms)} ms on the server · first two components carry ${ev} of the variance`;
    document.body.dataset.mapPoints = String(m.points.length);
    render();
  }
  await draw();
}

// ---------- live metrics ----------
function parseMetrics(text) {
  let requests = 0, sum = 0, count = 0;
  const routes = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line) continue;
    // Labels may hold braces (route="/collections/{collection_name}"): the value follows the last "} ".
    const m = line.match(/^(\w+)\{(.*)\} ([0-9.eE+-]+|\+Inf|NaN)$/);
    if (!m) continue;
    const route = (m[2].match(/route="([^"]*)"/) || [])[1] || '';
    if (route === '/metrics') continue;
    const v = Number(m[3]);
    if (m[1] === 'quiver_http_requests_total') { requests += v; routes[route] = (routes[route] || 0) + v; }
    else if (m[1] === 'quiver_http_request_duration_seconds_sum') sum += v;
    else if (m[1] === 'quiver_http_request_duration_seconds_count') count += v;
  }
  return { requests, sum, count, routes, at: performance.now() };
}
async function scrape() {
  try {
    const s = parseMetrics(await api('GET', '/metrics', undefined, true));
    const prev = state.lastScrape;
    state.lastScrape = s;
    if (!prev) return;
    const dt = (s.at - prev.at) / 1000;
    const rate = Math.max(0, s.requests - prev.requests) / dt;
    const dc = s.count - prev.count;
    const lat = dc > 0 ? (s.sum - prev.sum) / dc : null;
    state.live.push(rate);
    if (state.live.length > 60) state.live.shift();
    $('#live-rate').textContent = rate.toFixed(1);
    $('#live-latency').textContent = lat === null ? '–' : `${(lat * 1000).toFixed(1)} ms`;
    const busy = Object.entries(s.routes).map(([r, n]) => [r, n - (prev.routes[r] || 0)]).filter(e => e[1] > 0)
      .sort((a, b) => b[1] - a[1]).slice(0, 4);
    $('#live-routes').replaceChildren(...busy.map(([r, n]) => h('div', { text: `${(n / dt).toFixed(1)}/s ${r}` })));
    const c = $('#live-chart'), g = c.getContext('2d');
    g.clearRect(0, 0, c.width, c.height);
    const top = Math.max(1, ...state.live);
    g.strokeStyle = '#2f6fde'; g.lineWidth = 1.5; g.beginPath();
    state.live.forEach((v, i) => {
      const x = (i / 59) * c.width, y = c.height - 2 - (v / top) * (c.height - 4);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  } catch (e) {
    $('#live-rate').textContent = '–';
    $('#live-routes').replaceChildren(h('div', { class: 'error', text: e.message }));
  }
}

// ---------- start ----------
$('#key-button').addEventListener('click', () => askKey().then(ok => ok && route()));
$('#server').textContent = location.host;
window.addEventListener('hashchange', route);
route();
scrape();
setInterval(scrape, 2000);
