// games/poll.lua on the real pages: the host types a question and its
// choices on their own screen and opens a poll, three students (two on
// phones, one on a laptop) vote and change their minds while the host's
// bars follow; then a word cloud on a new question, where the host removes
// an answer. Screenshots of each screen at phone and laptop sizes.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  classroom, newPage, waitText, hostGame, joinGame, until, screenshots, PHONE, SMALL_LAPTOP,
} from './helpers.mjs';

/** The bars of a chart: label → votes. */
async function bars(page) {
  const list = await page.locator('.v-bars .bar').evaluateAll((lis) => lis.map((li) => [
    li.querySelector('.bar-label').textContent, Number(li.querySelector('.bar-value').textContent),
  ]));
  return Object.fromEntries(list);
}

/** The words of a cloud: text → count (as the page says it to a screen reader). */
async function cloud(page) {
  const list = await page.locator('.v-cloud .cloud-word').evaluateAll((lis) => lis.map((li) => [
    li.querySelector('.cloud-text').textContent, Number(li.querySelector('.sr-only').textContent.match(/\((\d+)\)/)[1]),
  ]));
  return Object.fromEntries(list);
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** Waits until `read(page)` gives `want` (compared as JSON). */
async function until_(page, read, want, what) {
  let seen;
  await until(async () => { seen = await read(page); return same(seen, want); }, `${what}: ${JSON.stringify(want)}`)
    .catch((e) => { throw new Error(`${e.message}; seen ${JSON.stringify(seen)}`); });
}

/** Types `text` into the view's text field (placeholder `placeholder`) and sends it. */
async function send(page, placeholder, text) {
  const box = page.getByPlaceholder(placeholder);
  await box.fill(text);
  await box.press('Enter');
}

test('a live poll and a word cloud typed on the host\'s screen: the bars and the cloud follow the students, the host removes an answer', { timeout: 60000 }, async (t) => {
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  const code = await hostGame(host, server.url, 'poll');
  await waitText(host.locator('.v-title'), 'Class poll');
  await waitText(host.locator('.v-text'), 'Type your question and press Send.');
  const ana = await newPage(browser, { viewport: PHONE });
  const ben = await newPage(browser, { viewport: PHONE });
  const cy = await newPage(browser, { viewport: SMALL_LAPTOP });
  const students = { Ana: ana, Ben: ben, Cy: cy };
  for (const [name, page] of Object.entries(students)) await joinGame(page, server.url, code, name);
  await waitText(host.locator('.v-status'), '3 students here');
  await waitText(ana.locator('.v-text'), "You're in, Ana! The question appears here in a moment.");
  await screenshots(ana, 'player-poll-waiting', { laptop: cy });

  // The question and its choices, typed on the host's screen.
  await send(host, 'Your question…', 'Which pet should our class get?');
  await waitText(host.locator('.v-text'), 'Which pet should our class get?');
  await waitText(host.locator('.v-input label'), '0 of 8 choices');
  await send(host, 'Add a choice…', 'Cat');
  await waitText(host.locator('.v-input label'), '1 of 8 choices');
  const openPoll = host.getByRole('button', { name: 'Open poll' });
  assert.equal(await openPoll.isDisabled(), true, 'a poll needs two choices');
  await send(host, 'Add a choice…', 'Dog');
  await send(host, 'Add a choice…', 'Fish');
  await waitText(host.locator('.v-input label'), '3 of 8 choices');
  assert.deepEqual(await host.locator('.v-choices .btn-label').allTextContents(), ['Cat', 'Dog', 'Fish']);
  assert.equal(await openPoll.isDisabled(), false);
  // Students see nothing of it until it opens.
  assert.equal(await ana.locator('.v-choices').isVisible(), false, 'no choices on a phone before the poll opens');
  await screenshots(host, 'host-poll-setup');

  await openPoll.click();
  for (const page of Object.values(students)) {
    await waitText(page.locator('.v-text'), 'Which pet should our class get?');
    await waitText(page.locator('.v-status'), 'Pick one');
  }
  assert.deepEqual(await ana.locator('.v-choices .btn-label').allTextContents(), ['Cat', 'Dog', 'Fish']);
  await until_(host, bars, { Cat: 0, Dog: 0, Fish: 0 }, 'the host\'s bars, empty');
  await waitText(host.locator('.v-status'), '0 of 3 students answered');
  await screenshots(ana, 'player-poll-open', { laptop: cy });

  // Each vote moves the host's bars at once.
  await ana.getByRole('button', { name: 'Cat' }).click();
  await until_(host, bars, { Cat: 1, Dog: 0, Fish: 0 }, 'Ana\'s vote on the host\'s bars');
  await waitText(host.locator('.v-status'), '1 of 3 students answered');
  await waitText(ana.locator('.v-status'), 'Vote saved: you can still change it');
  assert.equal(await ana.locator('.v-choices button', { hasText: 'Cat' }).evaluate((b) => b.classList.contains('is-selected')), true, 'Ana\'s vote is marked');
  await ben.getByRole('button', { name: 'Dog' }).click();
  await until_(host, bars, { Cat: 1, Dog: 1, Fish: 0 }, 'Ben\'s vote');
  await cy.getByRole('button', { name: 'Cat' }).click();
  await until_(host, bars, { Cat: 2, Dog: 1, Fish: 0 }, 'Cy\'s vote');
  await waitText(host.locator('.v-status'), '3 of 3 students answered');
  // Ana changes her mind: a vote moves, the count of voters stays.
  await ana.getByRole('button', { name: 'Dog' }).click();
  await until_(host, bars, { Cat: 1, Dog: 2, Fish: 0 }, 'Ana\'s vote moved to Dog');
  await waitText(host.locator('.v-status'), '3 of 3 students answered');
  // Nobody follows the crowd: the students see no chart while it is open.
  for (const page of Object.values(students)) assert.equal(await page.locator('.v-bars').isVisible(), false, 'no live chart for students');
  await screenshots(host, 'host-poll', { show: '.v-bars' });
  await screenshots(ana, 'player-poll', { laptop: cy });

  // Close: everyone sees the chart.
  await host.getByRole('button', { name: 'Close', exact: true }).click();
  await waitText(host.locator('.v-status'), '3 of 3 students answered · closed');
  for (const page of Object.values(students)) {
    await waitText(page.locator('.v-banner'), 'The question is closed');
    await until_(page, bars, { Cat: 1, Dog: 2, Fish: 0 }, 'the chart on a student\'s screen');
    assert.equal(await page.locator('.v-choices').isVisible(), false, 'no more voting');
  }
  await screenshots(ana, 'player-poll-closed', { laptop: cy, show: '.v-bars' });
  await screenshots(host, 'host-poll-closed', { show: '.v-bars' });

  // A word cloud on a new question.
  await host.getByRole('button', { name: 'New question' }).click();
  await waitText(host.locator('.v-text'), 'Type your question and press Send.');
  await waitText(ana.locator('.v-text'), "You're in, Ana! The question appears here in a moment.");
  await send(host, 'Your question…', 'One word for fractions?');
  await host.getByRole('button', { name: 'Open word cloud' }).click();
  for (const page of Object.values(students)) {
    await waitText(page.locator('.v-text'), 'One word for fractions?');
    await waitText(page.locator('.v-status'), 'You can send 3 more answers');
  }
  await waitText(host.locator('.v-status'), '0 of 3 students answered');
  await screenshots(ana, 'player-cloud-open', { laptop: cy });

  await send(ana, 'Your answer…', 'Pizza');
  await until_(host, cloud, { Pizza: 1 }, 'Ana\'s word in the host\'s cloud');
  await waitText(ana.locator('.v-status'), 'You can send 2 more answers');
  await send(ana, 'Your answer…', 'Hard');
  await until_(host, cloud, { Pizza: 1, Hard: 1 }, 'Ana\'s second word');
  // The same answer with other capitals and spaces counts as one, shown as first typed.
  await send(ben, 'Your answer…', '  pizza ');
  await until_(host, cloud, { Pizza: 2, Hard: 1 }, 'Ben\'s "pizza" counted with Ana\'s');
  await send(cy, 'Your answer…', 'Boring');
  await until_(host, cloud, { Pizza: 2, Hard: 1, Boring: 1 }, 'Cy\'s word');
  await waitText(host.locator('.v-status'), '3 of 3 students answered');
  const sizes = await host.locator('.v-cloud .cloud-word').evaluateAll((lis) => Object.fromEntries(lis.map((li) => [li.firstChild.textContent, li.className.match(/size-(\d)/)[1]])));
  assert.ok(sizes.Pizza > sizes.Hard, `the most sent word is the biggest: ${JSON.stringify(sizes)}`);
  // The host's list of answers, each with how often it was sent.
  const answers = () => host.locator('#players-slot .player').evaluateAll((lis) => lis.map((li) => `${li.querySelector('.player-name').textContent}: ${li.querySelector('.player-detail').textContent}`));
  assert.deepEqual(await answers(), ['Pizza: 2 times', 'Hard: 1 time', 'Boring: 1 time']);
  assert.equal(await ana.locator('.v-cloud').isVisible(), false, 'no live cloud for students');
  await screenshots(host, 'host-cloud');
  await screenshots(ana, 'player-cloud', { laptop: cy });

  // The host removes "Boring" (two presses): it leaves the cloud and cannot be sent again.
  const remove = host.getByRole('button', { name: 'Remove Boring' });
  await remove.click();
  await waitText(host.locator('#players-slot .player', { hasText: 'Boring' }).locator('button.kick'), 'Really remove?');
  await host.getByRole('button', { name: /^Really remove Boring\?/ }).click();
  await until_(host, cloud, { Pizza: 2, Hard: 1 }, 'the cloud without Boring');
  assert.deepEqual(await answers(), ['Pizza: 2 times', 'Hard: 1 time']);
  await send(ben, 'Your answer…', 'boring');
  await waitText(ben.locator('#action-error'), 'the host removed that answer; try another');
  await waitText(ben.locator('.v-status'), 'You can send 2 more answers');
  await screenshots(host, 'host-cloud-removed');

  await host.getByRole('button', { name: 'Close', exact: true }).click();
  for (const page of Object.values(students)) {
    await waitText(page.locator('.v-banner'), 'The question is closed');
    await until_(page, cloud, { Pizza: 2, Hard: 1 }, 'the cloud on a student\'s screen once closed');
  }
  await screenshots(ana, 'player-cloud-closed', { laptop: cy });

  // Finish: every question's answers and counts, and never who sent them.
  await host.getByRole('button', { name: 'Finish' }).click();
  await host.locator('#results').waitFor({ state: 'visible' });
  for (const page of Object.values(students)) await waitText(page.locator('.v-text'), 'The poll is over. Thank you!');
  const rows = await host.locator('#results-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.deepEqual(await host.locator('#results-table thead th').allTextContents(), ['question', 'answer', 'votes']);
  assert.deepEqual(rows, [
    ['Which pet should our class get?', 'Cat', '1'],
    ['Which pet should our class get?', 'Dog', '2'],
    ['Which pet should our class get?', 'Fish', '0'],
    ['One word for fractions?', 'Pizza', '2'],
    ['One word for fractions?', 'Hard', '1'],
  ]);
  await screenshots(host, 'host-poll-results');
  assert.deepEqual([host, ...Object.values(students)].flatMap((p) => p.errors), []);
});
