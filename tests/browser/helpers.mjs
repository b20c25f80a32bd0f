// Shared pieces of the browser tests: the real server binary, headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core), a TCP
// proxy that can cut the browser off, and a polling helper.

import { spawn } from 'node:child_process';
import { mkdtemp, readdir, copyFile, writeFile, rm, mkdir, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RECESS_BIN = path.resolve(process.env.RECESS_BIN ?? path.join(REPO, 'target', 'debug', 'recess'));
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(REPO, 'target', 'screenshots');

export const PHONE = { width: 390, height: 844 };
export const LAPTOP = { width: 1366, height: 768 };
/** A classroom laptop's screen, for the join QR code's screenshots. */
export const SMALL_LAPTOP = { width: 1280, height: 800 };

// Servers still running when this process ends are killed with it, so an
// interrupted or timed-out run leaves nothing behind.
const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  });
}

/**
 * Starts `recess --port 0` on copies of the repo's games (plus `extraGames`,
 * a map of file name → Lua text) with `args` added to its flags. Resolves
 * when it prints its address.
 */
export async function startServer({ extraGames = {}, args = [], timeoutMs = 20000 } = {}) {
  const root = await mkdtemp(path.join(tmpdir(), 'recess-browser-'));
  const games = path.join(root, 'games');
  const data = path.join(root, 'data');
  await mkdir(games);
  await mkdir(data);
  for (const entry of await readdir(path.join(REPO, 'games'), { withFileTypes: true })) {
    const from = path.join(REPO, 'games', entry.name);
    // Lua games and spreadsheet games (games/NAME.quiz.csv, .xlsx).
    if (entry.isFile() && /\.(lua|csv|xlsx)$/.test(entry.name)) await copyFile(from, path.join(games, entry.name));
    else if (entry.isDirectory()) await cp(from, path.join(games, entry.name), { recursive: true });
  }
  for (const [name, text] of Object.entries(extraGames)) await writeFile(path.join(games, name), text);

  const proc = spawn(RECESS_BIN, ['--port', '0', '--games', games, '--data', data, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const log = [];
  proc.stderr.on('data', (d) => {
    log.push(String(d));
    if (log.length > 200) log.shift();
  });
  let earlyExit = null;
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`recess did not print its address within ${timeoutMs} ms; stderr:\n${log.join('')}`)), timeoutMs);
    proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${RECESS_BIN}: ${e.message} (build it with cargo build, or set RECESS_BIN)`)); });
    earlyExit = (code) => { clearTimeout(timer); reject(new Error(`recess exited with ${code} before listening; stderr:\n${log.join('')}`)); };
    proc.on('exit', earlyExit);
    proc.stdout.on('data', (d) => {
      out += String(d);
      const m = out.match(/recess listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
  }).catch(async (e) => {
    proc.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
    throw e;
  });
  proc.off('exit', earlyExit);
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    games,
    log,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await Promise.race([
          new Promise((r) => proc.once('exit', r)),
          new Promise((r) => setTimeout(r, 3000)),
        ]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      await rm(root, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
    timeout: 30000,
  });
}

/**
 * A server and a browser for one test, both stopped when it ends
 * (`options` as `startServer`'s).
 */
export async function classroom(t, options) {
  const server = await startServer(options);
  t.after(() => server.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  return { server, browser };
}

/** A page in its own context (own sessionStorage), with dialogs, page errors and CSP refusals recorded. */
export async function newPage(browser, { viewport = PHONE, timeoutMs = 10000 } = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  context.setDefaultTimeout(timeoutMs);
  const page = await context.newPage();
  page.dialogs = [];
  page.errors = [];
  page.on('dialog', (d) => { page.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => page.errors.push(String(e)));
  // Something the page's Content-Security-Policy blocked is an error too.
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) page.errors.push(m.text());
  });
  page.wsLog = [];
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => { page.wsLog.push(`<- ${f.payload}`); if (page.wsLog.length > 300) page.wsLog.shift(); });
    ws.on('framesent', (f) => { page.wsLog.push(`-> ${f.payload}`); if (page.wsLog.length > 300) page.wsLog.shift(); });
  });
  return page;
}

/**
 * A TCP proxy in front of the server that the test can cut: `cut(ms)`
 * destroys every open connection and refuses new ones for `ms`, then accepts
 * again on the same port.
 */
export async function startProxy(targetPort) {
  const sockets = new Set();
  const frozen = new Set();
  let server = null;
  let port = 0;
  const onConnection = (client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const listen = () => new Promise((resolve, reject) => {
    server = net.createServer(onConnection);
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      port = server.address().port;
      resolve();
    });
  });
  await listen();
  return {
    get port() { return port; },
    get url() { return `http://127.0.0.1:${port}`; },
    get open() { return sockets.size; },
    async cut(refuseMs) {
      const closed = new Promise((r) => server.close(r));
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closed;
      await new Promise((r) => setTimeout(r, refuseMs));
      await listen();
    },
    /** Stops forwarding on every open connection without closing it (a half-open socket). */
    freeze() {
      for (const s of sockets) {
        s.unpipe();
        s.pause();
        frozen.add(s);
      }
      sockets.clear();
    },
    async close() {
      for (const s of [...sockets, ...frozen]) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * Polls `fn` until it returns a truthy value (which is returned) or the time
 * is up (then throws with `what` and the last value seen).
 */
export async function until(fn, what, { timeoutMs = 10000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Waits until the element is visible and its text matches `pattern`; returns the text. */
export async function waitText(locator, pattern, timeoutMs = 10000) {
  const re = pattern instanceof RegExp ? pattern : new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  let seen = null;
  return until(async () => {
    const first = locator.first();
    if (!(await first.isVisible())) {
      seen = '(not visible)';
      return false;
    }
    seen = await first.textContent({ timeout: 200 }).catch(() => null);
    return seen !== null && re.test(seen) ? seen : false;
  }, `text ${re} in ${locator}`, { timeoutMs }).catch((e) => {
    throw new Error(`${e.message}; text seen: ${JSON.stringify(seen)}`);
  });
}

/** Host page: starts `game` with `params` from the game list; returns the join code. */
export async function hostGame(page, baseUrl, game, params) {
  await page.goto(`${baseUrl}/host`);
  if (params !== undefined) {
    await page.locator('#advanced summary').click();
    await page.getByLabel('Game parameters (JSON)').fill(JSON.stringify(params));
  }
  await page.locator(`li.game[data-game="${game}"] button.start`).click();
  await page.locator('#join-code').waitFor({ state: 'visible' });
  const code = await until(() => page.locator('#join-code').getAttribute('data-code').then((c) => /^\d{6}$/.test(c ?? '') && c), 'a join code');
  return code;
}

/** Player page: joins with `code` as `name`. */
export async function joinGame(page, baseUrl, code, name) {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('Game code').fill(code);
  await page.getByLabel('Your nickname').fill(name);
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#game-screen').waitFor({ state: 'visible' });
}

/** Parses the simple CSV the server writes (quoted cells allowed). */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  const [header, ...body] = rows;
  return body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
}

/**
 * Saves a screen at both sizes a class uses: `NAME-phone.png` (PHONE) and
 * `NAME-laptop.png` (SMALL_LAPTOP) in target/screenshots, as the screen
 * shows it (the viewport: a full-page capture would draw the host's sticky
 * buttons over the middle of the page). `page` is resized for each size and
 * put back; `{ phone, laptop }` name other pages (already at that size, e.g.
 * a student on a phone and one on a laptop) to take that size from instead,
 * or null to leave that size out (one another test saves already).
 * `show` (a CSS selector) is scrolled to the middle of the screen first,
 * for what is below the fold. At each size the page must not be wider than the screen.
 */
export async function screenshots(page, name, { phone = page, laptop = page, show = null } = {}) {
  await mkdir(SCREENSHOTS, { recursive: true });
  for (const [label, size, p] of [['phone', PHONE, phone], ['laptop', SMALL_LAPTOP, laptop]]) {
    if (p === null) continue;
    const was = p.viewportSize();
    const resize = was?.width !== size.width || was?.height !== size.height;
    if (resize) await p.setViewportSize(size);
    const overflow = await p.evaluate(() => {
      const width = document.documentElement.clientWidth;
      const culprits = [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > width + 0.5 && e.getClientRects().length > 0)
        .slice(0, 5)
        .map((e) => `${e.tagName.toLowerCase()}.${e.className}`);
      return { extra: document.documentElement.scrollWidth - width, culprits };
    });
    if (overflow.extra > 0) {
      throw new Error(`${name}-${label}: the page is ${overflow.extra}px wider than the screen: ${overflow.culprits.join(', ')}`);
    }
    if (show) await p.locator(show).first().evaluate((e) => e.scrollIntoView({ block: 'center' }));
    else await p.evaluate(() => window.scrollTo(0, 0));
    // (animations: 'disabled' finishes the bars' transitions first.)
    await p.screenshot({ path: path.join(SCREENSHOTS, `${name}-${label}.png`), animations: 'disabled' });
    if (resize && was) await p.setViewportSize(was);
  }
}

/** The rows of the `.v-leaderboard` table on a page: {rank, name, score, me}. */
export async function leaderboardRows(page) {
  return page.locator('.v-leaderboard tbody tr').evaluateAll((trs) => trs.map((tr) => ({
    rank: Number(tr.cells[0].textContent),
    name: tr.cells[1].firstChild?.textContent ?? '',
    score: Number(tr.cells[2].textContent),
    me: tr.getAttribute('aria-current') === 'true',
  })));
}

/** The places of the `.v-podium` on a page: {name, score}. */
export async function podiumPlaces(page) {
  return page.locator('.v-podium .podium-place').evaluateAll((lis) => lis.map((li) => ({
    name: li.querySelector('.podium-name').textContent,
    score: Number(li.querySelector('.podium-score').textContent.replace(/ pts$/, '')),
  })));
}
