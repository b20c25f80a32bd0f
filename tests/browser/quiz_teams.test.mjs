// The quiz in teams on the real pages (games/quiz.lua, "Teams"): the host
// sets the teams in the quiz card's Settings, or lets students pick their
// team in the lobby (team_choice, in the Advanced JSON); students on phones
// and one on a laptop are put in teams, answer, and the team leaderboard
// (each team's score the average of its members', rounded down) and the
// team podium are shown to everyone. Screenshots of each screen at phone
// and laptop sizes.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  classroom, newPage, waitText, joinGame, until, screenshots, leaderboardRows, podiumPlaces, PHONE,
  SMALL_LAPTOP,
} from './helpers.mjs';

const QUESTIONS = [{ text: 'What is 2 + 2?', choices: ['3', '4', '5'], answer: 2 }];

/** Starts the quiz from its card with the Settings `settings` (label → value) and the Advanced JSON `params`. */
async function hostQuiz(host, url, settings, params) {
  await host.goto(`${url}/host`);
  const card = host.locator('li.game[data-game="quiz"]');
  await card.locator('.game-settings summary').click();
  for (const [label, value] of Object.entries(settings)) await card.getByLabel(label, { exact: true }).fill(value);
  await host.locator('#advanced summary').click();
  await host.getByLabel('Game parameters (JSON)').fill(JSON.stringify(params));
  await card.locator('button.start').click();
  await host.locator('#join-code').waitFor({ state: 'visible' });
  return until(() => host.locator('#join-code').getAttribute('data-code').then((c) => /^\d{6}$/.test(c ?? '') && c), 'a join code');
}

/** The host's list of players: name → detail ("Red", "987 pts", ...). */
async function roster(host) {
  const rows = await host.locator('#players-slot .player').evaluateAll((lis) => lis.map((li) => [
    li.querySelector('.player-name').textContent, li.querySelector('.player-detail').textContent,
  ]));
  return Object.fromEntries(rows);
}

/** Each team's score by the quiz's rule: the members' average, rounded down. */
function teamScores(points, teamOf) {
  const sums = {};
  const members = {};
  for (const [name, p] of Object.entries(points)) {
    const team = teamOf[name];
    sums[team] = (sums[team] ?? 0) + p;
    members[team] = (members[team] ?? 0) + 1;
  }
  return Object.fromEntries(Object.keys(sums).map((team) => [team, Math.floor(sums[team] / members[team])]));
}

/** The points a student's reveal banner gives (0 when wrong). */
async function bannerPoints(page, right) {
  const text = await waitText(page.locator('.v-banner'), right ? /^✓ Correct! \+\d+ points?$/ : 'Not quite: the answer was 4');
  const m = text.match(/\+(\d+) point/);
  return m ? Number(m[1]) : 0;
}

test('teams from the Settings: students are balanced into teams, the team board is the members\' average rounded down, then the team podium', { timeout: 60000 }, async (t) => {
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  const code = await hostQuiz(host, server.url, { Teams: '2', 'Seconds per question': '60' }, { questions: QUESTIONS, title: 'Team quiz' });
  await waitText(host.locator('.v-title'), 'Team quiz');

  // Four on phones, one on a laptop; each goes into the smallest team as
  // they join (ties: the first), so Red, Blue, Red, Blue, Red.
  const names = ['Ana', 'Ben', 'Cy', 'Dee', 'Eve'];
  const want = { Ana: 'Red', Ben: 'Blue', Cy: 'Red', Dee: 'Blue', Eve: 'Red' };
  const pages = {};
  for (const name of names) {
    pages[name] = await newPage(browser, { viewport: name === 'Eve' ? SMALL_LAPTOP : PHONE });
    await joinGame(pages[name], server.url, code, name);
  }
  for (const name of names) {
    await waitText(pages[name].locator('.v-text'), `You're in, ${name}! Watch the main screen: the quiz starts soon. You are on team ${want[name]}.`);
    assert.equal(await pages[name].locator('.v-choices').isVisible(), false, 'no team to pick without team_choice');
  }
  await waitText(host.locator('.v-status'), '5 players joined');
  assert.deepEqual(await roster(host), want, 'the host\'s list shows each student\'s team');
  await screenshots(host, 'host-teams-lobby', { show: '#players-slot' });
  await screenshots(pages.Ana, 'player-teams-lobby', { laptop: pages.Eve });

  await host.getByRole('button', { name: 'Start' }).click();
  await waitText(pages.Ana.locator('.v-title'), 'Question 1 of 1');
  await screenshots(host, 'host-team-question');
  // Ana, Ben and Dee right; Cy and Eve wrong.
  const right = { Ana: true, Ben: true, Cy: false, Dee: true, Eve: false };
  for (const name of names) {
    await pages[name].getByRole('button', { name: right[name] ? '4' : '3', exact: true }).click();
  }

  // Everyone answered: the reveal. Each student's points, from their banner
  // and from the host's list.
  const points = {};
  for (const name of names) points[name] = await bannerPoints(pages[name], right[name]);
  for (const name of names.filter((n) => right[n])) assert.ok(points[name] >= 500 && points[name] <= 1000, `${name}: ${points[name]}`);
  await waitText(host.locator('.v-status'), '3 of 5 players got it right');
  const details = await roster(host);
  for (const name of names) assert.equal(details[name], `${points[name]} pts`, `the host's list: ${name}`);

  const teams = teamScores(points, want);
  assert.equal(teams.Red, Math.floor(points.Ana / 3), 'Red: Ana\'s points over 3 members (Cy and Eve scored 0)');
  const order = ['Red', 'Blue'].sort((a, b) => teams[b] - teams[a]);
  const board = (viewerTeam) => order.map((team, i) => ({
    rank: i === 1 && teams[order[0]] === teams[team] ? 1 : i + 1,
    name: team,
    score: teams[team],
    me: team === viewerTeam,
  }));

  // The host's board is the teams', nobody highlighted.
  await until(async () => (await leaderboardRows(host)).length === 2, 'the host\'s team board');
  assert.deepEqual(await leaderboardRows(host), board(null), `points ${JSON.stringify(points)}`);
  await screenshots(host, 'host-team-board', { show: '.v-leaderboard' });
  // Each student's board is the teams', their own team highlighted, and
  // their status says where their team is.
  for (const name of names) {
    assert.deepEqual(await leaderboardRows(pages[name]), board(want[name]), name);
    const teamRank = board(null).find((r) => r.name === want[name]).rank;
    await waitText(pages[name].locator('.v-status'), new RegExp(`${want[name]} is ${teamRank === 1 ? '1st' : '2nd'} of 2 teams$`));
  }
  await waitText(pages.Ana.locator('.v-leaderboard tr[aria-current] .you'), '(you)');
  await screenshots(pages.Ana, 'player-team-board', { laptop: pages.Eve, show: '.v-leaderboard' });

  // The podium: the teams on top (for everyone), the students' board below
  // on a student's screen, the top players on the host's.
  await host.getByRole('button', { name: 'Show podium' }).click();
  await host.locator('#results').waitFor({ state: 'visible' });
  await waitText(host.locator('.v-title'), 'Team quiz: final results');
  const teamPodium = order.map((team) => ({ name: team, score: teams[team] }));
  assert.deepEqual(await podiumPlaces(host), teamPodium);
  const ranked = [...names].sort((a, b) => points[b] - points[a] || a.localeCompare(b));
  await waitText(host.locator('.v-status'), `Top players: ${ranked.slice(0, 3).map((n) => `${n} ${points[n]}`).join(', ')}. The quiz is over.`);
  await screenshots(host, 'host-team-podium');
  for (const name of ['Ana', 'Eve']) {
    const page = pages[name];
    // Equal scores share a place (Cy and Eve: 4th).
    const place = 1 + names.filter((n) => points[n] > points[name]).length;
    await waitText(page.locator('.v-banner'), `You finished ${['1st', '2nd', '3rd', '4th', '5th'][place - 1]} of 5 with ${points[name]} points!`);
    assert.deepEqual(await podiumPlaces(page), teamPodium, name);
    const mine = (await leaderboardRows(page)).find((r) => r.me);
    assert.deepEqual([mine?.name, mine?.score], [name, points[name]], `${name}'s own row below the team podium`);
  }
  await screenshots(pages.Ana, 'player-team-podium', { laptop: pages.Eve });

  // The results have each student's team.
  const rows = await host.locator('#results-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  const header = await host.locator('#results-table thead th').allTextContents();
  const col = (c) => header.indexOf(c);
  assert.ok(col('team') > 0, `a team column: ${header}`);
  assert.deepEqual(Object.fromEntries(rows.map((r) => [r[col('name')], r[col('team')]])), want);
  assert.deepEqual([host, ...Object.values(pages)].flatMap((p) => p.errors), []);
});

test('team_choice: students pick a team in the lobby (never more than 1 apart), who did not pick is put in the smallest at Start', { timeout: 60000 }, async (t) => {
  const { server, browser } = await classroom(t);

  const host = await newPage(browser, { viewport: SMALL_LAPTOP });
  const code = await hostQuiz(host, server.url, {}, { questions: QUESTIONS, time_limit: 60, teams: ['Lions', 'Tigers'], team_choice: true });

  const ana = await newPage(browser, { viewport: PHONE });
  const ben = await newPage(browser, { viewport: PHONE });
  const cy = await newPage(browser, { viewport: SMALL_LAPTOP });
  const dee = await newPage(browser, { viewport: PHONE });
  const pages = { Ana: ana, Ben: ben, Cy: cy, Dee: dee };
  for (const [name, page] of Object.entries(pages)) await joinGame(page, server.url, code, name);

  /** The team buttons a student sees: label → [detail, selected]. */
  const buttons = (page) => page.locator('.v-choices button').evaluateAll((bs) => Object.fromEntries(bs.map((b) => [
    b.querySelector('.btn-label').textContent,
    [b.querySelector('.btn-detail').textContent, b.classList.contains('is-selected')],
  ])));
  const sizes = (lions, tigers, mine) => ({
    Lions: [`${lions} ${lions === 1 ? 'player' : 'players'}`, mine === 'Lions'],
    Tigers: [`${tigers} ${tigers === 1 ? 'player' : 'players'}`, mine === 'Tigers'],
  });

  await waitText(ana.locator('.v-text'), "You're in, Ana! Watch the main screen: the quiz starts soon. Pick your team.");
  assert.deepEqual(await buttons(ana), sizes(0, 0, null));
  await waitText(host.locator('.v-status'), '4 players joined');
  assert.deepEqual(await roster(host), { Ana: 'no team yet', Ben: 'no team yet', Cy: 'no team yet', Dee: 'no team yet' });

  await ana.getByRole('button', { name: /^Tigers/ }).click();
  await waitText(ana.locator('.v-text'), 'You are on team Tigers.');
  await until(async () => JSON.stringify(await buttons(ana)) === JSON.stringify(sizes(0, 1, 'Tigers')), 'Ana\'s Tigers button selected, with 1 player');
  // Every student's buttons show the sizes live.
  await until(async () => JSON.stringify(await buttons(ben)) === JSON.stringify(sizes(0, 1, null)), 'Ben sees Tigers with 1 player');

  // Tigers 1, Lions 0: Ben may not make it 2 to 0.
  await ben.getByRole('button', { name: /^Tigers/ }).click();
  await waitText(ben.locator('#action-error'), 'Tigers has 1 player and Lions 0: pick a smaller team (teams may differ by at most 1)');
  await waitText(ben.locator('.v-text'), 'Pick your team.');
  await ben.getByRole('button', { name: /^Lions/ }).click();
  await waitText(ben.locator('.v-text'), 'You are on team Lions.');
  // 1 and 1: Cy may make it 2 to 1.
  await cy.getByRole('button', { name: /^Tigers/ }).click();
  await waitText(cy.locator('.v-text'), 'You are on team Tigers.');
  await until(async () => JSON.stringify(await buttons(dee)) === JSON.stringify(sizes(1, 2, null)), 'Dee sees Lions 1, Tigers 2');
  await until(async () => JSON.stringify(await roster(host)) === JSON.stringify({ Ana: 'Tigers', Ben: 'Lions', Cy: 'Tigers', Dee: 'no team yet' }), 'the host\'s list with the teams picked');
  // Tigers 2, Lions 1: Tigers is full for Dee.
  await dee.getByRole('button', { name: /^Tigers/ }).click();
  await waitText(dee.locator('#action-error'), 'Tigers has 2 players and Lions 1: pick a smaller team (teams may differ by at most 1)');
  // Dee has not picked (phone); Cy has (laptop).
  await screenshots(dee, 'player-team-choice', { laptop: cy });
  await screenshots(host, 'host-team-choice-lobby', { show: '#players-slot' });

  // Dee did not pick: at Start she goes into the smallest team, Lions.
  await host.getByRole('button', { name: 'Start' }).click();
  await waitText(dee.locator('.v-title'), 'Question 1 of 1');
  const want = { Ana: 'Tigers', Ben: 'Lions', Cy: 'Tigers', Dee: 'Lions' };
  const right = { Ana: true, Ben: true, Cy: false, Dee: true };
  for (const [name, page] of Object.entries(pages)) await page.getByRole('button', { name: right[name] ? '4' : '3', exact: true }).click();
  const points = {};
  for (const [name, page] of Object.entries(pages)) points[name] = await bannerPoints(page, right[name]);
  const teams = teamScores(points, want);
  assert.equal(teams.Tigers, Math.floor(points.Ana / 2));
  assert.equal(teams.Lions, Math.floor((points.Ben + points.Dee) / 2));
  for (const [name, page] of Object.entries(pages)) {
    const rows = await leaderboardRows(page);
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.name, r.score])), teams, `${name}'s team board, points ${JSON.stringify(points)}`);
    assert.deepEqual(rows.filter((r) => r.me).map((r) => r.name), [want[name]], `${name}'s own team is highlighted`);
  }
  await waitText(dee.locator('.v-status'), /Lions is (1st|2nd) of 2 teams$/);
  assert.deepEqual([host, ...Object.values(pages)].flatMap((p) => p.errors), []);
});
