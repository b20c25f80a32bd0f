// The player page (/) and the host page (/host) in real headless Chromium
// against the real server binary. Run from tests/browser:
//   npm ci && RECESS_BIN=../../target/debug/recess node --test

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  classroom, startServer, launchBrowser, newPage, startProxy, until, waitText, hostGame, joinGame,
  parseCsv, PHONE, LAPTOP, SCREENSHOTS, RECESS_BIN,
} from './helpers.mjs';

const QUESTIONS = [
  { text: 'What is 2 + 2?', choices: ['3', '4', '5', '22'], answer: 2 },
  { text: 'What colour is a clear sky?', choices: ['Green', 'Blue'], answer: 2 },
  { text: 'What is the capital of Italy?', choices: ['Rome', 'Paris', 'Oslo'], answer: 1 },
];

/** Clicks choice number `n` (1-based) on a player page. */
async function answer(page, n) {
  await page.locator('.v-choices button.choice').nth(n - 1).click();
  await waitAnswered(page);
}

/** Waits until no answer can be pressed any more (answer taken, or the reveal). */
async function waitAnswered(page) {
  await until(async () => (await page.locator('.v-choices button.choice:not([disabled])').count()) === 0,
    'the answer to be taken');
}

/** The points a reveal gave this player (0 for a wrong or missing answer). */
async function pointsFromBanner(page) {
  const text = await waitText(page.locator('.v-banner'), /Correct|Not quite|No answer/);
  const m = text.match(/\+(\d+) point/);
  return m ? Number(m[1]) : 0;
}

async function scoreOf(page) {
  const t = await page.locator('#score-slot .score-value').textContent();
  return Number(t);
}

test('a host page and 5 player pages play a whole quiz, with podium and CSV', { timeout: 90000 }, async (t) => {
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: LAPTOP });
  const code = await hostGame(host, server.url, 'quiz', { time_limit: 5, questions: QUESTIONS, title: 'Test quiz' });
  await waitText(host.locator('.v-title'), 'Test quiz');

  const names = ['Ana', 'Ben', 'Cleo', 'Dev', 'Eli'];
  const players = {};
  await Promise.all(names.map(async (name) => {
    const page = await newPage(browser, { viewport: PHONE });
    await joinGame(page, server.url, code, name);
    await waitText(page.locator('.v-text'), `You're in, ${name}!`);
    players[name] = page;
  }));

  assert.equal(await players.Ana.locator('#me').textContent(), 'Ana');
  // Record what screen readers are told (the polite live region).
  await players.Ana.evaluate(() => {
    window.said = [];
    const region = document.getElementById('announcer');
    new MutationObserver(() => { if (region.textContent) window.said.push(region.textContent); })
      .observe(region, { childList: true, characterData: true, subtree: true });
  });

  // The host sees everyone arrive, then starts.
  await until(async () => (await host.locator('#players-slot .player').count()) === 5, 'five players on the host page');
  for (const name of names) {
    assert.equal(await host.locator('#players-slot .player-name', { hasText: name }).count(), 1, `${name} listed once`);
  }
  await waitText(host.locator('.v-status'), '5 players joined');
  await host.getByRole('button', { name: 'Start' }).click();

  // Each question: who picks what (null: no answer, the timer runs out).
  const plan = [
    { Ana: 2, Ben: 2, Cleo: 1, Dev: 2, Eli: 3 },
    { Ana: 2, Ben: 1, Cleo: 2, Dev: null, Eli: 2 },
    { Ana: 1, Ben: 1, Cleo: 1, Dev: 1, Eli: 2 },
  ];
  const totals = Object.fromEntries(names.map((n) => [n, 0]));
  const correct = Object.fromEntries(names.map((n) => [n, 0]));

  for (let q = 0; q < plan.length; q++) {
    const title = `Question ${q + 1} of 3`;
    await waitText(host.locator('.v-title'), title);
    for (const name of names) {
      await waitText(players[name].locator('.v-title'), title);
      await waitText(players[name].locator('.v-text'), QUESTIONS[q].text);
    }
    let answered = 0;
    for (const name of names) {
      const pick = plan[q][name];
      if (pick === null) continue;
      if (name === 'Dev') {
        // Keyboard only: focus the answer and press Enter.
        await players.Dev.locator('.v-choices button.choice').nth(pick - 1).focus();
        await players.Dev.keyboard.press('Enter');
        await waitAnswered(players.Dev);
      } else {
        await answer(players[name], pick);
      }
      answered += 1;
      if (answered === 2 && q === 0) {
        // Answers arrive live on the host page: the count and the per-choice details.
        await waitText(host.locator('.v-status'), /2 of 5 answered/);
        await waitText(host.locator('.v-choices button.choice').nth(1).locator('.btn-detail'), '2 answers');
      }
    }
    // The reveal comes by itself: everyone answered, or the time ran out.
    for (const name of names) {
      const points = await pointsFromBanner(players[name]);
      const right = plan[q][name] === QUESTIONS[q].answer;
      assert.equal(points > 0, right, `${name} on question ${q + 1}: ${points} points`);
      if (right) {
        assert.ok(points >= 500 && points <= 1000, `points in range: ${points}`);
        correct[name] += 1;
      }
      totals[name] += points;
      await until(async () => (await scoreOf(players[name])) === totals[name], `${name}'s score ${totals[name]}`)
        .catch(async (e) => { throw new Error(`${e.message}; shown: ${await scoreOf(players[name])}, banner: ${await players[name].locator('.v-banner').textContent()}, title: ${await players[name].locator('.v-title').textContent()}\n${players[name].wsLog.slice(-40).join('\n')}`); });
    }
    await waitText(host.locator('.v-leaderboard'), names[0]);
    const next = q < plan.length - 1 ? 'Next question' : 'Show podium';
    await host.getByRole('button', { name: next }).click();
  }

  // Podium everywhere; the host gets the results.
  const ranking = [...names].sort((a, b) => totals[b] - totals[a] || a.toLowerCase().localeCompare(b.toLowerCase()));
  await host.locator('.v-podium .podium-place').first().waitFor();
  const podiumNames = await host.locator('.v-podium .podium-name').allTextContents();
  assert.deepEqual(podiumNames, ranking.slice(0, 3));
  for (const name of names) {
    await waitText(players[name].locator('.v-banner'), /You finished \d+(st|nd|rd|th) of 5/);
    assert.equal(await scoreOf(players[name]), totals[name]);
    await players[name].locator('#again').waitFor({ state: 'visible' });
  }
  await host.locator('#results').waitFor({ state: 'visible' });

  // Screen readers heard each question and its result, and the timer only at a few moments.
  const said = await players.Ana.evaluate(() => window.said);
  for (let q = 0; q < QUESTIONS.length; q++) {
    assert.ok(said.some((line) => line.includes(`Question ${q + 1} of 3`) && line.includes(QUESTIONS[q].text)), `question ${q + 1} announced: ${JSON.stringify(said)}`);
  }
  assert.ok(said.some((line) => line.startsWith('Correct!')), JSON.stringify(said));
  const timerLines = said.filter((line) => /seconds|Time is up/.test(line));
  assert.ok(timerLines.length >= 3 && timerLines.length <= 3 * QUESTIONS.length, `timer announcements: ${JSON.stringify(timerLines)}`);

  const [download] = await Promise.all([
    host.waitForEvent('download', { timeout: 10000 }),
    host.getByRole('button', { name: 'Download results (CSV)' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /\.csv$/);
  const csv = await readFile(await download.path(), 'utf8');
  const rows = parseCsv(csv);
  assert.equal(rows.length, 5, csv);
  // The first columns, then the quiz's report columns for each question.
  assert.deepEqual(Object.keys(rows[0]).slice(0, 5), ['rank', 'name', 'score', 'correct', 'q1 answer']);
  assert.deepEqual(rows.map((r) => r.name), ranking, csv);
  for (const r of rows) {
    assert.equal(Number(r.score), totals[r.name], `CSV score of ${r.name}`);
    assert.equal(Number(r.correct), correct[r.name], `CSV correct answers of ${r.name}`);
  }
  assert.equal(rows[0].rank, '1');
  // The file is the server's own CSV (fetched with the host token), not the page's fallback.
  const { id, token } = await host.evaluate(() => [...window.recess.sessions.values()][0]);
  const res = await fetch(`${server.url}/api/sessions/${id}/results?format=csv&token=${encodeURIComponent(token)}`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), csv);
  const fallback = await host.evaluate(async () => {
    const { resultsToCsv } = await import('/recess.js');
    return resultsToCsv([...window.recess.sessions.values()][0].results);
  });
  assert.equal(fallback, csv, 'the page builds the same CSV when the server cannot');

  // The recording: every player's join is in it, and it replays byte for byte.
  const [recording] = await Promise.all([
    host.waitForEvent('download', { timeout: 10000 }),
    host.getByRole('button', { name: 'Download recording' }).click(),
  ]);
  assert.match(recording.suggestedFilename(), /^recording-quiz-\d{4}-\d{2}-\d{2}\.json$/);
  const file = await recording.path();
  const recorded = JSON.parse(await readFile(file, 'utf8'));
  assert.deepEqual(recorded.steps.filter((s) => s.do === 'join').map((s) => s.name).sort(), [...names].sort());
  const { stdout } = await promisify(execFile)(RECESS_BIN, ['replay', file]);
  assert.match(stdout, new RegExp(`^identical: ${recorded.outputs.length} messages and answers, byte for byte$`, 'm'), stdout);

  for (const page of [host, ...Object.values(players)]) {
    assert.deepEqual(page.errors, [], 'no script errors in the page');
  }
});

test('a player cut off mid-question reconnects by itself and sees the right question and score', { timeout: 60000 }, async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await startProxy(server.port);
  t.after(() => proxy.close());
  const browser = await launchBrowser();
  t.after(() => browser.close());

  const host = await newPage(browser, { viewport: LAPTOP });
  const code = await hostGame(host, server.url, 'quiz', { time_limit: 60, questions: QUESTIONS });
  const player = await newPage(browser, { viewport: PHONE });
  await joinGame(player, proxy.url, code, 'Robin');
  const id = await player.evaluate(() => [...window.recess.sessions.values()][0].player.id);
  await host.getByRole('button', { name: 'Start' }).click();

  // Question 1: right answer, the reveal comes at once (the only player answered).
  await waitText(player.locator('.v-title'), 'Question 1 of 3');
  await answer(player, 2);
  const points = await pointsFromBanner(player);
  assert.ok(points >= 500, `points for a right answer: ${points}`);
  await until(async () => (await scoreOf(player)) === points, 'score after question 1');

  await host.getByRole('button', { name: 'Next question' }).click();
  await waitText(player.locator('.v-title'), 'Question 2 of 3');
  await waitText(player.locator('.v-text'), QUESTIONS[1].text);

  // Cut the connection for 3 s; meanwhile the host moves on to question 3.
  const cut = proxy.cut(3000);
  await waitText(player.locator('#conn'), /reconnecting/i);
  assert.equal(await player.locator('#conn').isVisible(), true);
  await mkdir(SCREENSHOTS, { recursive: true });
  await shot(player, 'player-reconnecting-phone');
  await host.getByRole('button', { name: 'Skip question' }).click();
  await waitText(host.locator('.v-title'), 'Question 3 of 3');
  await until(async () => (await host.locator('#players-slot .player').count()) === 1, 'the seat is kept');
  assert.equal(await player.locator('.v-title').textContent(), 'Question 2 of 3', 'still cut off');
  await cut;

  // Back by itself: the question it missed, the same score, the same seat.
  await waitText(player.locator('.v-title'), 'Question 3 of 3', 15000);
  await waitText(player.locator('.v-text'), QUESTIONS[2].text);
  await player.locator('#conn').waitFor({ state: 'hidden' });
  assert.equal(await scoreOf(player), points);
  assert.equal(await player.evaluate(() => [...window.recess.sessions.values()][0].player.id), id);
  assert.equal(await player.locator('.v-choices button.choice:not([disabled])').count(), 3);

  // It plays on: the answer counts.
  await answer(player, 1);
  const more = await pointsFromBanner(player);
  assert.ok(more >= 500);
  await until(async () => (await scoreOf(player)) === points + more, 'score after question 3');
  assert.equal(await host.locator('#players-slot .player').count(), 1, 'no second seat for the same student');

  // A page reload resumes too (token, last_seq and view are in sessionStorage).
  await player.reload();
  await waitText(player.locator('.v-title'), 'Question 3 of 3');
  await waitText(player.locator('.v-banner'), 'Correct!');
  assert.equal(await scoreOf(player), points + more);
  assert.equal(await player.locator('#join-screen').isHidden(), true);

  // A seat the server does not know (bad_token): back to the join form, with the reason.
  // (Changed in memory: the page stores its sessions again when it unloads.)
  await player.evaluate(() => {
    const [s] = window.recess.sessions.values();
    s.token = `${s.id}.pnobody.wrongsecret`;
  });
  await player.reload();
  await player.locator('#join-screen').waitFor({ state: 'visible' });
  await waitText(player.locator('#join-error'), /.+/);
  assert.equal(await player.evaluate(() => window.recess.sessions.size), 0);
  assert.equal(await player.evaluate(() => sessionStorage.getItem('recess.player')), null);
  assert.deepEqual(player.errors, []);
});

test('nicknames and messages with HTML in them are shown as text, never run; the host can remove a player', { timeout: 45000 }, async (t) => {
  const { server, browser } = await classroom(t);
  const evil = '<img src=x onerror=alert(1)>';
  // Nicknames are at most 24 characters (the server refuses longer ones), so
  // the field keeps the first 24 of this one; a shorter payload fits whole.
  const evilShown = Array.from(evil).slice(0, 24).join('');
  const svg = '<svg onload=alert(1)>';

  const host = await newPage(browser, { viewport: LAPTOP });
  const code = await hostGame(host, server.url, 'quiz');
  const player = await newPage(browser, { viewport: PHONE });
  await joinGame(player, server.url, code, evil);
  const svgPlayer = await newPage(browser, { viewport: PHONE });
  await joinGame(svgPlayer, server.url, code, svg);

  await waitText(player.locator('#me'), evilShown);
  assert.equal(await player.locator('#me').textContent(), evilShown);
  await waitText(player.locator('.v-text'), `You're in, ${evilShown}!`);
  assert.equal(await player.getByText(evilShown, { exact: true }).isVisible(), true);
  await waitText(svgPlayer.locator('.v-text'), `You're in, ${svg}!`);
  await until(async () => (await host.locator('#players-slot .player').count()) === 2, 'two players on the host page');
  assert.equal(await host.getByText(evilShown, { exact: true }).isVisible(), true);
  assert.equal(await host.getByText(svg, { exact: true }).isVisible(), true);

  // A nickname is trimmed and cut to 24 characters.
  const other = await newPage(browser, { viewport: PHONE });
  await joinGame(other, server.url, code, `   ${'Z'.repeat(30)}   `);
  await waitText(other.locator('#me'), /^Z+$/);
  assert.equal(await other.locator('#me').textContent(), 'Z'.repeat(24));

  // The host removes a player (two presses); they are back at the join screen with the reason.
  await until(async () => (await host.locator('#players-slot .player').count()) === 3, 'three players');
  await host.getByRole('button', { name: `Remove ${svg}` }).click();
  await host.getByRole('button', { name: `Really remove ${svg}? Press again to confirm` }).click();
  await svgPlayer.locator('#join-screen').waitFor({ state: 'visible' });
  await waitText(svgPlayer.locator('#join-error'), /removed you/);
  await until(async () => (await host.locator('#players-slot .player').count()) === 2, 'two players left');
  assert.equal(await host.getByText(svg, { exact: true }).count(), 0);

  // Chat: a message with markup stays text on everyone's screen.
  const chatHost = await newPage(browser, { viewport: LAPTOP });
  const chatCode = await hostGame(chatHost, server.url, 'chat');
  const chatter = await newPage(browser, { viewport: PHONE });
  await joinGame(chatter, server.url, chatCode, svg);
  const message = `<b>bold</b><script>alert(2)</script>${evil}`;
  await chatter.getByLabel('Message', { exact: true }).fill(message);
  await chatter.getByLabel('Message', { exact: true }).press('Enter');
  for (const page of [chatter, chatHost]) {
    await waitText(page.locator('.v-messages .message-text'), message);
    assert.equal(await page.locator('.v-messages .message-from').first().textContent(), svg);
    assert.equal(await page.locator('.v-messages b, .v-messages script').count(), 0);
  }
  assert.equal(await chatter.getByLabel('Message', { exact: true }).inputValue(), '', 'the field is cleared after sending');

  for (const page of [host, player, svgPlayer, other, chatHost, chatter]) {
    assert.deepEqual(page.dialogs, [], 'no dialog fired');
    assert.equal(await page.evaluate(() => document.querySelectorAll('img, svg').length), 0, 'no img or svg element created');
    assert.deepEqual(page.errors, []);
  }
});

const BOOM = `
return {
  title = "Boom test",
  init = function(ctx, params) return { n = 0 } end,
  action = function(state, ctx, player, name, data)
    if name == "boom" then error("the boom button exploded") end
    state.n = state.n + 1
  end,
  view = function(state, player)
    return {
      title = "Boom",
      text = "Pressed " .. state.n .. " times",
      buttons = { { label = "Boom", action = "boom" }, { label = "Fine", action = "fine" } },
    }
  end,
}
`;

test('the host page lists load errors and shows script errors as they happen', { timeout: 45000 }, async (t) => {
  const { server, browser } = await classroom(t, {
    extraGames: { 'boom.lua': BOOM, 'broken.lua': 'return { title = "Broken", view = function( }\n' },
  });

  const host = await newPage(browser, { viewport: LAPTOP });
  await host.goto(`${server.url}/host`);
  const broken = host.locator('li.game[data-game="broken"]');
  await waitText(broken.locator('.load-error'), /broken\.lua/);
  assert.equal(await broken.locator('button.start').count(), 0, 'a broken game cannot be started');
  assert.equal(await host.locator('li.game[data-game="quiz"] button.start').count(), 1);

  const code = await hostGame(host, server.url, 'boom');
  assert.equal(await host.locator('#errors').isHidden(), true);
  await host.getByRole('button', { name: 'Boom' }).click();
  await waitText(host.locator('#error-list'), /boom\.lua:\d+: .*the boom button exploded/);

  // A player's failing action reaches the host too; the player sees the message.
  const player = await newPage(browser, { viewport: PHONE });
  await joinGame(player, server.url, code, 'Kim');
  await player.getByRole('button', { name: 'Fine' }).click();
  await waitText(player.locator('.v-text'), 'Pressed 1 times');
  await player.getByRole('button', { name: 'Boom' }).click();
  await waitText(player.locator('#action-error'), /the boom button exploded/);
  await waitText(host.locator('#error-list li').first(), /\(2 times\)/);
  assert.equal(await host.locator('#error-list li').count(), 1, 'the same error twice is counted, not repeated');

  // Saving a broken version while the game runs: the host hears of it.
  await writeFile(path.join(server.games, 'boom.lua'), 'return { oops = \n');
  await waitText(host.locator('#error-list'), /game_broken/, 15000);
  await mkdir(SCREENSHOTS, { recursive: true });
  await host.screenshot({ path: path.join(SCREENSHOTS, 'host-errors-laptop.png') });
  assert.deepEqual(host.errors, []);
});

async function shot(page, name) {
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  const info = await stat(file);
  assert.ok(info.size > 5000, `${name}.png was written`);
  // Nothing sticks out sideways (a phone would scroll horizontally).
  const overflow = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const extra = document.documentElement.scrollWidth - width;
    const culprits = [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > width + 0.5)
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}.${e.className}`);
    return { extra, culprits };
  });
  assert.ok(overflow.extra <= 0, `${name}: the page is ${overflow.extra}px wider than the screen: ${overflow.culprits.join(', ')}`);
}

test('screenshots of the player and host pages at phone and laptop sizes', { timeout: 60000 }, async (t) => {
  await mkdir(SCREENSHOTS, { recursive: true });
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: LAPTOP });
  await host.goto(`${server.url}/host`);
  await host.locator('li.game').first().waitFor();
  await shot(host, 'host-games-laptop');
  await host.setViewportSize(PHONE);
  await shot(host, 'host-games-phone');
  await host.setViewportSize(LAPTOP);

  const questions = [
    {
      text: 'Which planet is known as the Red Planet?',
      choices: ['Mars', 'Venus', 'Jupiter', 'Mercury'],
      answer: 1,
      image: `data:image/svg+xml,${encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" width="320" height="120"><rect width="320" height="120" fill="#0b1026"/><circle cx="160" cy="60" r="42" fill="#c1440e"/><circle cx="145" cy="48" r="8" fill="#8e2f08"/></svg>')}`,
    },
  ];
  const code = await hostGame(host, server.url, 'quiz', { time_limit: 60, questions, title: 'Space quiz' });

  const ana = await newPage(browser, { viewport: PHONE });
  await ana.goto(`${server.url}/`);
  await ana.getByLabel('Game code').waitFor();
  await shot(ana, 'player-join-phone');
  await ana.setViewportSize(LAPTOP);
  await shot(ana, 'player-join-laptop');
  await ana.setViewportSize(PHONE);
  await joinGame(ana, server.url, code, 'Ana');
  await waitText(ana.locator('.v-text'), "You're in");
  await shot(ana, 'player-lobby-phone');

  const ben = await newPage(browser, { viewport: PHONE });
  await joinGame(ben, server.url, code, 'Benedict the Magnificent');
  await until(async () => (await host.locator('#players-slot .player').count()) === 2, 'two players');
  const codeSize = await host.locator('#join-code').evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(codeSize >= 64, `the join code is big on the laptop: ${codeSize}px`);
  await shot(host, 'host-lobby-laptop');
  await host.setViewportSize(PHONE);
  await shot(host, 'host-lobby-phone');
  await host.setViewportSize(LAPTOP);

  await host.getByRole('button', { name: 'Start' }).click();
  await waitText(ana.locator('.v-title'), 'Question 1 of 1');
  await ana.locator('.v-timer .timer-seconds').waitFor();
  await until(() => ana.locator('.v-image img').evaluate((img) => img.complete && img.naturalWidth > 0), 'the question picture');
  const box = await ana.locator('.v-choices button.choice').first().boundingBox();
  assert.ok(box.height >= 56 && box.width >= 300, `answer buttons are big on a phone: ${box.width}x${box.height}`);
  await shot(ana, 'player-question-phone');
  await ana.setViewportSize(LAPTOP);
  await shot(ana, 'player-question-laptop');
  await ana.setViewportSize(PHONE);
  await answer(ana, 1);
  await shot(ana, 'player-answered-phone');
  await waitText(host.locator('.v-status'), '1 of 2 answered');
  await shot(host, 'host-question-laptop');
  await host.setViewportSize(PHONE);
  await shot(host, 'host-question-phone');
  await host.setViewportSize(LAPTOP);

  await answer(ben, 2);
  await waitText(ana.locator('.v-banner'), 'Correct!');
  await waitText(ben.locator('.v-banner'), 'Not quite');
  await shot(ana, 'player-reveal-phone');
  await shot(ben, 'player-reveal-wrong-phone');
  await shot(host, 'host-reveal-laptop');

  await host.getByRole('button', { name: 'Show podium' }).click();
  await waitText(ana.locator('.v-banner'), 'You finished 1st');
  await host.locator('#results').waitFor({ state: 'visible' });
  await shot(ana, 'player-podium-phone');
  await ana.setViewportSize(LAPTOP);
  await shot(ana, 'player-podium-laptop');
  await shot(host, 'host-podium-laptop');
  await host.setViewportSize(PHONE);
  await shot(host, 'host-podium-phone');

  // Question hidden on the player's device when the setting is off.
  const host2 = await newPage(browser, { viewport: LAPTOP });
  const hidden = await newPage(browser, { viewport: PHONE });
  const code2 = await hostGame(host2, server.url, 'quiz', { time_limit: 60, questions });
  await joinGame(hidden, server.url, code2, 'Cy');
  await hidden.locator('.settings summary').click();
  await hidden.getByLabel('Show the question on my device').uncheck();
  await host2.getByRole('button', { name: 'Start' }).click();
  await waitText(hidden.locator('.v-title'), 'Question 1 of 1');
  await hidden.locator('.v-choices button.choice').first().waitFor();
  assert.equal(await hidden.locator('.v-text').isHidden(), true, 'question text hidden');
  await hidden.getByLabel('Show the question on my device').check();
  await waitText(hidden.locator('.v-text'), questions[0].text);

  // The chat: a text field and a log.
  const chatHost = await newPage(browser, { viewport: LAPTOP });
  const chatCode = await hostGame(chatHost, server.url, 'chat');
  const chatter = await newPage(browser, { viewport: PHONE });
  await joinGame(chatter, server.url, chatCode, 'Ana');
  for (const text of ['Hello everyone!', 'Is the homework for Monday or Tuesday? I could not find it on the class page.']) {
    await chatter.getByLabel('Message', { exact: true }).fill(text);
    await chatter.getByRole('button', { name: 'Send' }).click();
    await waitText(chatHost.locator('.v-messages'), text);
  }
  await shot(chatter, 'player-chat-phone');
  await shot(chatHost, 'host-chat-laptop');
});

test('recess.js on its own: merge patches, CSV, and a silent socket detected by the liveness probe', { timeout: 45000 }, async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await startProxy(server.port);
  t.after(() => proxy.close());
  const browser = await launchBrowser();
  t.after(() => browser.close());

  const host = await newPage(browser, { viewport: LAPTOP });
  const code = await hostGame(host, server.url, 'chat');
  const page = await newPage(browser, { viewport: PHONE });
  await page.goto(`${proxy.url}/`);

  const pure = await page.evaluate(async () => {
    const { mergePatch, resultsToCsv, cleanName } = await import('/recess.js');
    const base = { a: 1, keep: { x: [1, 2] }, gone: 'y', nested: { p: 1, q: 2 } };
    const merged = mergePatch(base, { a: 2, gone: null, nested: { q: null, r: 3 }, list: [{ z: null }] });
    return {
      merged,
      untouched: base.gone === 'y' && base.nested.q === 2,
      shared: merged.keep === base.keep,
      scalar: mergePatch({ a: 1 }, 'text'),
      csv: resultsToCsv({ columns: ['name', 'score'], rows: [
        { name: 'Ana, B', score: 3 }, { name: '=1+1', score: -2 }, { name: "x;=cmd|' /C calc'!A0", score: 2.5 },
        { name: 'say "hi"', score: null }, { name: '-5' },
      ] }),
      name: cleanName('   Ana    Maria   '),
    };
  });
  assert.deepEqual(pure.merged, { a: 2, keep: { x: [1, 2] }, nested: { p: 1, r: 3 }, list: [{ z: null }] });
  assert.equal(pure.untouched, true, 'the patched value is not mutated');
  assert.equal(pure.shared, true, 'untouched members keep their identity');
  assert.equal(pure.scalar, 'text');
  assert.equal(pure.csv, '"name","score"\r\n"Ana, B","3"\r\n"\'=1+1","-2"\r\n'
    + '"x;\'=cmd|\' /C calc\'!A0","2.5"\r\n"say ""hi""",""\r\n"-5",""\r\n');
  assert.equal(pure.name, 'Ana Maria');

  // A client with a short liveness probe joins the chat through the proxy.
  await page.evaluate(async (code) => {
    const { RecessClient } = await import('/recess.js');
    const c = new RecessClient({ storage: null, heartbeat: { idleMs: 400, timeoutMs: 800 } });
    window.probeClient = c;
    window.states = [];
    window.probes = 0;
    c.on('status', ({ state }) => window.states.push(state));
    c.on('frame', (f) => { if (f.type === 'pong' && String(f.ref).startsWith('hb')) window.probes += 1; });
    const s = await c.join(code, 'Probe');
    window.sessionId = s.id;
    await c.action(s.id, 'send', { text: 'before' });
  }, code);
  await waitText(host.locator('.v-messages'), 'before');
  // Idle but alive: probes are answered, the socket stays.
  await until(() => page.evaluate(() => window.probes >= 3), 'three answered probes');
  assert.deepEqual(await page.evaluate(() => window.states), ['connecting', 'open']);

  // The socket goes silent without closing (a Wi-Fi hop): the probe notices, the client resumes.
  proxy.freeze();
  await until(() => page.evaluate(() => window.states.includes('reconnecting')), 'the client to notice the silent socket');
  await until(() => page.evaluate(() => window.probeClient.state === 'open'), 'the client to be back');
  await page.evaluate(() => window.probeClient.action(window.sessionId, 'send', { text: 'after' }));
  await waitText(host.locator('.v-messages'), 'after');
  const view = await page.evaluate(() => window.probeClient.get(window.sessionId).view);
  assert.deepEqual(view.messages.map((m) => m.text), ['before', 'after']);
  assert.equal(view.players.filter((p) => p.name === 'Probe').length, 1);
});
