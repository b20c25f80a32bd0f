// recess.js: the browser client for Recess (wire protocol v1), no framework.
//
// One RecessClient is one WebSocket to `ws(s)://<this host>/games` that can be
// in several sessions at once. It keeps each session's view (applying the
// RFC 7386 merge patches of `view` frames), its `last_seq`, and its token, and
// it reconnects by itself with backoff and resumes every session it was in.
// Tokens, last_seq and views are kept in sessionStorage, so a page reload
// resumes too. docs/web-client.md documents the API.

/** Reconnect delays: 0.5 s doubling to 5 s, each randomised to 50–100 %. */
export const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 5000, factor: 2 };

/** Liveness probe: after this much silence, ask the server for an answer. */
export const DEFAULT_HEARTBEAT = { idleMs: 20000, timeoutMs: 8000 };

const MAX_QUEUED_ACTIONS = 100;
const SAVE_DELAY_MS = 150;
const STABLE_MS = 5000;

/** An error a person can read: `code` is the protocol's machine word. */
export class RecessError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'RecessError';
    this.code = code;
    this.session = extra.session;
    this.ref = extra.ref;
    /** From the server's `retry_after_ms`: how long to wait before trying again. */
    this.retryAfterMs = extra.retryAfterMs;
  }
}

/** Times a join is asked again while its seat is still held by the old connection (2 s apart). */
const JOIN_RETRIES = 60;
/** Waiting actions sent per second after a reconnect (under the server's 20 a second, 40 at once). */
const FLUSH_AT_ONCE = 15;

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * RFC 7386 JSON merge patch. Returns a new value and never mutates `target`
 * or `patch`: members the patch does not touch keep their identity, so a
 * renderer can skip what did not change by comparing with `===`.
 */
export function mergePatch(target, patch) {
  if (!isObject(patch)) return patch;
  const result = isObject(target) ? { ...target } : {};
  for (const key of Object.keys(patch)) {
    if (key === '__proto__') continue;
    const value = patch[key];
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** `ws(s)://<host of this page>/games`. */
export function defaultUrl(loc = globalThis.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/games`;
}

function safeStorage(storage) {
  if (storage === null) return null;
  try {
    return storage ?? globalThis.sessionStorage ?? null;
  } catch {
    return null; // storage disabled by the browser
  }
}

export class RecessClient extends EventTarget {
  /**
   * @param {object} [options]
   * @param {string} [options.url]         WebSocket URL (default: this host's /games)
   * @param {Storage|null} [options.storage] where sessions are kept (default sessionStorage; null: nowhere)
   * @param {string} [options.storageKey]  key in that storage (default "recess.sessions")
   * @param {object} [options.backoff]     {initialMs, maxMs, factor}
   * @param {object|false} [options.heartbeat] {idleMs, timeoutMs}, or false for none
   * @param {boolean} [options.resume]     resume stored sessions now (default true)
   * @param {Function} [options.WebSocket] WebSocket constructor (tests)
   */
  constructor(options = {}) {
    super();
    this.url = options.url ?? defaultUrl();
    this.storage = safeStorage(options.storage);
    this.storageKey = options.storageKey ?? 'recess.sessions';
    this.backoff = { ...DEFAULT_BACKOFF, ...(options.backoff ?? {}) };
    this.heartbeat = options.heartbeat === false ? null : { ...DEFAULT_HEARTBEAT, ...(options.heartbeat ?? {}) };
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;

    /** @type {Map<string, object>} session id → session record */
    this.sessions = new Map();
    /** 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed' */
    this.state = 'idle';
    this.attempt = 0;

    this._ws = null;
    this._waiting = [];           // host/join not sent yet (no socket)
    this._inflight = [];          // host/join/resume sent, awaiting welcome or error, in send order
    this._joinNonces = new Map(); // "code|name" -> nonce, so a retried join gets the same seat
    this._actions = new Map();    // ref → {resolve, reject, session, frame, sent}
    this._nextRef = 1;
    this._retryTimer = null;
    this._saveTimer = null;
    this._heartbeatTimer = null;
    this._probe = null;
    this._lastRx = 0;
    this._openedAt = 0;
    this._closedByUser = false;

    this._load();
    if (typeof addEventListener === 'function') {
      addEventListener('online', () => { if (this.state === 'reconnecting') this._retryNow(); });
      addEventListener('offline', () => { if (this._ws) this._drop('offline'); });
      addEventListener('pagehide', () => this._saveNow());
    }
    if (options.resume !== false && this.sessions.size > 0) this.connect();
  }

  // ---- events ---------------------------------------------------------------

  /** Listens to an event; returns a function that stops listening. */
  on(type, listener) {
    const wrapped = (e) => listener(e.detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state, extra = {}) {
    if (this.state === state && !extra.delayMs) return;
    this.state = state;
    this._emit('status', { state, attempt: this.attempt, ...extra });
  }

  // ---- public API -------------------------------------------------------------

  /** Opens the socket (done for you by host, join and stored sessions). */
  connect() {
    this._closedByUser = false;
    if (this._ws || this._retryTimer) return;
    this._open();
  }

  /** Closes the socket for good; sessions stay stored (and resumable). */
  close() {
    this._closedByUser = true;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._stopHeartbeat();
    if (this._ws) {
      const ws = this._ws;
      this._detach(ws);
      try { ws.close(1000, 'bye'); } catch { /* already closed */ }
    }
    this._failInFlight('closed', 'The connection was closed.');
    this._setState('closed');
  }

  /** Starts a session of `game` as its host. Resolves with the session record. */
  host(game, params = {}, { key, names } = {}) {
    const frame = { type: 'host', game, params };
    if (key) frame.key = key;
    // "generated": students are shown generated names (docs/protocol.md).
    if (names) frame.names = names;
    return this._request('host', frame);
  }

  /** Joins a session by its 6-digit code. Resolves with the session record. */
  join(code, name) {
    const c = String(code).replace(/\s+/g, '');
    const n = cleanName(name);
    // The same nonce for a retry of the same join: if the first answer was
    // lost with the connection, the server gives back the seat it made.
    const key = `${c}|${n.toLowerCase()}`;
    let nonce = this._joinNonces.get(key);
    if (!nonce) {
      nonce = randomNonce();
      this._joinNonces.set(key, nonce);
    }
    return this._request('join', { type: 'join', code: c, name: n, nonce });
  }

  /**
   * Sends an action. Resolves when the game has run it (`ack`), rejects with
   * a RecessError (`error`). While reconnecting, actions wait and are sent
   * after the session is resumed; an action whose answer was lost with the
   * connection rejects with code "connection_lost" (look at the view: it may
   * have been applied).
   */
  action(session, name, data) {
    const s = this.sessions.get(session);
    if (!s) return Promise.reject(new RecessError('not_member', 'You are not in this game any more.', { session }));
    const ref = `a${this._nextRef++}`;
    const frame = { type: 'action', session, name, ref };
    if (data !== undefined) frame.data = data;
    return new Promise((resolve, reject) => {
      const queued = [...this._actions.values()].filter((a) => !a.sent).length;
      if (queued >= MAX_QUEUED_ACTIONS) {
        reject(new RecessError('overloaded', 'Too many actions are waiting for the connection.', { session, ref }));
        return;
      }
      const entry = { resolve, reject, session, frame, sent: false };
      this._actions.set(ref, entry);
      this._flushActions();
      if (!this._ws) this.connect();
    });
  }

  /** Leaves a session (the game's `leave` handler runs) and forgets it. */
  leave(session) {
    if (this._isOpen()) this._send({ type: 'leave', session });
    this.forget(session, 'left', 'You left the game.');
  }

  /** Forgets a session locally, without telling the server. */
  forget(session, code = 'forgotten', message = '') {
    const s = this.sessions.get(session);
    if (!s) return;
    this.sessions.delete(session);
    for (const [ref, a] of this._actions) {
      if (a.session === session) {
        this._actions.delete(ref);
        a.reject(new RecessError(code, message || 'You are not in this game any more.', { session, ref }));
      }
    }
    this._saveNow();
    this._emit('dropped', { session, code, message, record: s });
  }

  /** The session record, or undefined. */
  get(session) {
    return this.sessions.get(session);
  }

  // ---- connection -------------------------------------------------------------

  _isOpen() {
    return this._ws && this._ws.readyState === 1;
  }

  _open() {
    this._retryTimer = null;
    this._setState(this.attempt === 0 && this.state !== 'reconnecting' ? 'connecting' : 'reconnecting');
    let ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch (e) {
      this._scheduleRetry();
      return;
    }
    this._ws = ws;
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (e) => this._onMessage(ws, e.data);
    ws.onclose = (e) => this._onClose(ws, e);
    ws.onerror = () => { /* a close event follows */ };
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (this._ws === ws) this._ws = null;
  }

  _onOpen(ws) {
    if (ws !== this._ws) return;
    this._openedAt = Date.now();
    this._lastRx = Date.now();
    this._setState('open');
    this._startHeartbeat();
    // Resume every session we were in, then send what waited.
    for (const s of this.sessions.values()) this._resume(s);
    const waiting = this._waiting;
    this._waiting = [];
    for (const r of waiting) this._sendRequest(r);
    this._flushActions();
  }

  _resume(s) {
    s.resuming = true;
    const frame = { type: 'resume', token: s.token, last_seq: s.lastSeq };
    this._sendRequest({ kind: 'resume', frame, session: s.id, resolve() {}, reject() {} });
  }

  _onClose(ws, event) {
    if (ws !== this._ws) return;
    this._detach(ws);
    this._stopHeartbeat();
    const reason = event && event.reason ? event.reason : '';
    this._afterDrop(reason);
  }

  /** Closes a socket we believe is dead and goes on as after a close. */
  _drop(reason) {
    const ws = this._ws;
    if (!ws) return;
    this._detach(ws);
    this._stopHeartbeat();
    try { ws.close(4000, reason); } catch { /* ignore */ }
    this._afterDrop(reason);
  }

  _afterDrop(reason) {
    if (this._openedAt && Date.now() - this._openedAt >= STABLE_MS) this.attempt = 0;
    this._openedAt = 0;
    this._failInFlight('connection_lost',
      'The connection dropped before the game answered. Check the screen and try again if needed.');
    if (this._closedByUser) {
      this._setState('closed');
      return;
    }
    if (this.sessions.size === 0) {
      // Not in any game: nothing to come back to. A host/join that could not
      // even be sent fails now, so the page can say so, instead of waiting.
      const waiting = this._waiting;
      this._waiting = [];
      for (const r of waiting) {
        r.reject(new RecessError('connection_lost',
          'Cannot reach the game server. Check the network connection and try again.'));
      }
      this.attempt = 0;
      this._setState('idle', { reason });
      return;
    }
    this._scheduleRetry(reason);
  }

  /** Rejects what was sent and cannot be answered any more. */
  _failInFlight(code, message) {
    // host/join sent on the lost socket: their answer is lost (resumes are sent again).
    const inflight = this._inflight;
    this._inflight = [];
    for (const r of inflight) {
      if (r.kind !== 'resume') {
        r.reject(new RecessError(code, code === 'connection_lost'
          ? 'The connection dropped. Please try again.' : message));
      }
    }
    if (code !== 'connection_lost') {
      for (const r of this._waiting) r.reject(new RecessError(code, message));
      this._waiting = [];
    }
    for (const [ref, a] of this._actions) {
      if (a.sent) {
        this._actions.delete(ref);
        a.reject(new RecessError(code, message, { session: a.session, ref }));
      }
    }
    for (const s of this.sessions.values()) s.resuming = false;
  }

  _scheduleRetry(reason) {
    const { initialMs, maxMs, factor } = this.backoff;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    const delayMs = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt += 1;
    this._setState('reconnecting', { delayMs, reason });
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._open(), delayMs);
  }

  _retryNow() {
    if (!this._retryTimer) return;
    clearTimeout(this._retryTimer);
    this._open();
  }

  _send(frame) {
    if (!this._isOpen()) return false;
    this._ws.send(JSON.stringify(frame));
    return true;
  }

  _request(kind, frame) {
    return new Promise((resolve, reject) => {
      const r = { kind, frame, resolve, reject };
      if (this._isOpen()) {
        this._sendRequest(r);
      } else {
        this._waiting.push(r);
        this.connect();
      }
    });
  }

  _sendRequest(r) {
    this._inflight.push(r);
    this._send(r.frame);
  }

  /**
   * Sends the actions that waited for the connection, at most FLUSH_AT_ONCE
   * a second: the server handles 40 frames at once and 20 a second from one
   * socket and refuses the rest (`rate_limited`).
   */
  _flushActions() {
    if (!this._isOpen()) return;
    let sent = 0;
    for (const a of this._actions.values()) {
      if (a.sent || !a.frame) continue;
      const s = this.sessions.get(a.session);
      if (!s || s.resuming) continue;
      if (sent >= FLUSH_AT_ONCE) {
        if (!this._flushTimer) {
          this._flushTimer = setTimeout(() => {
            this._flushTimer = null;
            this._flushActions();
          }, 1000);
        }
        return;
      }
      a.sent = true;
      this._send(a.frame);
      sent += 1;
    }
  }

  // ---- liveness -----------------------------------------------------------------
  // Browsers do not tell a page when a socket went silent (a Wi-Fi hop, a
  // laptop lid). After `idleMs` without a frame the client sends a probe the
  // server always answers (an action for no session: `not_member` with our
  // ref); no answer within `timeoutMs` means the socket is dead.

  _startHeartbeat() {
    this._stopHeartbeat();
    if (!this.heartbeat) return;
    const tick = Math.max(250, Math.min(this.heartbeat.idleMs, this.heartbeat.timeoutMs) / 4);
    this._heartbeatTimer = setInterval(() => this._checkAlive(), tick);
  }

  _stopHeartbeat() {
    clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = null;
    this._probe = null;
  }

  _checkAlive() {
    if (!this._isOpen()) return;
    const now = Date.now();
    if (this._probe) {
      if (now - this._probe.at > this.heartbeat.timeoutMs) this._drop('no answer from the server');
      return;
    }
    if (now - this._lastRx >= this.heartbeat.idleMs) {
      const ref = `hb${this._nextRef++}`;
      this._probe = { ref, at: now };
      this._send({ type: 'ping', ref });
    }
  }

  // ---- incoming frames ------------------------------------------------------------

  _onMessage(ws, text) {
    if (ws !== this._ws) return;
    this._lastRx = Date.now();
    this._probe = null;
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!isObject(frame)) return;
    this._emit('frame', frame);
    switch (frame.type) {
      case 'welcome': this._onWelcome(frame); break;
      case 'view': this._onView(frame); break;
      case 'event': this._onEvent(frame); break;
      case 'ended': this._onEnded(frame); break;
      case 'renamed': this._onRenamed(frame); break;
      case 'ack': this._onAck(frame); break;
      case 'error': this._onError(frame); break;
      default: break;
    }
  }

  /** Marks a sequenced frame seen; false if it is a duplicate. */
  _see(s, frame) {
    if (typeof frame.seq !== 'number') return true;
    if (frame.seq <= s.lastSeq) return false;
    s.lastSeq = frame.seq;
    return true;
  }

  _onWelcome(frame) {
    const request = this._inflight.shift() ?? null;
    let s = this.sessions.get(frame.session);
    const resumed = frame.resumed === true && s && s.view !== undefined;
    if (!s) {
      s = { id: frame.session, view: {}, lastSeq: 0, ended: false, results: null };
      this.sessions.set(frame.session, s);
    }
    s.game = frame.game;
    s.role = frame.role;
    s.player = frame.player;
    s.token = frame.token;
    if (frame.code) s.code = frame.code;
    s.resuming = false;
    if (!resumed) {
      // A new seat, or a resume whose range is gone: the whole view, from now on.
      s.view = frame.view ?? {};
      s.lastSeq = frame.seq;
    }
    // resumed: keep view and lastSeq; the replayed messages follow with their own seq.
    this._save();
    this._emit('welcome', { session: s.id, frame, resumed: !!resumed, record: s });
    if (!resumed) this._emit('view', { session: s.id, view: s.view, record: s });
    if (request) request.resolve(s);
    this._flushActions();
  }

  _onView(frame) {
    const s = this.sessions.get(frame.session);
    if (!s || !this._see(s, frame)) return;
    s.view = mergePatch(s.view, frame.patch);
    this._save();
    this._emit('view', { session: s.id, view: s.view, patch: frame.patch, record: s });
  }

  _onEvent(frame) {
    const s = this.sessions.get(frame.session);
    if (!s || !this._see(s, frame)) return;
    this._save();
    this._emit('event', { session: s.id, name: frame.name, data: frame.data, record: s });
  }

  _onEnded(frame) {
    const s = this.sessions.get(frame.session);
    if (!s || !this._see(s, frame)) return;
    s.ended = true;
    s.results = frame.results ?? null;
    this._save();
    this._emit('ended', { session: s.id, results: s.results, record: s });
  }

  /** The game renamed this seat's player (`ctx.rename`). */
  _onRenamed(frame) {
    const s = this.sessions.get(frame.session);
    if (!s || !this._see(s, frame) || !isObject(frame.player)) return;
    s.player = frame.player;
    this._save();
    this._emit('renamed', { session: s.id, player: s.player, record: s });
  }

  _onAck(frame) {
    const a = this._actions.get(frame.ref);
    if (!a) return;
    this._actions.delete(frame.ref);
    a.resolve();
  }

  _onError(frame) {
    const code = frame.code;
    const message = frame.message ?? code;
    // The answer to one of our actions (or to the liveness probe).
    if (frame.ref !== undefined && frame.ref !== null) {
      const a = this._actions.get(frame.ref);
      if (a) {
        this._actions.delete(frame.ref);
        a.reject(new RecessError(code, message, { session: frame.session, ref: frame.ref }));
        return;
      }
      if (typeof frame.ref === 'string' && frame.ref.startsWith('hb')) return;
    }
    // Removed from a session by the game (a kick): a session message with a seq.
    if (frame.session && code === 'kicked') {
      this.forget(frame.session, code, message);
      return;
    }
    // The answer to host/join/resume: those errors carry no session.
    if (!frame.session && frame.ref === undefined) {
      const request = this._inflight.shift();
      if (request) {
        if (request.kind === 'resume') {
          this._resumeFailed(request.session, code, message);
        } else if (request.kind === 'join' && code === 'unavailable'
            && typeof frame.retry_after_ms === 'number' && (request.retries ?? 0) < JOIN_RETRIES) {
          // A retried join whose seat the server still sees connected (the
          // old connection has not been noticed gone yet): ask again soon.
          request.retries = (request.retries ?? 0) + 1;
          setTimeout(() => {
            if (this._isOpen()) {
              this._sendRequest(request);
            } else {
              this._waiting.push(request);
              this.connect();
            }
          }, Math.min(frame.retry_after_ms, 10_000));
        } else {
          request.reject(new RecessError(code, message, { retryAfterMs: frame.retry_after_ms }));
        }
        return;
      }
    }
    // Anything else: a notice for the page (script_error, game_broken, …).
    this._emit('error', { code, message, session: frame.session, ref: frame.ref, frame });
  }

  _resumeFailed(session, code, message) {
    const s = this.sessions.get(session);
    if (!s) return;
    if (code === 'bad_token' || code === 'unknown_session' || code === 'ended') {
      this.forget(session, code, message);
      return;
    }
    // Busy or unavailable: try again after a while on this socket.
    s.resuming = false;
    this._emit('error', { code, message, session, frame: null });
    setTimeout(() => {
      if (this.sessions.get(session) === s && this._isOpen() && !s.resuming) this._resume(s);
    }, Math.min(this.backoff.maxMs, this.backoff.initialMs * 4));
  }

  // ---- storage ----------------------------------------------------------------------

  _load() {
    if (!this.storage) return;
    try {
      const raw = this.storage.getItem(this.storageKey);
      if (!raw) return;
      const data = JSON.parse(raw);
      if (!data || data.v !== 1 || !Array.isArray(data.sessions)) return;
      for (const s of data.sessions) {
        if (!s || typeof s.id !== 'string' || typeof s.token !== 'string') continue;
        this.sessions.set(s.id, {
          id: s.id, game: s.game, role: s.role, player: s.player, token: s.token,
          code: s.code, lastSeq: Number(s.lastSeq) || 0, view: isObject(s.view) ? s.view : {},
          ended: !!s.ended, results: s.results ?? null, resuming: false,
        });
      }
    } catch {
      /* unreadable: start afresh */
    }
  }

  _save() {
    if (!this.storage || this._saveTimer) return;
    this._saveTimer = setTimeout(() => this._saveNow(), SAVE_DELAY_MS);
  }

  _saveNow() {
    clearTimeout(this._saveTimer);
    this._saveTimer = null;
    if (!this.storage) return;
    try {
      if (this.sessions.size === 0) {
        this.storage.removeItem(this.storageKey);
        return;
      }
      const sessions = [...this.sessions.values()].map((s) => ({
        id: s.id, game: s.game, role: s.role, player: s.player, token: s.token, code: s.code,
        lastSeq: s.lastSeq, view: s.view, ended: s.ended, results: s.results,
      }));
      this.storage.setItem(this.storageKey, JSON.stringify({ v: 1, sessions }));
    } catch {
      /* full or disabled: resume still works while the page stays open */
    }
  }
}

/** Nicknames: trimmed, inner runs of spaces collapsed, at most 24 characters. */
export const MAX_NAME_CHARS = 24;
export function cleanName(name) {
  const trimmed = String(name ?? '').replace(/\s+/g, ' ').trim();
  return Array.from(trimmed).slice(0, MAX_NAME_CHARS).join('').trim();
}

/** Results ({columns, rows}) as CSV text, like the server's `?format=csv`:
 * every field quoted, numbers as numbers, an apostrophe before each `=` `+`
 * `-` `@` that a spreadsheet could read as a formula's start. */
export function resultsToCsv(results) {
  const rows = Array.isArray(results?.rows) ? results.rows.filter(isObject) : [];
  let columns = Array.isArray(results?.columns) ? results.columns.map(String) : null;
  if (!columns) columns = [...new Set(rows.flatMap((r) => Object.keys(r)))].sort();
  const quote = (s) => `"${s.replace(/"/g, '""')}"`;
  const cell = (v) => {
    if (v === null || v === undefined) return '""';
    if (typeof v === 'number') return quote(String(v));
    return quote(csvText(typeof v === 'string' ? v : JSON.stringify(v)));
  };
  const lines = [columns.map((c) => quote(csvText(c))).join(',')];
  for (const r of rows) lines.push(columns.map((c) => cell(r[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** A cell starts at the start of the text and after anything a spreadsheet
 * may split on (`,` `;` tab `|`, line breaks), spaces and quotes skipped. */
function csvText(s) {
  if (/^[+-]?\d+(\.\d*)?([eE][+-]?\d+)?$/.test(s)) return s;
  let out = '';
  let start = true;
  for (const c of s) {
    if (start && '=+-@'.includes(c)) {
      out += "'";
      start = false;
    } else if (',;\t|\r\n'.includes(c)) start = true;
    else if (c !== ' ' && c !== '"') start = false;
    out += c;
  }
  return out;
}

/** 128 random bits as hex: a join's retry key. */
function randomNonce() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
