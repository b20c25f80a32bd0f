// The player page (/): join with a code and a nickname, then play whatever
// the game's view says. All game logic is on the server; this page draws the
// view (render.js) and sends the actions its buttons name.

import { RecessClient, cleanName, MAX_NAME_CHARS } from '/recess.js';
import { createRenderer, createAnnouncer } from '/render.js';
import { connectionText, fetchGames } from '/common.js';

const $ = (id) => document.getElementById(id);
const announcer = createAnnouncer();
const client = new RecessClient({ storageKey: 'recess.player', resume: false });
window.recess = client; // for custom tooling and the browser tests

const SHOW_QUESTION_KEY = 'recess.showQuestion';
const NAME_KEY = 'recess.nickname';

let current = null;      // session id shown
let renderer = null;
let leaveArmed = null;

function readPref(key, fallback) {
  try { return localStorage.getItem(key) ?? fallback; } catch { return fallback; }
}
function writePref(key, value) {
  try { localStorage.setItem(key, value); } catch { /* private mode */ }
}

// ---- join screen ---------------------------------------------------------------

const params = new URLSearchParams(location.search);
if (params.get('code')) $('code').value = params.get('code').replace(/\D/g, '').slice(0, 6);
$('name').value = readPref(NAME_KEY, '');
// At most 24 characters, counted after the leading spaces (trimmed anyway).
$('name').addEventListener('input', () => {
  const field = $('name');
  const chars = Array.from(field.value.replace(/^\s+/, ''));
  if (chars.length > MAX_NAME_CHARS) field.value = chars.slice(0, MAX_NAME_CHARS).join('');
});

$('join-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const code = $('code').value.replace(/\s+/g, '');
  const name = cleanName($('name').value);
  $('name').value = name;
  if (!/^\d{6}$/.test(code)) {
    return joinError('The code is 6 digits: type the number on your teacher\'s screen.', $('code'));
  }
  if (!name) return joinError('Please enter a nickname.', $('name'));
  if (Array.from(name).length > MAX_NAME_CHARS) {
    return joinError(`Nicknames can be at most ${MAX_NAME_CHARS} characters.`, $('name'));
  }
  joinError('');
  const button = $('join-button');
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = 'Joining…';
  try {
    const s = await client.join(code, name);
    writePref(NAME_KEY, name);
    show(s.id);
  } catch (err) {
    const field = /name/.test(err.code ?? '') ? $('name') : /code/.test(err.code ?? '') ? $('code') : null;
    joinError(err.message || 'Could not join. Try again.', field);
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = 'Join';
  }
});

function joinError(message, field) {
  $('join-error').textContent = message;
  for (const f of [$('code'), $('name')]) f.removeAttribute('aria-invalid');
  if (field) {
    field.setAttribute('aria-invalid', 'true');
    field.focus();
  }
}

// ---- game screen ---------------------------------------------------------------

function show(sessionId) {
  const s = client.get(sessionId);
  if (!s) return showJoin();
  current = sessionId;
  $('join-screen').hidden = true;
  $('game-screen').hidden = false;
  $('me').hidden = false;
  $('me').textContent = s.player?.name ?? '';
  $('action-error').textContent = '';
  if (renderer) renderer.destroy();
  renderer = createRenderer($('view'), {
    me: s.player?.id,
    announce: (t) => announcer.say(t),
    showQuestion: $('show-question').checked,
    slots: { score: $('score-slot') },
    onAction: (name, data) => act(name, data),
  });
  renderer.update(s.view);
  $('after-end').hidden = !s.ended;
  document.title = `Recess: ${s.player?.name ?? 'playing'}`;
  offerCustomClient(s.game);
}

function showJoin(message = '') {
  current = null;
  if (renderer) renderer.destroy();
  renderer = null;
  $('game-screen').hidden = true;
  $('join-screen').hidden = false;
  $('me').hidden = true;
  $('custom-link').hidden = true;
  document.title = 'Recess: join a game';
  joinError(message);
  $(message ? 'join-error' : 'code').focus?.();
  if (!$('code').value) $('code').focus();
  // Came from the QR code (`/?code=…`): the nickname is what is left to type.
  else if (!message) $('name').focus();
}

async function act(name, data) {
  if (!current) return;
  $('action-error').textContent = '';
  try {
    await client.action(current, name, data);
  } catch (err) {
    if (err.code !== 'not_member') $('action-error').textContent = err.message;
    throw err;
  }
}

async function offerCustomClient(game) {
  const games = await fetchGames().catch(() => null);
  const info = games?.find((g) => g.name === game);
  const p = $('custom-link');
  if (!info?.client || current === null) {
    p.hidden = true;
    return;
  }
  const a = document.createElement('a');
  a.href = `/custom/${encodeURIComponent(game)}/client.html`;
  a.textContent = 'Open this game\u2019s own screen';
  p.replaceChildren('This game has a screen of its own: ', a);
  p.hidden = false;
}

client.on('view', ({ session, view }) => {
  if (session === current && renderer) renderer.update(view);
});

client.on('renamed', ({ session }) => {
  if (session === current) show(session);
});

client.on('ended', ({ session }) => {
  if (session !== current) return;
  $('after-end').hidden = false;
});

client.on('dropped', ({ session, code, message }) => {
  if (session !== current) return;
  const why = code === 'left' ? '' : message;
  showJoin(why);
});

client.on('error', ({ session, message }) => {
  if (session && session === current) $('action-error').textContent = message;
});

client.on('status', ({ state }) => {
  const text = client.sessions.size > 0 ? connectionText(state) : '';
  $('conn').textContent = text;
  $('conn').hidden = !text;
});

$('show-question').checked = readPref(SHOW_QUESTION_KEY, 'on') !== 'off';
$('show-question').addEventListener('change', () => {
  writePref(SHOW_QUESTION_KEY, $('show-question').checked ? 'on' : 'off');
  renderer?.setOptions({ showQuestion: $('show-question').checked });
});

$('leave').addEventListener('click', () => {
  const b = $('leave');
  if (!leaveArmed) {
    b.textContent = 'Really leave? Press again';
    leaveArmed = setTimeout(() => { b.textContent = 'Leave the game'; leaveArmed = null; }, 4000);
    return;
  }
  clearTimeout(leaveArmed);
  leaveArmed = null;
  b.textContent = 'Leave the game';
  if (current) client.leave(current);
});

$('again').addEventListener('click', () => {
  if (current) client.leave(current);
  showJoin();
});

// A reload (or a custom screen we came back from) resumes where we were.
const stored = [...client.sessions.values()];
if (stored.length > 0) {
  show(stored[stored.length - 1].id);
  client.connect();
} else {
  showJoin();
}
