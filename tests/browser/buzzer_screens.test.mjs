// games/buzzer.lua, every screen at phone and laptop sizes (buzzer.test.mjs
// plays it with the host on a laptop and the students on phones): here Ana
// is on a laptop and Ben on a phone, the host's screen is shot at both
// sizes, and the game goes through a right answer (the scoreboard), a
// question where both are wrong, and the podium.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  classroom, newPage, waitText, hostGame, joinGame, until, screenshots, leaderboardRows,
  podiumPlaces, PHONE, SMALL_LAPTOP,
} from './helpers.mjs';

test('the buzzer\'s screens at both sizes: lobby, buzzers open, answering and in line, right (scoreboard), both wrong, podium', { timeout: 60000 }, async (t) => {
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  const code = await hostGame(host, server.url, 'buzzer', { points: 50 });
  const ana = await newPage(browser, { viewport: SMALL_LAPTOP });
  const ben = await newPage(browser, { viewport: PHONE });
  await joinGame(ana, server.url, code, 'Ana');
  await joinGame(ben, server.url, code, 'Ben');
  await waitText(host.locator('.v-status'), '2 students joined');
  await waitText(ben.locator('.v-text'), "You're in, Ben! When the game starts, listen to the question and buzz if you know the answer.");
  await waitText(ana.locator('.v-text'), "You're in, Ana!");
  await screenshots(host, 'host-buzzer-lobby');
  await screenshots(ben, 'player-buzzer-lobby', { laptop: ana });

  // Question 1: the buzzers are open for everyone.
  await host.getByRole('button', { name: 'Start' }).click();
  for (const page of [host, ana, ben]) await waitText(page.locator('.v-title'), 'Question 1');
  await waitText(host.locator('.v-text'), 'Ask the question out loud. Buzzers are open.');
  await waitText(ana.locator('.v-text'), 'Listen to the question. Know the answer? Buzz!');
  const box = await ana.getByRole('button', { name: 'BUZZ!' }).boundingBox();
  assert.ok(box.height >= 56 && box.width >= 300, `the buzz button is big on a laptop: ${box.width}x${box.height}`);
  await screenshots(host, 'host-buzzer-open');
  await screenshots(ben, 'player-buzzer-open', { laptop: ana });

  // Ana (laptop) buzzes first, Ben (phone) second.
  await ana.getByRole('button', { name: 'BUZZ!' }).click();
  await waitText(ana.locator('.v-banner'), 'You buzzed first! Answer out loud');
  assert.equal(await ana.locator('.v-choices button').first().isDisabled(), true);
  await waitText(ana.locator('.v-choices .btn-label'), 'You are answering');
  await ben.getByRole('button', { name: 'BUZZ!' }).click();
  await waitText(ben.locator('.v-choices .btn-label'), 'You are 2nd in line');
  await waitText(ben.locator('.v-banner'), 'Ana is answering');
  await waitText(host.locator('.v-banner'), 'Ana is answering');
  await waitText(host.locator('.v-status'), 'Next in line: Ben');
  await waitText(ana.locator('.v-status'), 'Next in line: Ben');
  // (buzzer.test.mjs saves the host's laptop and the answering phone.)
  await screenshots(host, 'host-buzzer', { laptop: null });
  await screenshots(ana, 'player-buzzer-answering', { phone: null });

  // Right: +50 for Ana, and the scoreboard everyone sees.
  // The marking buttons take the colours docs/lua-api.md §11 gives the
  // "correct" and "wrong" styles (green, red), not the plain control blue.
  const colour = (name) => host.getByRole('button', { name }).evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.equal(await colour('Right: +50 for Ana'), 'rgb(22, 107, 48)');
  assert.equal(await colour('Wrong'), 'rgb(179, 38, 30)');
  await host.getByRole('button', { name: 'Right: +50 for Ana' }).click();
  await waitText(host.locator('.v-banner'), 'Ana got it right: +50');
  await waitText(host.locator('.v-text'), 'Ask the next question, then press Next question.');
  await waitText(ana.locator('.v-banner'), 'Right! +50 points');
  await waitText(ben.locator('.v-banner'), 'Ana got it right');
  await waitText(ben.locator('.v-choices .btn-label'), 'Wait for the next question');
  await waitText(ana.locator('#score-slot .score-value'), '50');
  const board = [{ rank: 1, name: 'Ana', score: 50 }, { rank: 2, name: 'Ben', score: 0 }];
  await until(async () => (await leaderboardRows(host)).length === 2, 'the host\'s scoreboard');
  assert.deepEqual(await leaderboardRows(host), board.map((r) => ({ ...r, me: false })));
  assert.deepEqual(await leaderboardRows(ana), board.map((r) => ({ ...r, me: r.name === 'Ana' })));
  assert.deepEqual(await leaderboardRows(ben), board.map((r) => ({ ...r, me: r.name === 'Ben' })));
  await screenshots(host, 'host-buzzer-right', { show: '.v-leaderboard' });
  await screenshots(ben, 'player-buzzer-scoreboard', { laptop: ana, show: '.v-leaderboard' });

  // Question 2: Ben (phone) first, Ana (laptop) in line; both wrong.
  await host.getByRole('button', { name: 'Next question' }).click();
  for (const page of [host, ana, ben]) await waitText(page.locator('.v-title'), 'Question 2');
  await ben.getByRole('button', { name: 'BUZZ!' }).click();
  await waitText(ben.locator('.v-banner'), 'You buzzed first! Answer out loud');
  await ana.getByRole('button', { name: 'BUZZ!' }).click();
  await waitText(ana.locator('.v-choices .btn-label'), 'You are 2nd in line');
  await waitText(ana.locator('.v-banner'), 'Ben is answering');
  await waitText(host.locator('.v-status'), 'Next in line: Ana');
  await screenshots(ana, 'player-buzzer-in-line', { phone: null });
  await host.getByRole('button', { name: 'Wrong' }).click();
  await waitText(ben.locator('.v-banner'), 'Not this time: wait for the next question');
  await waitText(ana.locator('.v-banner'), 'You buzzed first! Answer out loud');
  await waitText(host.locator('.v-banner'), 'Ana is answering');
  await host.getByRole('button', { name: 'Wrong' }).click();
  await waitText(ana.locator('.v-banner'), 'Not this time: wait for the next question');
  await waitText(host.locator('.v-banner'), 'Ana was wrong. Buzzers are open');
  await waitText(host.locator('.v-status'), 'Nobody else can buzz: press Next question.');
  for (const page of [ana, ben]) assert.equal(await page.locator('.v-choices button').first().isDisabled(), true, 'out for this question');
  assert.equal(await host.getByRole('button', { name: /^Right/ }).count(), 0, 'nobody to mark right');
  await screenshots(host, 'host-buzzer-all-wrong');
  await screenshots(ben, 'player-buzzer-out', { laptop: ana });

  // The podium.
  await host.getByRole('button', { name: 'Show podium' }).click();
  await host.locator('#results').waitFor({ state: 'visible' });
  await waitText(ana.locator('.v-banner'), 'You finished 1st of 2 with 50 points');
  await waitText(ben.locator('.v-banner'), 'You finished 2nd of 2 with 0 points');
  const podium = [{ name: 'Ana', score: 50 }, { name: 'Ben', score: 0 }];
  for (const page of [host, ana, ben]) assert.deepEqual(await podiumPlaces(page), podium);
  const rows = await host.locator('#results-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.deepEqual(rows, [['1', 'Ana', '50'], ['2', 'Ben', '0']]);
  await screenshots(host, 'host-buzzer-podium');
  await screenshots(ben, 'player-buzzer-podium', { laptop: ana });
  assert.deepEqual([...host.errors, ...ana.errors, ...ben.errors], []);
});
