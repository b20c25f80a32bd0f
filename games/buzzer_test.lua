-- Tests of buzzer.lua: the rules as docs/lua-api.md §16 states them.
-- Run them with `recess test games` (or `recess test games/buzzer_test.lua`).

-- A buzzer game with a student for each name in `names`, all joined in the
-- lobby.
local function game(names, params)
  local s = session("buzzer", params)
  local students = {}
  for i, name in ipairs(names) do
    local p, why = s:join(name)
    expect(why).to_be_nil()
    students[i] = p
  end
  return s, table.unpack(students)
end

local function ok(s, p, name, data)
  local done, why = s:act(p, name, data)
  expect(why).to_be_nil()
  expect(done).to_be(true)
end

local function refused(s, p, name, data, reason)
  local done, why = s:act(p, name, data)
  expect(done).to_be(false)
  expect(why).to_be(reason)
end

-- A game already on question 1.
local function started(names, params)
  local s, a, b, c, d, e = game(names, params)
  ok(s, s.host, "start")
  return s, a, b, c, d, e
end

local function scores(s)
  local list = {}
  for _, row in ipairs(s:view(s.host).leaderboard or {}) do list[#list + 1] = { row.name, row.score } end
  return list
end

-- Who buzzes first -----------------------------------------------------------

test("the first buzz to reach the server answers, and everyone sees the line", function()
  local s, ana, ben, cy, dee, eve = started({ "Ana", "Ben", "Cy", "Dee", "Eve" })
  for _, p in ipairs({ ben, dee, ana, eve, cy }) do ok(s, p, "buzz") end
  local host = s:view(s.host)
  expect(host.banner.text).to_be("Ben is answering")
  expect(host.status).to_be("Next in line: Dee, Ana, Eve and 1 more")
  expect(host.buttons[1]).to_equal({ label = "Right: +100 for Ben", action = "right", style = "correct" })
  expect(host.buttons[2]).to_equal({ label = "Wrong", action = "wrong", style = "wrong" })
  expect(s:view(ben).banner).to_equal({ text = "You buzzed first! Answer out loud", style = "correct" })
  expect(s:view(ben).choices).to_equal({ { label = "You are answering", style = "disabled" } })
  expect(s:view(dee).banner.text).to_be("Ben is answering")
  expect(s:view(dee).choices).to_equal({ { label = "You are 2nd in line", style = "disabled" } })
  expect(s:view(cy).choices[1].label).to_be("You are 5th in line")
  expect(s:view(cy).status).to_be("Next in line: Dee, Ana, Eve and 1 more")
  local buzzes = {}
  for _, e in ipairs(s:events(s.host, "buzz")) do buzzes[#buzzes + 1] = e.data end
  expect(buzzes).to_equal({
    { name = "Ben", place = 1 }, { name = "Dee", place = 2 }, { name = "Ana", place = 3 },
    { name = "Eve", place = 4 }, { name = "Cy", place = 5 },
  })
end)

test("a second buzz is refused with the student's place, and the line does not change", function()
  local s, ana, ben = started({ "Ana", "Ben" })
  ok(s, ana, "buzz")
  ok(s, ben, "buzz")
  refused(s, ana, "buzz", nil, "you buzzed first: answer now")
  refused(s, ben, "buzz", nil, "you are already in line (2nd)")
  expect(#s:events(s.host, "buzz")).to_be(2)
end)

test("a student who has not buzzed has one big BUZZ button", function()
  local s, ana = started({ "Ana" })
  local view = s:view(ana)
  expect(view.choices).to_equal({ { label = "BUZZ!", action = "buzz" } })
  expect(view.title).to_be("Question 1")
  expect(view.score).to_be(0)
end)

-- Right and wrong -------------------------------------------------------------

test("right gives the one answering 100 points and closes the question", function()
  local s, ana, ben = started({ "Ana", "Ben" })
  ok(s, ana, "buzz")
  ok(s, ben, "buzz")
  ok(s, s.host, "right")
  expect(s:view(ana).score).to_be(100)
  expect(s:view(ben).score).to_be(0)
  expect(s:view(ana).banner).to_equal({ text = "Right! +100 points", style = "correct" })
  expect(s:view(ben).banner).to_equal({ text = "Ana got it right" })
  expect(s:view(s.host).phase).to_be("answered")
  refused(s, ben, "buzz", nil, "this question is answered: wait for the next one")
  refused(s, s.host, "right", nil, "this question is already answered: press Next question")
  expect(scores(s)).to_equal({ { "Ana", 100 }, { "Ben", 0 } })
  expect(s:events(ben, "answer")[1].data).to_equal({ name = "Ana", right = true, points = 100 })
end)

test("params.points changes the points for a right answer", function()
  local s, ana = started({ "Ana" }, { points = 250 })
  ok(s, ana, "buzz")
  expect(s:view(s.host).buttons[1].label).to_be("Right: +250 for Ana")
  ok(s, s.host, "right")
  expect(s:view(ana).score).to_be(250)
end)

test("wrong locks that student out of the question and the next in line answers", function()
  local s, ana, ben, cy = started({ "Ana", "Ben", "Cy" })
  ok(s, ana, "buzz")
  ok(s, ben, "buzz")
  ok(s, s.host, "wrong")
  expect(s:view(s.host).banner.text).to_be("Ben is answering")
  expect(s:view(ana).banner).to_equal({ text = "Not this time: wait for the next question", style = "wrong" })
  refused(s, ana, "buzz", nil, "you have answered this question already: wait for the next one")
  expect(s:view(ana).score).to_be(0)
  ok(s, s.host, "right")
  expect(scores(s)).to_equal({ { "Ben", 100 }, { "Ana", 0 }, { "Cy", 0 } })
  -- The next question: Ana may buzz again.
  ok(s, s.host, "next")
  expect(s:view(ana).choices[1].action).to_be("buzz")
  ok(s, ana, "buzz")
  expect(s:view(cy).banner.text).to_be("Ana is answering")
end)

test("with nobody in line after a wrong answer the buzzers stay open for the others", function()
  local s, ana, ben = started({ "Ana", "Ben" })
  ok(s, ana, "buzz")
  ok(s, s.host, "wrong")
  expect(s:view(s.host).banner).to_equal({ text = "Ana was wrong. Buzzers are open", style = "wrong" })
  refused(s, s.host, "right", nil, "nobody is answering: wait for a student to buzz")
  expect(s:view(ben).choices[1].action).to_be("buzz")
  ok(s, ben, "buzz")
  ok(s, s.host, "wrong")
  expect(s:view(s.host).status).to_be("Nobody else can buzz: press Next question.")
  expect(s:view(s.host).phase).to_be("question")
end)

test("next moves on at any time; a question nobody got scores nothing", function()
  local s, ana = started({ "Ana" })
  ok(s, ana, "buzz")
  ok(s, s.host, "next")
  expect(s:view(ana).title).to_be("Question 2")
  expect(s:view(ana).choices[1].action).to_be("buzz")
  expect(s:view(ana).score).to_be(0)
  expect(#s:events(ana, "question")).to_be(2)
end)

-- The host's controls -----------------------------------------------------------

test("every host action is refused for a student, with its reason", function()
  local s, ana, ben = game({ "Ana", "Ben" })
  refused(s, ana, "start", nil, "only the host can start the game")
  ok(s, s.host, "start")
  ok(s, ana, "buzz")
  refused(s, ben, "right", nil, "only the host can mark an answer right")
  refused(s, ben, "wrong", nil, "only the host can mark an answer wrong")
  refused(s, ana, "next", nil, "only the host can go to the next question")
  refused(s, ana, "finish", nil, "only the host can end the game")
  refused(s, ana, "kick", { player = ben.id }, "only the host can remove players")
  refused(s, ana, "readmit", { name = "Ben" }, "only the host can let removed players back in")
  refused(s, ana, "dance", nil, "unknown action 'dance'")
  expect(s:view(s.host).banner.text).to_be("Ana is answering")
  expect(scores(s)).to_equal({ { "Ana", 0 }, { "Ben", 0 } })
end)

test("the host does not buzz, and nobody buzzes in the lobby", function()
  local s, ana = game({ "Ana" })
  refused(s, ana, "buzz", nil, "the game has not started yet")
  ok(s, s.host, "start")
  refused(s, s.host, "buzz", nil, "the host does not buzz")
end)

test("start is refused until someone has joined, and only once", function()
  local s = session("buzzer")
  refused(s, s.host, "start", nil, "wait until at least one student has joined")
  s:join("Ana")
  ok(s, s.host, "start")
  refused(s, s.host, "start", nil, "the game has already started")
end)

test("points may come as text, as a form sends them", function()
  local s, ana = started({ "Ana" }, { points = "10000" })
  ok(s, ana, "buzz")
  ok(s, s.host, "right")
  expect(s:view(ana).score).to_be(10000)
end)

test("a kicked student leaves the line, the board and the results, and can be let back in", function()
  local s, ana, ben, cy = started({ "Ana", "Ben", "Cy" })
  ok(s, ana, "buzz")
  ok(s, ben, "buzz")
  ok(s, s.host, "kick", { player = ana.id })
  expect(s:view(s.host).banner.text).to_be("Ben is answering")
  expect(s:view(cy).banner.text).to_be("Ben is answering")
  local again, why = s:join("Ana")
  expect(again).to_be_nil()
  expect(why).to_contain("removed")
  local buttons = s:view(s.host).buttons
  expect(buttons[#buttons]).to_equal({ label = "Let Ana back in", action = "readmit", data = { name = "Ana" } })
  ok(s, s.host, "readmit", { name = "Ana" })
  local back = s:join("Ana")
  expect(back).to_be_truthy()
  ok(s, s.host, "kick", { player = back.id })
  refused(s, s.host, "kick", { player = s.host.id }, "the host cannot be removed")
  refused(s, s.host, "kick", { player = "nobody" }, "there is no player 'nobody' in this game")
  ok(s, s.host, "finish")
  local names = {}
  for _, row in ipairs(s:results().rows) do names[#names + 1] = row.name end
  expect(names).to_equal({ "Ben", "Cy" })
end)

-- Arriving late, leaving, coming back --------------------------------------------

test("a student may join after the start and buzz for the open question", function()
  local s, ana = started({ "Ana" })
  ok(s, ana, "buzz")
  local late, why = s:join("Late Lou")
  expect(why).to_be_nil()
  expect(s:view(late).score).to_be(0)
  ok(s, late, "buzz")
  ok(s, s.host, "wrong")
  ok(s, s.host, "right")
  expect(scores(s)).to_equal({ { "Late Lou", 100 }, { "Ana", 0 } })
end)

test("the one answering leaves: the next in line answers; back under the same name, the score is kept", function()
  local s, ana, ben = started({ "Ana", "Ben" })
  ok(s, ana, "buzz")
  ok(s, s.host, "right")
  ok(s, s.host, "next")
  ok(s, ana, "buzz")
  ok(s, ben, "buzz")
  s:leave(ana)
  expect(s:view(s.host).banner.text).to_be("Ben is answering")
  local back, why = s:join("Ana")
  expect(why).to_be_nil()
  expect(s:view(back).score).to_be(100)
  expect(s:view(back).choices[1].action).to_be("buzz")  -- out of the line, may buzz again
  ok(s, s.host, "finish")
  expect(s:results().rows).to_equal({
    { rank = 1, name = "Ana", score = 100 },
    { rank = 2, name = "Ben", score = 0 },
  })
end)

test("a student who was wrong, left and came back is still out for that question", function()
  local s, ana = started({ "Ana", "Ben" })
  ok(s, ana, "buzz")
  ok(s, s.host, "wrong")
  s:leave(ana)
  local back = s:join("Ana")
  refused(s, back, "buzz", nil, "you have answered this question already: wait for the next one")
end)

test("a dropped connection keeps the student's place in line", function()
  local s, ana, ben = started({ "Ana", "Ben" })
  ok(s, ana, "buzz")
  ok(s, ben, "buzz")
  s:disconnect(ana)
  expect(s:view(s.host).banner.text).to_be("Ana is answering")
  s:reconnect(ana)
  expect(s:view(ana).banner.text).to_be("You buzzed first! Answer out loud")
end)

-- The end ------------------------------------------------------------------------

test("the podium ends the game with rows {rank, name, score}; equal scores share a rank", function()
  local s, ana, ben, cy, dee = started({ "Ana", "Ben", "Cy", "Dee" })
  for _, p in ipairs({ cy, ana, ben, ana }) do
    ok(s, p, "buzz")
    ok(s, s.host, "right")
    ok(s, s.host, "next")
  end
  s:leave(dee)
  ok(s, s.host, "finish")
  local results = s:results()
  expect(results.columns).to_equal({ "rank", "name", "score" })
  expect(results.rows).to_equal({
    { rank = 1, name = "Ana", score = 200 },
    { rank = 2, name = "Ben", score = 100 },
    { rank = 2, name = "Cy", score = 100 },
    { rank = 4, name = "Dee", score = 0 },
  })
  expect(s:view(ana).podium).to_equal({
    { rank = 1, name = "Ana", score = 200 },
    { rank = 2, name = "Ben", score = 100 },
    { rank = 2, name = "Cy", score = 100 },
  })
  expect(s:view(cy).banner).to_equal({ text = "You finished 2nd of 4 with 100 points", style = "correct" })
  local late, why = s:join("Late")
  expect(late).to_be_nil()
  expect(why).to_contain("finished")
end)

test("the scoreboard shows the top five and your own row below", function()
  local names = { "A1", "A2", "A3", "A4", "A5", "A6", "A7" }
  local s = session("buzzer")
  local p = {}
  for i, n in ipairs(names) do p[i] = s:join(n) end
  ok(s, s.host, "start")
  for i = 1, 5 do
    ok(s, p[i], "buzz")
    ok(s, s.host, "right")
    ok(s, s.host, "next")
  end
  local board = s:view(p[7]).leaderboard
  expect(#board).to_be(6)
  expect(board[6]).to_equal({ rank = 6, name = "A7", score = 0, highlight = true })
  expect(board[1].score).to_be(100)
end)

test("a backend can drive the game with events", function()
  local s, ana = game({ "Ana" })
  expect(s:event("start")).to_be(true)
  ok(s, ana, "buzz")
  expect(s:event("right")).to_be(true)
  local done, why = s:event("dance")
  expect(done).to_be(false)
  expect(why).to_contain("unknown event 'dance'")
  expect(s:event("finish")).to_be(true)
  expect(s:results().rows).to_equal({ { rank = 1, name = "Ana", score = 100 } })
end)

test("a bot watches: it does not buzz and is not on the board", function()
  local s, ana = game({ "Ana" })
  local bot, why = s:join("Helper", { role = "bot" })
  expect(why).to_be_nil()
  ok(s, s.host, "start")
  refused(s, bot, "buzz", nil, "bots watch the game; they do not buzz")
  expect(scores(s)).to_equal({ { "Ana", 0 } })
  expect(s:view(bot).phase).to_be("question")
end)
