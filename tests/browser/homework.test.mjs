// A self-paced (homework) quiz on the real pages: the teacher picks it in the
// quiz card's Settings (no JSON), students on phones go at their own pace,
// the host's screen shows where each one is, and Close brings the results.
// Screenshots of each homework screen at phone and laptop sizes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import {
  classroom, newPage, waitText, joinGame, until, PHONE, SMALL_LAPTOP, SCREENSHOTS,
} from './helpers.mjs';

const QUESTIONS = [
  { text: 'What is the capital of France?', choices: ['Berlin', 'Madrid', 'Paris', 'Rome'], answer: 3 },
  { type: 'truefalse', text: 'The Sun is a star.', answer: true },
];

test('homework: set in the Settings, played at each student\'s own pace, watched live by the host', { timeout: 90000 }, async (t) => {
  await mkdir(SCREENSHOTS, { recursive: true });
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  await host.goto(`${server.url}/host`);
  const card = host.locator('li.game[data-game="quiz"]');
  await card.locator('.game-settings summary').click();
  // The deadline appears only for homework; the answer-on-screen box only live.
  const deadline = card.getByLabel('Homework closes after (hours)');
  assert.equal(await deadline.isVisible(), false, 'no deadline for a live quiz');
  assert.equal(await card.getByLabel('Show the answer on my screen during each question').isVisible(), true);
  await card.getByLabel('How it is played').selectOption({ label: 'Homework: each student at their own pace, until a deadline' });
  await deadline.waitFor({ state: 'visible' });
  assert.equal(await deadline.inputValue(), '24', 'the form starts at the game\'s default');
  assert.equal(await card.getByLabel('Show the answer on my screen during each question').isVisible(), false);
  await host.screenshot({ path: path.join(SCREENSHOTS, 'host-quiz-settings-laptop.png') });

  // A value out of range is named before anything starts.
  await deadline.fill('500');
  await card.locator('button.start').click();
  await waitText(host.locator('#start-error'), 'Homework closes after (hours): give a number from 0.5 to 168 in steps of 0.5, or leave it empty.');
  await deadline.fill('48');
  await card.getByLabel('Seconds per question').fill('30');
  // Advanced JSON goes on top of the settings (here: two questions).
  await host.locator('#advanced summary').click();
  await host.getByLabel('Game parameters (JSON)').fill(JSON.stringify({ questions: QUESTIONS }));
  await card.locator('button.start').click();
  await host.locator('#join-code').waitFor({ state: 'visible' });
  const code = await until(() => host.locator('#join-code').getAttribute('data-code').then((c) => /^\d{6}$/.test(c ?? '') && c), 'a join code');

  // 48 hours to go: days on the clock, and when it closes.
  await waitText(host.locator('.v-timer .timer-label'), 'Closes in');
  await waitText(host.locator('.v-timer .timer-seconds'), /^(1 d 23:59:\d\d|2 d 00:00:00)$/);
  await waitText(host.locator('.v-timer .timer-until'), /^until /);
  await waitText(host.locator('.v-status'), '0 students: 0 finished, 0 playing, 0 not started');

  const ana = await newPage(browser, { viewport: PHONE });
  const ben = await newPage(browser, { viewport: SMALL_LAPTOP });
  await joinGame(ana, server.url, code, 'Ana');
  await joinGame(ben, server.url, code, 'Ben');
  await waitText(ana.locator('.v-text'), 'This quiz is homework: 2 questions');
  await ana.screenshot({ path: path.join(SCREENSHOTS, 'player-homework-ready-phone.png') });
  await ben.screenshot({ path: path.join(SCREENSHOTS, 'player-homework-ready-laptop.png') });

  // Ana starts and answers; Ben has not started: they are at different places.
  await ana.getByRole('button', { name: 'Start' }).click();
  await waitText(ana.locator('.v-title'), 'Question 1 of 2');
  await waitText(ana.locator('.v-timer .timer-seconds'), /^(30|29)$/);
  await ana.screenshot({ path: path.join(SCREENSHOTS, 'player-homework-question-phone.png') });
  await ana.getByRole('button', { name: 'Paris' }).click();
  await waitText(ana.locator('.v-banner'), /^✓ Correct! \+\d+ points$/);
  await ana.screenshot({ path: path.join(SCREENSHOTS, 'player-homework-reveal-phone.png') });
  await ana.getByRole('button', { name: 'Next question' }).click();
  await waitText(ana.locator('.v-title'), 'Question 2 of 2');
  await waitText(host.locator('.v-status'), '2 students: 0 finished, 1 playing, 1 not started');
  const detail = (name) => host.locator('.v-players li', { hasText: name }).locator('.player-detail');
  await waitText(detail('Ana'), /^question 2 of 2 · \d+ pts$/);
  await waitText(detail('Ben'), 'not started');
  await waitText(host.locator('.v-bars .bar-detail').first(), 'done, 1 right');

  await ben.getByRole('button', { name: 'Start' }).click();
  await waitText(ben.locator('.v-title'), 'Question 1 of 2');
  await ben.screenshot({ path: path.join(SCREENSHOTS, 'player-homework-question-laptop.png') });
  await waitText(detail('Ben'), 'question 1 of 2 · 0 pts');
  await ben.getByRole('button', { name: 'Berlin' }).click();
  await waitText(ben.locator('.v-banner'), 'Not quite: the answer was Paris');
  await ben.screenshot({ path: path.join(SCREENSHOTS, 'player-homework-reveal-laptop.png') });

  await ana.getByRole('button', { name: 'True' }).click();
  await ana.getByRole('button', { name: 'See how you did' }).click();
  await waitText(ana.locator('.v-banner'), /^✓ All done! 2 of 2 right, \d+ points\.$/);
  await ana.screenshot({ path: path.join(SCREENSHOTS, 'player-homework-done-phone.png') });
  await waitText(detail('Ana'), /^finished · 2 right · \d+ pts$/);
  await waitText(host.locator('.v-status'), '2 students: 1 finished, 1 playing, 0 not started');
  await host.screenshot({ path: path.join(SCREENSHOTS, 'host-homework-laptop.png') });
  await host.setViewportSize(PHONE);
  await host.screenshot({ path: path.join(SCREENSHOTS, 'host-homework-phone.png'), fullPage: true });
  await host.setViewportSize(SMALL_LAPTOP);

  await host.getByRole('button', { name: 'Close now and show results' }).click();
  await host.locator('#results').waitFor({ state: 'visible' });
  await waitText(host.locator('#results-table'), 'Ben');
  await waitText(ana.locator('.v-banner'), /You finished 1st of 2/);
  assert.deepEqual([...host.errors, ...ana.errors, ...ben.errors], []);
});
