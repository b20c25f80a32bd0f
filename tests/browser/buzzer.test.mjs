// games/buzzer.lua on the real pages: students press the one big BUZZ!
// button, every screen shows who answers and who is next, the host marks
// right and wrong, and the scoreboard and podium follow.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import {
  classroom, newPage, waitText, hostGame, joinGame, until, PHONE, SMALL_LAPTOP, SCREENSHOTS,
} from './helpers.mjs';

test('the buzzer: first to buzz answers, wrong passes to the next, right scores', { timeout: 60000 }, async (t) => {
  await mkdir(SCREENSHOTS, { recursive: true });
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  const code = await hostGame(host, server.url, 'buzzer');
  const ana = await newPage(browser, { viewport: PHONE });
  const ben = await newPage(browser, { viewport: PHONE });
  await joinGame(ana, server.url, code, 'Ana');
  await joinGame(ben, server.url, code, 'Ben');
  await waitText(host.locator('.v-status'), '2 students joined');
  await host.getByRole('button', { name: 'Start' }).click();

  const buzz = ana.getByRole('button', { name: 'BUZZ!' });
  await buzz.waitFor();
  const box = await buzz.boundingBox();
  assert.ok(box.height >= 56 && box.width >= 300, `the buzz button is big on a phone: ${box.width}x${box.height}`);
  await buzz.click();
  await waitText(host.locator('.v-banner'), 'Ana is answering');
  await waitText(ben.locator('.v-banner'), 'Ana is answering');
  await waitText(ana.locator('.v-banner'), 'You buzzed first');
  await ben.getByRole('button', { name: 'BUZZ!' }).click();
  await waitText(host.locator('.v-status'), 'Next in line: Ben');
  await waitText(ana.locator('.v-status'), 'Next in line: Ben');
  await ana.screenshot({ path: path.join(SCREENSHOTS, 'player-buzzer-answering-phone.png') });
  await ben.screenshot({ path: path.join(SCREENSHOTS, 'player-buzzer-in-line-phone.png') });
  await host.screenshot({ path: path.join(SCREENSHOTS, 'host-buzzer-laptop.png') });

  await host.getByRole('button', { name: 'Wrong' }).click();
  await waitText(host.locator('.v-banner'), 'Ben is answering');
  await waitText(ana.locator('.v-banner'), 'Not this time');
  assert.equal(await ana.locator('.v-choices button').first().isDisabled(), true, 'Ana is out for this question');
  await host.getByRole('button', { name: 'Right: +100 for Ben' }).click();
  await waitText(ben.locator('.v-banner'), 'Right! +100 points');
  await waitText(ana.locator('.v-banner'), 'Ben got it right');
  await until(async () => (await ben.locator('.v-leaderboard tr[aria-current]').textContent())?.includes('100'), "Ben's row with 100 points");

  await host.getByRole('button', { name: 'Show podium' }).click();
  await waitText(ben.locator('.v-banner'), 'You finished 1st of 2 with 100 points');
  await host.locator('#results').waitFor({ state: 'visible' });
  await waitText(host.locator('#results-table'), 'Ben');
  assert.deepEqual([...host.errors, ...ana.errors, ...ben.errors], []);
});
