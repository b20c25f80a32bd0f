// Generated names and the host's Rename on the real pages: the host ticks
// "Students get generated names" and starts a quiz; each student types their
// real name and is shown an adjective and an animal from names/*.txt
// instead (on their own screen and the host's); the host renames one from
// the player list and the student's screen follows; a taken name is refused
// with the reason; the results keep the typed name in their real_name column.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import {
  classroom, newPage, waitText, joinGame, until, screenshots, REPO, PHONE, SMALL_LAPTOP,
} from './helpers.mjs';

/** The words of a names/*.txt list. */
async function words(file) {
  const text = await readFile(path.join(REPO, 'names', file), 'utf8');
  return new Set(text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
}

/** Answers the next prompt on `page` with `answer` (instead of the helpers' dismissing it); resolves to its message. */
function answerPrompt(page, answer) {
  page.removeAllListeners('dialog');
  return new Promise((resolve) => {
    page.once('dialog', async (d) => {
      page.dialogs.push(d.message());
      await d.accept(answer);
      page.on('dialog', (next) => { page.dialogs.push(next.message()); next.dismiss().catch(() => {}); });
      resolve(d.message());
    });
  });
}

const players = (host) => host.locator('#players-slot .player .player-name').allTextContents();

test('generated names: students see an adjective and an animal, not what they typed; the host renames one and their screen follows', { timeout: 60000 }, async (t) => {
  const [adjectives, animals] = await Promise.all([words('adjectives.txt'), words('animals.txt')]);
  assert.ok(adjectives.size > 10 && animals.size > 10, 'the shipped lists');
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  await host.goto(`${server.url}/host`);
  await host.getByLabel('Students get generated names').check();
  await host.locator('#advanced summary').click();
  await host.getByLabel('Game parameters (JSON)').fill(JSON.stringify({
    title: 'Names quiz', time_limit: 60, questions: [{ text: 'What is 2 + 2?', choices: ['3', '4', '5'], answer: 2 }],
  }));
  await host.locator('li.game[data-game="quiz"] button.start').click();
  await host.locator('#join-code').waitFor({ state: 'visible' });
  const code = await until(() => host.locator('#join-code').getAttribute('data-code').then((c) => /^\d{6}$/.test(c ?? '') && c), 'a join code');

  const ana = await newPage(browser, { viewport: PHONE });
  const ben = await newPage(browser, { viewport: SMALL_LAPTOP });
  const typed = { ana: 'Ana Lopez', ben: 'Ben Okafor' };
  await joinGame(ana, server.url, code, typed.ana);
  await joinGame(ben, server.url, code, typed.ben);
  const shown = {};
  for (const [who, page] of [['ana', ana], ['ben', ben]]) {
    const name = await waitText(page.locator('#me'), /\S/);
    shown[who] = name;
    assert.notEqual(name, typed[who], 'not the typed name');
    assert.match(name, /^[A-Z][a-z]+ [A-Z][a-z]+$/, 'an adjective and an animal');
    const [adjective, animal] = name.split(' ');
    assert.ok(adjectives.has(adjective), `${adjective} is in names/adjectives.txt`);
    assert.ok(animals.has(animal), `${animal} is in names/animals.txt`);
    await waitText(page.locator('.v-text'), `You're in, ${name}! Watch the main screen`);
    assert.equal(await page.title(), `Recess: ${name}`);
    assert.ok(!(await page.locator('body').innerText()).includes(typed[who]), 'the typed name is nowhere on the student\'s screen');
  }
  assert.notEqual(shown.ana, shown.ben, 'unique in the session');
  await until(async () => (await players(host)).length === 2, 'two players on the host\'s list');
  assert.deepEqual(await players(host), [shown.ana, shown.ben], 'the host sees the generated names');
  assert.ok(!(await host.locator('body').innerText()).includes('Lopez'), 'and not the typed ones');
  await screenshots(ana, 'player-generated-name', { laptop: ben });
  await screenshots(host, 'host-generated-names');

  // The host renames Ana (a prompt with her current name in it).
  const asked = answerPrompt(host, 'Ana B');
  await host.getByRole('button', { name: `Rename ${shown.ana}` }).click();
  assert.equal(await asked, `New name for ${shown.ana}:`);
  await waitText(ana.locator('#me'), /^Ana B$/);
  await waitText(ana.locator('.v-text'), "You're in, Ana B! Watch the main screen");
  await until(async () => (await players(host))[0] === 'Ana B', 'Ana B on the host\'s list');
  assert.deepEqual(await players(host), ['Ana B', shown.ben]);
  await waitText(ben.locator('#me'), new RegExp(`^${shown.ben}$`));

  // A name someone has is refused, with the reason, and nothing changes.
  const again = answerPrompt(host, 'ana b');
  await host.getByRole('button', { name: `Rename ${shown.ben}` }).click();
  await again;
  await waitText(host.locator('#action-error'), 'the name "ana b" is already taken in this game');
  assert.deepEqual(await players(host), ['Ana B', shown.ben]);
  await waitText(ben.locator('#me'), new RegExp(`^${shown.ben}$`));
  await screenshots(host, 'host-rename', { show: '#players-slot' });
  await screenshots(ana, 'player-renamed');

  // Played to the end: the board uses the new name, the results keep the typed one (private to the host).
  await host.getByRole('button', { name: 'Start' }).click();
  await ana.getByRole('button', { name: '4', exact: true }).click();
  await ben.getByRole('button', { name: '3', exact: true }).click();
  await waitText(ana.locator('.v-banner'), 'Correct!');
  await until(async () => (await ben.locator('.v-leaderboard td.name').allTextContents()).includes('Ana B'), 'Ana B on Ben\'s board');
  await host.getByRole('button', { name: 'Show podium' }).click();
  await host.locator('#results').waitFor({ state: 'visible' });
  const header = await host.locator('#results-table thead th').allTextContents();
  const rows = await host.locator('#results-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  const byName = Object.fromEntries(rows.map((r) => [r[header.indexOf('name')], r[header.indexOf('real_name')]]));
  assert.deepEqual(byName, { 'Ana B': typed.ana, [shown.ben]: typed.ben }, `results ${JSON.stringify(rows)}`);
  assert.ok(!(await ben.locator('body').innerText()).includes('Lopez'), 'a student never sees another\'s typed name');
  assert.deepEqual([...host.errors, ...ana.errors, ...ben.errors], []);
});
