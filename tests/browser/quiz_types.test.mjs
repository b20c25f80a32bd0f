// Every question type of the quiz, played on the real pages: the shipped
// sample games/science.quiz.csv (the quiz's own spreadsheet layout) hosted
// on a laptop, answered by a student on a phone and one on a laptop, with a
// screenshot of each question at both sizes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import {
  classroom, newPage, waitText, hostGame, joinGame, until, PHONE, SMALL_LAPTOP, SCREENSHOTS,
} from './helpers.mjs';

const PLANETS = ['Mercury', 'Venus', 'Earth', 'Mars'];

/** Puts the order question's items in `want` order with the Move up buttons. */
async function arrange(page, want) {
  for (let k = 0; k < want.length; k++) {
    for (;;) {
      const labels = await page.locator('.v-order .order-label').allTextContents();
      const at = labels.indexOf(want[k]);
      assert.ok(at >= 0, `${want[k]} in ${labels}`);
      if (at === k) break;
      await page.getByRole('button', { name: `Move ${want[k]} up` }).click();
    }
  }
}

/** How a student answers each question, right, through the page. */
const QUESTIONS = [
  { kind: 'choice', text: 'Which gas do plants take in', answer: (p) => p.getByRole('button', { name: 'Carbon dioxide' }).click() },
  { kind: 'truefalse', text: 'The Sun is a star.', answer: (p) => p.getByRole('button', { name: 'True' }).click() },
  {
    kind: 'type',
    text: 'chemical symbol of gold',
    answer: async (p) => {
      const box = p.getByRole('textbox');
      await box.fill('  au ');
      await box.press('Enter');
    },
  },
  {
    kind: 'slider',
    text: 'water boil',
    answer: async (p) => {
      await p.getByRole('slider', { name: 'Your answer' }).fill('100');
      await waitText(p.locator('.v-slider .slider-value'), /^100 ?°C$/);
      await p.locator('.v-slider button.submit').click();
    },
  },
  {
    kind: 'order',
    text: 'Put the planets in order',
    answer: async (p) => {
      await arrange(p, PLANETS);
      await p.locator('.v-order button.submit').click();
    },
  },
  {
    kind: 'multi',
    text: 'Which of these are mammals?',
    answer: async (p) => {
      await p.locator('.v-choices button.choice', { hasText: 'Whale' }).click();
      await p.locator('.v-choices button.choice', { hasText: 'Bat' }).click();
      await waitText(p.locator('.v-select .select-hint'), '2 picked');
      await p.locator('.v-select button.submit').click();
    },
  },
  { kind: 'poll', text: 'Which topic should we review next?', answer: (p) => p.getByRole('button', { name: 'Planets' }).click() },
  {
    kind: 'cloud',
    text: "comes to mind for 'energy'",
    answer: async (p) => {
      const box = p.getByRole('textbox');
      await box.fill('Heat');
      await box.press('Enter');
    },
  },
];

test('every quiz question type plays on a phone and a laptop, scored as the quiz says', { timeout: 120000 }, async (t) => {
  await mkdir(SCREENSHOTS, { recursive: true });
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  const code = await hostGame(host, server.url, 'science');
  const phone = await newPage(browser, { viewport: PHONE });
  const laptop = await newPage(browser, { viewport: SMALL_LAPTOP });
  await joinGame(phone, server.url, code, 'Ana');
  await joinGame(laptop, server.url, code, 'Ben');
  await waitText(host.locator('.v-status'), '2 players joined');
  await host.getByRole('button', { name: 'Start' }).click();

  for (const [i, q] of QUESTIONS.entries()) {
    const title = `Question ${i + 1} of ${QUESTIONS.length}`;
    for (const page of [phone, laptop]) {
      await waitText(page.locator('.v-title'), title);
      await waitText(page.locator('.v-text'), q.text);
    }
    await phone.screenshot({ path: path.join(SCREENSHOTS, `quiz-${q.kind}-phone.png`) });
    await laptop.screenshot({ path: path.join(SCREENSHOTS, `quiz-${q.kind}-laptop.png`) });
    for (const page of [phone, laptop]) await q.answer(page);
    if (q.kind === 'cloud') {
      // A word cloud stays open for more words: the host's screen shows it
      // live, then the host reveals it.
      await until(async () => (await host.locator('.v-cloud .cloud-word').allTextContents()).some((w) => w.includes('Heat')), 'Heat in the host\'s cloud');
      await host.screenshot({ path: path.join(SCREENSHOTS, 'quiz-cloud-host-laptop.png') });
      await host.getByRole('button', { name: 'Reveal answer' }).click();
    }
    if (q.kind === 'poll') {
      await until(async () => (await host.locator('.v-bars .bar-value').allTextContents()).includes('2'), 'two votes on the host\'s bars');
      await host.screenshot({ path: path.join(SCREENSHOTS, 'quiz-poll-host-laptop.png') });
    }
    // Both answered: the answer is revealed to everyone.
    await host.getByRole('button', { name: i + 1 === QUESTIONS.length ? 'Show podium' : 'Next question' }).waitFor();
    if (q.kind !== 'poll' && q.kind !== 'cloud') {
      await waitText(phone.locator('.v-banner'), 'Correct!');
      await waitText(laptop.locator('.v-banner'), 'Correct!');
    }
    await phone.screenshot({ path: path.join(SCREENSHOTS, `quiz-${q.kind}-reveal-phone.png`) });
    await host.getByRole('button', { name: i + 1 === QUESTIONS.length ? 'Show podium' : 'Next question' }).click();
  }

  // Six scored questions, all right: the podium has both with six correct.
  await host.locator('#results').waitFor({ state: 'visible' });
  await waitText(host.locator('#results-table'), 'Ana');
  const rows = await host.locator('#results-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.equal(rows.length, 2, JSON.stringify(rows));
  for (const row of rows) assert.equal(row[3], '6', `six correct: ${row}`);
  assert.deepEqual([...host.errors, ...phone.errors, ...laptop.errors], []);
});
