// Joining from the classroom: the host page shows the address students open
// and its QR code (or, on loopback only, why there is none), "Show QR" fills
// the screen, and the player page opened from the QR code has the code in.
// The server binds 127.0.0.1 only; --public-url stands for a classroom
// address (192.0.2.10 is a documentation address, never dialled).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

import {
  classroom, newPage, until, waitText, hostGame, PHONE, SMALL_LAPTOP, SCREENSHOTS,
} from './helpers.mjs';

const PUBLIC = 'http://192.0.2.10:8123';

async function shot(page, name) {
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  assert.ok((await stat(file)).size > 5000, `${name}.png was written`);
  const extra = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(extra <= 0, `${name}: the page is ${extra}px wider than the screen`);
}

/** The QR picture has loaded, is square, and is at least `min` px wide. */
async function qrShown(img, min) {
  return until(async () => {
    if (!(await img.isVisible())) return false;
    const r = await img.evaluate((e) => ({ ok: e.complete && e.naturalWidth > 0, w: e.getBoundingClientRect().width, h: e.getBoundingClientRect().height }));
    return r.ok && r.w >= min && Math.abs(r.w - r.h) < 2 && r;
  }, `a QR code of at least ${min}px`);
}

test('with --public-url the host lobby shows the join address and its QR code, full screen on demand', { timeout: 60000 }, async (t) => {
  await mkdir(SCREENSHOTS, { recursive: true });
  const { server, browser } = await classroom(t, { args: ['--public-url', PUBLIC] });

  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  const code = await hostGame(host, server.url, 'quiz');
  await waitText(host.locator('#join-url'), `${PUBLIC}/`);
  assert.equal(await host.locator('#join-hint').isHidden(), true, 'no warning with a public URL');
  const img = host.locator('#join-qr-img');
  await qrShown(img, 120);
  assert.equal(await img.getAttribute('src'), `/join.svg?code=${code}`);
  assert.match(await img.getAttribute('alt'), new RegExp(`${PUBLIC}/ with the code ${code}`));
  await shot(host, 'host-join-qr-laptop');

  // Show QR: over the whole screen, large enough for the back of the room.
  await host.getByRole('button', { name: 'Show QR' }).click();
  const big = host.locator('#qr-dialog-img');
  const size = await qrShown(big, 500);
  assert.ok(size.w >= 500, `the QR code fills the laptop screen: ${size.w}px`);
  await waitText(host.locator('#qr-dialog-heading'), `${code.slice(0, 3)} ${code.slice(3)}`);
  await shot(host, 'host-join-qr-full-laptop');
  await host.keyboard.press('Escape');
  await until(async () => !(await host.locator('#qr-dialog').isVisible()), 'the dialog closed by Escape');

  await host.setViewportSize(PHONE);
  await qrShown(img, 120);
  await shot(host, 'host-join-qr-phone');
  await host.getByRole('button', { name: 'Show QR' }).click();
  const phone = await qrShown(big, 300);
  assert.ok(phone.w <= PHONE.width, `the QR code fits the phone: ${phone.w}px`);
  await shot(host, 'host-join-qr-full-phone');
  await host.getByRole('button', { name: 'Close', exact: true }).click();
  await until(async () => !(await host.locator('#qr-dialog').isVisible()), 'the dialog closed by its button');
  assert.deepEqual(host.errors, [], 'no page errors and nothing blocked by the Content-Security-Policy');
});

test('on loopback without --public-url the host page says students cannot reach it, and shows no QR code', { timeout: 45000 }, async (t) => {
  const { server, browser } = await classroom(t);
  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  await hostGame(host, server.url, 'quiz');
  await waitText(host.locator('#join-hint'), /cannot reach this address/);
  assert.match(await host.locator('#join-hint').textContent(), /--bind 0\.0\.0\.0/);
  await waitText(host.locator('#join-url'), `${server.url}/`);
  assert.equal(await host.locator('#join-qr').isHidden(), true, 'no QR code of an address nobody else can open');
  assert.deepEqual(host.errors, []);
});

test('the player page opened from the QR code has the code filled in and the nickname focused', { timeout: 45000 }, async (t) => {
  const { server, browser } = await classroom(t);
  const ana = await newPage(browser, { viewport: PHONE });
  await ana.goto(`${server.url}/?code=123456`);
  assert.equal(await ana.getByLabel('Game code').inputValue(), '123456');
  await until(() => ana.evaluate(() => document.activeElement?.id === 'name'), 'the nickname field focused');
  // Without ?code= the code field is the one focused.
  const ben = await newPage(browser, { viewport: PHONE });
  await ben.goto(`${server.url}/`);
  assert.equal(await ben.getByLabel('Game code').inputValue(), '');
  await until(() => ben.evaluate(() => document.activeElement?.id === 'code'), 'the code field focused');
  assert.deepEqual([...ana.errors, ...ben.errors], []);
});
