// The question parts of the screen vocabulary (select, slider, order, bars,
// cloud; docs/lua-api.md §11) in real headless Chromium against the real
// server, with the game in fixtures/vocab.lua. A student on a phone operates
// each one; the game echoes the data it received into the banner, and the
// test compares it with what the page sent over the WebSocket.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  classroom, newPage, until, waitText, hostGame, joinGame, PHONE, SCREENSHOTS, REPO,
} from './helpers.mjs';

const VOCAB = await readFile(new URL('./fixtures/vocab.lua', import.meta.url), 'utf8');
const LAPTOP_SHOT = { width: 1280, height: 800 };

/** The actions the page sent, in order: [{name, data}]. */
function sentActions(page) {
  return page.wsLog
    .filter((line) => line.startsWith('-> '))
    .map((line) => JSON.parse(line.slice(3)))
    .filter((f) => f.type === 'action')
    .map((f) => ({ name: f.name, data: f.data }));
}

/** Saves the page at phone and laptop sizes (target/screenshots/NAME-phone.png, -laptop.png). */
async function shots(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  for (const [size, viewport] of [['phone', PHONE], ['laptop', LAPTOP_SHOT]]) {
    await page.setViewportSize(viewport);
    // Layout settles in the next frame after a resize; bars grow to their length.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.evaluate(() => Promise.all(document.getAnimations()
      .filter((a) => a.effect?.getTiming().iterations !== Infinity)
      .map((a) => a.finished)));
    const file = path.join(SCREENSHOTS, `${name}-${size}.png`);
    await page.screenshot({ path: file });
    assert.ok((await stat(file)).size > 5000, `${file} was written`);
    const extra = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(extra <= 0, `${name} at ${size} size: the page is ${extra}px wider than the screen`);
  }
  await page.setViewportSize(PHONE);
}

async function pressedStates(page) {
  return page.locator('.v-choices button.choice').evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-pressed')));
}

async function orderLabels(page) {
  return page.locator('.v-order .order-label').allTextContents();
}

/** The horizontal scale of each bar's fill, from its inline transform. */
async function barScales(page) {
  return page.locator('.v-bars .bar-fill').evaluateAll((fills) =>
    fills.map((f) => Math.round(Number(/scaleX\(([^)]+)\)/.exec(f.style.transform)?.[1]) * 1000) / 1000));
}

async function cloudSizes(page) {
  return page.locator('.v-cloud .cloud-word').evaluateAll((ws) =>
    ws.map((w) => [w.querySelector('.cloud-text').textContent, Number(/size-(\d)/.exec(w.className)?.[1])]));
}

test('select, slider and order worked on a phone send exactly what was picked; bars and cloud follow the counts live', { timeout: 120000 }, async (t) => {
  const { server, browser } = await classroom(t, { extraGames: { 'vocab.lua': VOCAB } });

  const host = await newPage(browser, { viewport: LAPTOP_SHOT });
  const code = await hostGame(host, server.url, 'vocab');
  const ana = await newPage(browser, { viewport: PHONE });
  await joinGame(ana, server.url, code, 'Ana');
  await waitText(ana.locator('.v-text'), 'Wait for the host');
  const bump = async (n) => {
    await host.getByRole('button', { name: 'Bump' }).click();
    await waitText(ana.locator('.v-status'), `Bumps: ${n}`);
  };

  // ---- select: toggle two choices, submit ----------------------------------------
  await host.getByRole('button', { name: 'Show select' }).click();
  await waitText(ana.locator('.v-text'), 'Which of these are planets?');
  const choice = (n) => ana.locator('.v-choices button.choice').nth(n - 1);
  const sendPicks = ana.getByRole('button', { name: 'Send picks' });
  assert.deepEqual(await pressedStates(ana), ['false', 'false', 'false', 'false']);
  assert.equal(await sendPicks.isDisabled(), true, 'nothing picked: Submit waits');
  await choice(3).click();
  assert.deepEqual(await pressedStates(ana), ['false', 'false', 'true', 'false']);
  await waitText(ana.locator('.v-select .select-hint'), 'Pick 2 to 3 (1 picked)');
  assert.equal(await sendPicks.isDisabled(), true, 'one picked, at least two wanted');
  // A patch of the status alone leaves the picks as they are.
  await bump(1);
  assert.deepEqual(await pressedStates(ana), ['false', 'false', 'true', 'false']);
  // Toggling off and on again, by keyboard.
  await choice(2).focus();
  await ana.keyboard.press('Enter');
  await ana.keyboard.press('Space');
  assert.deepEqual(await pressedStates(ana), ['false', 'false', 'true', 'false']);
  await choice(1).click();
  assert.deepEqual(await pressedStates(ana), ['true', 'false', 'true', 'false']);
  await waitText(ana.locator('.v-select .select-hint'), 'Pick 2 to 3 (2 picked)');
  assert.equal(await sendPicks.isEnabled(), true);
  await shots(ana, 'vocab-select');
  await sendPicks.click();
  await waitText(ana.locator('.v-banner'), 'Received: choices=1,3');
  // Read-only after the answer: the picks shown, nothing pressable, no Submit.
  await until(async () => (await ana.locator('.v-choices button.choice:not([disabled])').count()) === 0, 'the choices to be read-only');
  assert.equal(await ana.locator('.v-select').isHidden(), true);
  assert.deepEqual(await ana.locator('.v-choices button.choice').evaluateAll((bs) => bs.map((b) => b.classList.contains('is-selected'))), [true, false, true, false]);
  assert.deepEqual(await pressedStates(ana), [null, null, null, null]);
  assert.deepEqual(sentActions(ana), [{ name: 'answer', data: { choices: [1, 3] } }], 'one action, the choices\' own action not sent');

  // ---- slider: move it, submit ------------------------------------------------
  await host.getByRole('button', { name: 'Show slider' }).click();
  await waitText(ana.locator('.v-text'), 'How many legs does a spider have?');
  const range = ana.getByRole('slider', { name: 'Your answer' });
  assert.equal(await range.inputValue(), '4', 'starts at the view\'s value');
  assert.equal(await ana.locator('.v-slider .slider-value').textContent(), '4 legs');
  await range.fill('10');
  await range.press('ArrowLeft');
  await range.press('ArrowLeft');
  await range.press('ArrowLeft');
  await waitText(ana.locator('.v-slider .slider-value'), /^7 legs$/);
  assert.equal(await range.getAttribute('aria-valuetext'), '7 legs');
  await bump(2);
  assert.equal(await range.inputValue(), '7', 'a status patch leaves the slider where it was moved');
  await ana.getByRole('button', { name: 'More' }).click();
  await waitText(ana.locator('.v-slider .slider-value'), /^8 legs$/);
  await shots(ana, 'vocab-slider');
  await ana.getByRole('button', { name: 'Send guess' }).click();
  await waitText(ana.locator('.v-banner'), 'Received: value=8 (integer)');
  // Read-only: the number sent and the answer marked, no range, no Submit.
  await until(async () => (await ana.getByRole('slider').count()) === 0, 'the slider to be read-only');
  assert.equal(await ana.locator('.v-slider .slider-value').textContent(), '8 legs');
  assert.equal(await ana.locator('.v-slider .slider-answer').textContent(), 'Answer: 8 legs');
  assert.equal(await ana.locator('.v-slider .slider-mark').isVisible(), true);
  assert.equal(await ana.locator('.v-slider button.submit').isHidden(), true);
  await shots(ana, 'vocab-slider-answered');
  assert.deepEqual(sentActions(ana).at(-1), { name: 'guess', data: { value: 8 } });

  // ---- order: up/down by touch and keyboard, submit -----------------------------
  await host.getByRole('button', { name: 'Show order' }).click();
  await waitText(ana.locator('.v-text'), 'Oldest first');
  assert.deepEqual(await orderLabels(ana), ['Steam engine', 'Wheel', 'Internet', 'Printing press']);
  assert.equal(await ana.getByRole('button', { name: 'Move Steam engine up' }).isDisabled(), true);
  assert.equal(await ana.getByRole('button', { name: 'Move Printing press down' }).isDisabled(), true);
  await ana.getByRole('button', { name: 'Move Wheel up' }).click();
  assert.deepEqual(await orderLabels(ana), ['Wheel', 'Steam engine', 'Internet', 'Printing press']);
  // At the top, the focus goes to the same row's other button.
  assert.equal(await ana.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Move Wheel down');
  await bump(3);
  assert.deepEqual(await orderLabels(ana), ['Wheel', 'Steam engine', 'Internet', 'Printing press'], 'a status patch keeps the order being arranged');
  // By keyboard: the focus stays on the row that moved.
  await ana.getByRole('button', { name: 'Move Printing press up' }).focus();
  await ana.keyboard.press('Enter');
  assert.equal(await ana.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Move Printing press up');
  assert.deepEqual(await orderLabels(ana), ['Wheel', 'Steam engine', 'Printing press', 'Internet']);
  assert.deepEqual(await ana.locator('.v-order .order-place').allTextContents(), ['1', '2', '3', '4']);
  await shots(ana, 'vocab-order');
  await ana.getByRole('button', { name: 'Send order' }).click();
  // Indexes into the items as shown (Steam engine, Wheel, Internet, Printing press).
  await waitText(ana.locator('.v-banner'), 'Received: order=2,1,4,3');
  assert.deepEqual(sentActions(ana).at(-1), { name: 'order', data: { order: [2, 1, 4, 3] } });
  // Read-only: in the order sent, marked right and wrong, no move buttons.
  await until(async () => (await ana.locator('.v-order .order-move:visible').count()) === 0, 'the order to be read-only');
  assert.deepEqual(await orderLabels(ana), ['Wheel', 'Steam engine', 'Printing press', 'Internet']);
  assert.deepEqual(await ana.locator('.v-order .order-item').evaluateAll((li) => li.map((l) => l.className)),
    ['order-item is-correct', 'order-item is-wrong', 'order-item is-wrong', 'order-item is-correct']);
  assert.equal(await ana.locator('.v-order .order-state').first().getAttribute('aria-label'), 'correct answer');
  assert.deepEqual(await ana.locator('.v-order .order-detail:visible').allTextContents(), ['belongs 3', 'belongs 2']);
  await shots(ana, 'vocab-order-answered');

  // ---- bars: live counts, the same elements updated in place ------------------------
  await host.getByRole('button', { name: 'Show bars' }).click();
  for (const page of [ana, host]) {
    await waitText(page.locator('.v-text'), 'What the class answered');
    assert.deepEqual(await page.locator('.v-bars .bar-label').allTextContents(), ['Mars', 'Moon', 'Venus', 'Sun']);
    assert.deepEqual(await page.locator('.v-bars .bar-value').allTextContents(), ['3', '1', '2', '0']);
  }
  assert.deepEqual(await barScales(ana), [1, 0.333, 0.667, 0]);
  assert.deepEqual(await ana.locator('.v-bars .bar').evaluateAll((li) => li.map((l) => l.classList.contains('is-correct'))), [true, false, true, false]);
  assert.deepEqual(await ana.locator('.v-bars .bar-detail').allTextContents(), ['3 votes', '1 vote', '2 votes', '0 votes']);
  await ana.evaluate(() => { window.barsBefore = [...document.querySelectorAll('.v-bars .bar-fill')]; });
  await host.getByRole('button', { name: 'More votes' }).click();
  await waitText(ana.locator('.v-bars .bar-value').first(), /^8$/);
  assert.deepEqual(await ana.locator('.v-bars .bar-value').allTextContents(), ['8', '1', '2', '1']);
  assert.deepEqual(await barScales(ana), [1, 0.125, 0.25, 0.125]);
  assert.equal(await ana.evaluate(() => [...document.querySelectorAll('.v-bars .bar-fill')].every((f, i) => f === window.barsBefore[i])), true,
    'the bars are updated in place, not drawn anew');
  await shots(ana, 'vocab-bars');
  await shots(host, 'vocab-bars-host');

  // ---- cloud: sized by count, text only, live ----------------------------------------
  await host.getByRole('button', { name: 'Show cloud' }).click();
  await waitText(ana.locator('.v-text'), 'One word for today');
  assert.deepEqual(await cloudSizes(ana), [['sunny', 5], ['rain', 2], ['<b>fog</b>', 3]]);
  assert.equal(await ana.locator('.v-cloud b').count(), 0, 'a word with markup is text');
  await host.getByRole('button', { name: 'More words' }).click();
  await until(async () => (await ana.locator('.v-cloud .cloud-word').count()) === 4, 'the new word');
  assert.deepEqual(await cloudSizes(ana), [['sunny', 3], ['rain', 5], ['<b>fog</b>', 2], ['windy', 1]]);
  await shots(ana, 'vocab-cloud');

  for (const page of [host, ana]) {
    assert.deepEqual(page.errors, [], 'no script errors in the page');
    assert.deepEqual(page.dialogs, []);
  }
});

test('render.js on its own: the question parts start afresh on a new question, one pick replaces the other, wrong types are not drawn', { timeout: 60000 }, async (t) => {
  const { server, browser } = await classroom(t);
  const page = await newPage(browser, { viewport: PHONE });
  await page.goto(`${server.url}/`);
  await page.evaluate(async () => {
    const { createRenderer } = await import('/render.js');
    const root = document.createElement('div');
    root.id = 'probe';
    document.body.prepend(root);
    window.sent = [];
    window.said = [];
    window.r = createRenderer(root, {
      onAction: (name, data) => { window.sent.push({ name, data }); },
      announce: (text) => window.said.push(text),
    });
  });
  // The page draws the vocabulary in the order of src/script/vocabulary.rs
  // (less the keys that only modify another: image_alt, kick, rename).
  const rust = await readFile(path.join(REPO, 'src', 'script', 'vocabulary.rs'), 'utf8');
  const viewKeys = [.../pub const VIEW_KEYS: &\[&str\] = &\[([^\]]*)\]/.exec(rust)[1].matchAll(/"([a-z_]+)"/g)]
    .map((m) => m[1])
    .filter((k) => k !== 'image_alt' && k !== 'kick' && k !== 'rename');
  assert.deepEqual(await page.evaluate(async () => (await import('/render.js')).KEYS), viewKeys);
  const update = (view) => page.evaluate((v) => window.r.update(v), view);
  const sent = () => page.evaluate(() => window.sent.splice(0));
  const probe = page.locator('#probe');
  const choices = (labels) => labels.map((label) => ({ label, action: 'pick' }));
  const pressed = () => probe.locator('.v-choices button.choice').evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-pressed')));

  // One to pick: a new pick replaces the old one; Submit sends one position.
  await update({ title: 'Q1', text: 'Pick one', choices: choices(['A', 'B', 'C']), select: { action: 'answer', max: 1 } });
  await probe.locator('.v-choices button.choice').nth(0).click();
  await probe.locator('.v-choices button.choice').nth(2).click();
  assert.deepEqual(await pressed(), ['false', 'false', 'true']);
  assert.equal(await probe.locator('.select-hint').textContent(), 'Pick 1 (1 picked)');
  await probe.getByRole('button', { name: 'Submit' }).click();
  assert.deepEqual(await sent(), [{ name: 'answer', data: { choices: [3] } }]);

  // A patch that changes only the choices' details keeps the pick; a new question clears it.
  await update({ title: 'Q1', text: 'Pick one', choices: choices(['A', 'B', 'C']).map((c) => ({ ...c, detail: 'x' })), select: { action: 'answer', max: 1 } });
  assert.deepEqual(await pressed(), ['false', 'false', 'true']);
  await update({ title: 'Q2', text: 'Pick one', choices: choices(['A', 'B', 'C']), select: { action: 'answer', max: 1 } });
  assert.deepEqual(await pressed(), ['false', 'false', 'false']);
  assert.equal(await probe.getByRole('button', { name: 'Submit' }).isDisabled(), true);

  // More than max picked: Submit waits, the hint says why.
  await update({ title: 'Q3', text: 'Pick two', choices: choices(['A', 'B', 'C', 'D']), select: { action: 'answer', min: 2, max: 2 } });
  for (const n of [0, 1, 3]) await probe.locator('.v-choices button.choice').nth(n).click();
  assert.equal(await probe.getByRole('button', { name: 'Submit' }).isDisabled(), true);
  assert.equal(await probe.locator('.select-hint').textContent(), 'Pick 2 (3 picked)');
  await probe.locator('.v-choices button.choice').nth(1).click();
  await probe.getByRole('button', { name: 'Submit' }).click();
  assert.deepEqual(await sent(), [{ name: 'answer', data: { choices: [1, 4] } }]);
  // Without select the same buttons send their own action again.
  await update({ title: 'Q3', text: 'Pick two', choices: [{ label: 'A', action: 'pick', data: { choice: 1 } }] });
  assert.deepEqual(await pressed(), [null]);
  await probe.locator('.v-choices button.choice').nth(0).click();
  assert.deepEqual(await sent(), [{ name: 'pick', data: { choice: 1 } }]);

  // Order and slider: kept while the question stays, fresh on a new one.
  const items = [{ label: 'One' }, { label: 'Two' }, { label: 'Three' }];
  await update({ title: 'Q4', text: 'Order', order: { action: 'order', items } });
  await probe.getByRole('button', { name: 'Move Three up' }).click();
  await update({ title: 'Q4', text: 'Order', status: '3 answered', order: { action: 'order', items } });
  assert.deepEqual(await probe.locator('.order-label').allTextContents(), ['One', 'Three', 'Two']);
  assert.deepEqual(await page.evaluate(() => window.said.at(-1)), 'Three: place 2 of 3');
  await probe.getByRole('button', { name: 'Submit' }).click();
  assert.deepEqual(await sent(), [{ name: 'order', data: { order: [1, 3, 2] } }]);
  await update({ title: 'Q5', text: 'Order', order: { action: 'order', items } });
  assert.deepEqual(await probe.locator('.order-label').allTextContents(), ['One', 'Two', 'Three']);

  await update({ title: 'Q6', slider: { action: 'guess', min: 0, max: 1, step: 0.1 } });
  const range = probe.getByRole('slider');
  assert.equal(await range.inputValue(), '0.5', 'no value: the middle');
  await range.press('ArrowRight');
  await range.press('ArrowRight');
  assert.equal(await probe.locator('.slider-value').textContent(), '0.7');
  await update({ title: 'Q6', status: 'hurry', slider: { action: 'guess', min: 0, max: 1, step: 0.1 } });
  assert.equal(await range.inputValue(), '0.7');
  await probe.getByRole('button', { name: 'Submit' }).click();
  assert.deepEqual(await sent(), [{ name: 'guess', data: { value: 0.7 } }]);
  await update({ title: 'Q7', slider: { action: 'guess', min: 0, max: 1, step: 0.1, value: 0.2 } });
  assert.equal(await range.inputValue(), '0.2');

  // Values of the wrong type are not drawn; strings stay text.
  await update({
    title: 'Q8',
    select: { action: 'answer' },
    slider: { action: 'guess', min: '0', max: 10 },
    order: { action: 'order', items: 'One, Two' },
    bars: 'lots',
    cloud: { text: 'sun' },
  });
  for (const key of ['select', 'slider', 'order', 'bars', 'cloud']) {
    assert.equal(await probe.locator(`.v-${key}`).isHidden(), true, `${key} of the wrong type is not drawn`);
  }
  await update({
    title: 'Q9',
    bars: [{ label: '<i>A</i>', value: 'many' }, 'junk', { label: 'B', value: 2 }],
    cloud: [{ text: '<img src=x onerror=alert(1)>', count: 3 }, { text: 5, count: 1 }, { text: { no: 1 }, count: 9 }, { count: 2 }],
  });
  assert.deepEqual(await probe.locator('.bar-label').allTextContents(), ['<i>A</i>', 'B']);
  assert.deepEqual(await probe.locator('.bar-value').allTextContents(), ['', '2']);
  assert.deepEqual(await probe.locator('.cloud-text').allTextContents(), ['<img src=x onerror=alert(1)>', '5']);
  assert.equal(await probe.locator('img, i').count(), 0);
  assert.deepEqual(page.errors, []);
  assert.deepEqual(page.dialogs, []);
});
