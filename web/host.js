// The host page (/host): pick a game, start a session, show the join code,
// run the game with the controls its view offers, watch answers and script
// errors arrive, and download the results at the end.

import { RecessClient, resultsToCsv } from '/recess.js';
import { createRenderer, createAnnouncer } from '/render.js';
import { connectionText, fetchGames } from '/common.js';

const $ = (id) => document.getElementById(id);
const announcer = createAnnouncer();
const client = new RecessClient({ storageKey: 'recess.host', resume: false });
window.recess = client; // for custom tooling and the browser tests

let current = null;
let renderer = null;
let endArmed = null;

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

// ---- the list of games --------------------------------------------------------

const query = new URLSearchParams(location.search);
if (query.get('params')) {
  $('params').value = query.get('params');
  $('advanced').open = true;
}
if (query.get('key')) $('host-key').value = query.get('key');
if (query.get('game')) $('game-name').value = query.get('game');

async function loadGames() {
  $('games-error').textContent = '';
  let games;
  try {
    games = await fetchGames();
  } catch (err) {
    $('games-error').textContent = `${err.message}. You can still start a game by its name under Advanced.`;
    $('advanced').open = true;
    return;
  }
  games.sort((a, b) => String(a.title ?? a.name).localeCompare(String(b.title ?? b.name)));
  const list = $('game-list');
  list.replaceChildren();
  $('no-games').hidden = games.length > 0;
  for (const g of games) list.append(gameCard(g));
}

function gameCard(g) {
  const ok = g.status !== 'error';
  const title = String(g.title ?? g.name);
  const li = el('li', { class: `game${ok ? '' : ' is-error'}`, 'data-game': g.name });
  const headingId = `game-${g.name}`;
  li.append(el('h2', { id: headingId, text: title }));
  const meta = [g.name];
  if (g.version) meta.push(`version ${String(g.version).slice(0, 8)}`);
  if (g.max_players) meta.push(`up to ${g.max_players} players`);
  li.append(el('p', { class: 'meta', text: meta.join(' · ') }));
  if (g.error) {
    li.append(el('p', { class: 'meta', text: ok ? 'The saved file has an error; the previous version is used:' : 'This game cannot start:' }));
    li.append(el('pre', { class: 'load-error', role: 'note', text: String(g.error) }));
  }
  const form = Array.isArray(g.settings) && g.settings.length > 0 && (ok || g.version)
    ? settingsForm(g) : null;
  if (form) li.append(form.element);
  const actions = el('div', { class: 'actions' });
  if (ok || g.version) {
    const b = el('button', { type: 'button', class: 'start', text: 'Start', 'aria-describedby': headingId });
    b.addEventListener('click', () => start(g.name, b, form));
    actions.append(b);
  }
  if (g.client) {
    actions.append(el('a', {
      class: 'button secondary',
      href: `/custom/${encodeURIComponent(g.name)}/client.html`,
      text: 'Its own screen',
      'aria-describedby': headingId,
    }));
  }
  li.append(actions);
  return li;
}

// ---- a game's settings ---------------------------------------------------------
// The game's `settings` (docs/lua-api.md §3) as a form in its card. It starts
// at each setting's default and gives back only what the teacher changed,
// so the game's own defaults hold for the rest.

function settingsForm(g) {
  const details = el('details', { class: 'game-settings' }, el('summary', { text: 'Settings' }));
  const fields = [];
  for (const [i, s] of g.settings.entries()) {
    if (!s || typeof s.key !== 'string') continue;
    const id = `setting-${g.name}-${i}`;
    const hintId = s.hint ? `${id}-hint` : undefined;
    const wrap = el('div', { class: 'setting', 'data-key': s.key });
    let input;
    if (s.type === 'checkbox') {
      input = el('input', { id, type: 'checkbox', 'aria-describedby': hintId });
      input.checked = s.default === true;
      wrap.append(el('label', { class: 'check-option', for: id }, input, document.createTextNode(String(s.label))));
    } else {
      if (s.type === 'choice') {
        input = el('select', { id, 'aria-describedby': hintId });
        for (const [n, c] of (s.choices ?? []).entries()) {
          const option = el('option', { value: String(n), text: String(c.label) });
          if (c.value === s.default) option.selected = true;
          input.append(option);
        }
      } else if (s.type === 'number') {
        input = el('input', {
          id, type: 'number', inputmode: 'decimal', 'aria-describedby': hintId,
          min: s.min, max: s.max, step: s.step ?? 'any',
        });
        if (typeof s.default === 'number') input.value = String(s.default);
      } else {
        input = el('input', { id, type: 'text', 'aria-describedby': hintId, autocomplete: 'off' });
        if (typeof s.default === 'string') input.value = s.default;
      }
      wrap.append(el('label', { for: id, text: String(s.label) }), input);
    }
    if (s.hint) wrap.append(el('p', { id: hintId, class: 'hint', text: String(s.hint) }));
    details.append(wrap);
    fields.push({ s, input, wrap });
  }

  // The value a field holds now, as the param would be.
  const valueOf = ({ s, input }) => {
    if (s.type === 'checkbox') return input.checked;
    if (s.type === 'choice') return s.choices?.[Number(input.value)]?.value;
    if (s.type === 'number') return input.value.trim() === '' ? undefined : Number(input.value);
    return input.value.trim() === '' ? undefined : input.value.trim();
  };
  const shown = ({ s }) => {
    if (!s.show_if) return true;
    const other = fields.find((f) => f.s.key === s.show_if.key);
    return !other || (shown(other) && valueOf(other) === s.show_if.value);
  };
  const update = () => {
    for (const f of fields) f.wrap.hidden = !shown(f);
  };
  for (const f of fields) f.input.addEventListener('change', update);
  update();

  return {
    element: details,
    // The params the teacher set, or an Error naming the field to fix.
    read() {
      const params = {};
      for (const f of fields) {
        if (!shown(f)) continue;
        const v = valueOf(f);
        if (f.s.type === 'number' && v !== undefined && (!Number.isFinite(v) || !f.input.checkValidity())) {
          details.open = true;
          f.input.setAttribute('aria-invalid', 'true');
          f.input.focus();
          const range = [f.s.min, f.s.max].every((n) => typeof n === 'number') ? ` from ${f.s.min} to ${f.s.max}` : '';
          return new Error(`${f.s.label}: give a number${range}${f.s.step ? ` in steps of ${f.s.step}` : ''}, or leave it empty.`);
        }
        f.input.removeAttribute('aria-invalid');
        if (v === undefined || v === f.s.default) continue;
        params[f.s.key] = v;
      }
      return params;
    },
  };
}

function readParams() {
  const text = $('params').value.trim();
  if (!text) return {};
  try {
    const p = JSON.parse(text);
    if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new Error('not an object');
    return p;
  } catch (e) {
    $('advanced').open = true;
    $('params').setAttribute('aria-invalid', 'true');
    $('params').focus();
    throw new Error(`The game parameters must be a JSON object, like {"time_limit": 10} (${e.message}).`);
  }
}

async function start(game, button, form) {
  $('start-error').textContent = '';
  $('params').removeAttribute('aria-invalid');
  let params;
  try {
    // The card's settings, then the Advanced field's JSON on top.
    const set = form ? form.read() : {};
    if (set instanceof Error) throw set;
    params = { ...set, ...readParams() };
  } catch (err) {
    $('start-error').textContent = err.message;
    return;
  }
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    const s = await client.host(game, params, {
      key: $('host-key').value || undefined,
      names: $('generated-names').checked ? 'generated' : undefined,
    });
    show(s.id);
  } catch (err) {
    $('start-error').textContent = err.message;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

$('refresh').addEventListener('click', loadGames);
$('start-by-name').addEventListener('click', () => {
  const name = $('game-name').value.trim();
  if (name) start(name, $('start-by-name'));
});

// ---- the session ----------------------------------------------------------------

function joinUrl() {
  return `${location.protocol}//${location.host}/`;
}

// ---- where students join: the address, its QR code, or why there is none -----

const LOOPBACK = /^(127\.|localhost$|\[::1\]$)/;

// The address students' devices open, from the server (`GET /api/join`:
// --public-url, or this machine's network address); the page's own address
// when the server cannot say.
async function joinAddress() {
  try {
    const res = await fetch('/api/join', { cache: 'no-store' });
    if (res.ok) {
      const info = await res.json();
      if (typeof info?.url === 'string') return { url: info.url, reachable: info.reachable !== false };
    }
  } catch { /* fall back below */ }
  return { url: joinUrl(), reachable: !LOOPBACK.test(location.hostname) };
}

async function showJoinAddress(code) {
  $('join-url').textContent = joinUrl();
  $('join-hint').hidden = true;
  $('join-qr').hidden = true;
  $('join-qr-pic').replaceChildren();
  $('qr-dialog-pic').replaceChildren();
  const info = await joinAddress();
  if ($('join-code').dataset.code !== code) return; // another game meanwhile
  $('join-url').textContent = info.url;
  $('join-hint').hidden = info.reachable;
  const withQr = info.reachable && /^\d{6}$/.test(code);
  $('join-qr').hidden = !withQr;
  if (!withQr) return;
  const src = `/join.svg?code=${encodeURIComponent(code)}`;
  const alt = `QR code: scan it to open ${info.url} with the code ${code}`;
  $('join-qr-pic').replaceChildren(el('img', { id: 'join-qr-img', class: 'join-qr-img', src, alt, width: 168, height: 168 }));
  $('qr-dialog-pic').replaceChildren(el('img', { id: 'qr-dialog-img', class: 'qr-dialog-img', src, alt }));
  $('qr-dialog-url').textContent = info.url;
  $('qr-dialog-code').textContent = `${code.slice(0, 3)} ${code.slice(3)}`;
}

// "Show QR": the code over the whole screen, for the projector (Escape or
// Close go back). The browser's full screen too, where it allows it.
$('show-qr').addEventListener('click', () => {
  $('qr-dialog').showModal();
  document.documentElement.requestFullscreen?.().catch(() => {});
});
$('close-qr').addEventListener('click', () => $('qr-dialog').close());
$('qr-dialog').addEventListener('close', () => {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  $('show-qr').focus();
});

function show(sessionId) {
  const s = client.get(sessionId);
  if (!s) return showPick();
  current = sessionId;
  $('pick-screen').hidden = true;
  $('session-screen').hidden = false;
  const code = String(s.code ?? '');
  const codeEl = $('join-code');
  codeEl.dataset.code = code;
  codeEl.textContent = code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : code;
  codeEl.setAttribute('aria-label', `Join code ${code.split('').join(' ')}`);
  showJoinAddress(code);
  $('error-list').replaceChildren();
  $('errors').hidden = true;
  $('action-error').textContent = '';
  if (renderer) renderer.destroy();
  renderer = createRenderer($('view'), {
    me: s.player?.id,
    announce: (t) => announcer.say(t),
    slots: { players: $('players-slot') },
    onAction: (name, data) => act(name, data),
  });
  draw(s);
  showResults(s);
  document.title = `Recess: hosting ${s.game} (${code})`;
}

function draw(s) {
  renderer.update(s.view);
  const v = s.view ?? {};
  const playing = Boolean(v.choices || v.timer || v.podium || v.messages || v.leaderboard || s.ended);
  $('session-head').classList.toggle('is-compact', playing);
}

function showPick() {
  current = null;
  if (renderer) renderer.destroy();
  renderer = null;
  $('session-screen').hidden = true;
  $('pick-screen').hidden = false;
  $('results').hidden = true;
  $('download').hidden = true;
  document.title = 'Recess: host a game';
  loadGames();
}

function addError(code, message) {
  const list = $('error-list');
  const text = String(message ?? '');
  const last = list.lastElementChild;
  // The same problem again (a save reported twice, a failing button pressed
  // by the whole class): count it instead of filling the panel.
  if (last && last.dataset.code === code && last.dataset.message === text) {
    const n = Number(last.dataset.count) + 1;
    last.dataset.count = String(n);
    last.querySelector('.err-when').textContent = new Date().toLocaleTimeString();
    last.querySelector('.err-count').textContent = ` (${n} times)`;
    return;
  }
  const li = el('li', { 'data-code': code, 'data-message': text, 'data-count': '1' },
    el('span', { class: 'err-when', text: new Date().toLocaleTimeString() }),
    el('span', { class: 'err-code', text: `${code}: ` }),
    el('span', { class: 'err-message', text }),
    el('span', { class: 'err-count' }));
  list.append(li);
  while ($('error-list').children.length > 50) $('error-list').firstChild.remove();
  $('errors').hidden = false;
}

async function act(name, data) {
  if (!current) return;
  $('action-error').textContent = '';
  try {
    await client.action(current, name, data);
  } catch (err) {
    if (err.code === 'script_error' || err.code === 'game_broken') addError(err.code, err.message);
    else $('action-error').textContent = err.message;
    throw err;
  }
}

// Results: the server's CSV (host token as proof), or the same CSV built here
// from the `ended` frame when the server cannot give it.
function showResults(s) {
  const box = $('results');
  $('download').hidden = !s.ended;
  if (!s.ended) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const r = s.results ?? {};
  const rows = Array.isArray(r.rows) ? r.rows : [];
  const columns = Array.isArray(r.columns) ? r.columns.map(String)
    : [...new Set(rows.flatMap((x) => Object.keys(x ?? {})))];
  const table = el('table', {}, el('caption', { class: 'sr-only', text: 'Results' }));
  table.append(el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { scope: 'col', text: c })))));
  const body = el('tbody');
  for (const row of rows) {
    body.append(el('tr', {}, ...columns.map((c) => {
      const v = row?.[c];
      return el('td', { text: v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v) });
    })));
  }
  table.append(body);
  $('results-table').replaceChildren(rows.length ? table : el('p', { class: 'empty-note', text: 'The game sent no result rows.' }));
}

$('download').addEventListener('click', async () => {
  const s = client.get(current);
  if (!s) return;
  $('download-error').textContent = '';
  let csv = null;
  try {
    const url = `/api/sessions/${encodeURIComponent(s.id)}/results?format=csv&token=${encodeURIComponent(s.token)}`;
    const res = await fetch(url, { cache: 'no-store' });
    if (res.ok) csv = await res.text();
  } catch { /* fall back below */ }
  if (csv === null) csv = resultsToCsv(s.results);
  const blob = new Blob([csv], { type: 'text/csv;charset=utf-8' });
  const a = el('a', { href: URL.createObjectURL(blob), download: fileName(s) });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
});

// The recording: every input of the session and every message it sent, for
// `recess replay` (docs/lua-api.md §15). Only the server has it.
$('download-recording').addEventListener('click', async () => {
  const s = client.get(current);
  if (!s) return;
  $('recording-error').textContent = '';
  try {
    const url = `/api/sessions/${encodeURIComponent(s.id)}/recording?token=${encodeURIComponent(s.token)}`;
    const res = await fetch(url, { cache: 'no-store' });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      $('recording-error').textContent = `No recording: ${body.message ?? res.statusText}`;
      return;
    }
    const blob = await res.blob();
    const day = new Date().toISOString().slice(0, 10);
    const game = String(s.game ?? 'game').toLowerCase().replace(/[^a-z0-9]+/g, '-');
    const a = el('a', { href: URL.createObjectURL(blob), download: `recording-${game}-${day}.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) {
    $('recording-error').textContent = `No recording: ${e.message}`;
  }
});

function fileName(s) {
  const day = new Date().toISOString().slice(0, 10);
  const what = String(s.results?.title ?? s.game ?? 'results').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `${what || 'results'}-${day}.csv`;
}

$('end-session').addEventListener('click', () => {
  const b = $('end-session');
  const s = client.get(current);
  if (s && !s.ended && !endArmed) {
    b.textContent = 'Really close? Press again';
    endArmed = setTimeout(() => { b.textContent = 'Close this game'; endArmed = null; }, 4000);
    return;
  }
  clearTimeout(endArmed);
  endArmed = null;
  b.textContent = 'Close this game';
  if (current) client.leave(current);
});

client.on('view', ({ session, record }) => {
  if (session === current && renderer) draw(record);
});

client.on('ended', ({ session, record }) => {
  if (session !== current) return;
  showResults(record);
  draw(record);
  announcer.say('The game is over. The results can be downloaded.');
});

client.on('error', ({ session, code, message }) => {
  if (!current || (session && session !== current)) return;
  if (code === 'script_error' || code === 'game_broken') addError(code, message);
  else $('action-error').textContent = message;
});

client.on('dropped', ({ session, code, message }) => {
  if (session !== current) return;
  showPick();
  if (code !== 'left') $('start-error').textContent = message;
});

client.on('status', ({ state }) => {
  const text = client.sessions.size > 0 ? connectionText(state) : '';
  $('conn').textContent = text;
  $('conn').hidden = !text;
});

const stored = [...client.sessions.values()];
if (stored.length > 0) {
  show(stored[stored.length - 1].id);
  client.connect();
} else {
  showPick();
}
