-- Tests of quiz.lua's self-paced (homework) quiz: params.pace = "self", as
-- docs/lua-api.md §16 "Self-paced quizzes" states it.
-- Run them with `recess test games/quiz_homework_test.lua`.

-- 10 seconds per question: a right answer after t ms scores
-- 500 + 500 * (10000 - t) / 10000, rounded down.
local LIMIT_MS = 10000
local HOUR = 3600 * 1000

local QUESTIONS = {
  { text = "1 + 1?", choices = { "2", "3", "4", "5" }, answer = 1 },
  { text = "2 + 2?", choices = { "3", "4" }, answer = 2 },
  { type = "poll", text = "Fun?", choices = { "Yes", "No" } },
}

-- A homework quiz of QUESTIONS, open for `hours` (2 by default), and a
-- student for each name in `names`.
local function homework(names, extra)
  local params = { questions = QUESTIONS, time_limit = LIMIT_MS / 1000, pace = "self", deadline = 2 }
  for k, v in pairs(extra or {}) do params[k] = v end
  local s = session("quiz", params)
  local students = {}
  for i, name in ipairs(names) do
    local p, why = s:join(name)
    expect(why).to_be_nil()
    students[i] = p
  end
  return s, table.unpack(students)
end

local function act(s, p, name, data)
  local ok, why = s:act(p, name, data)
  expect(why).to_be_nil()
  expect(ok).to_be(true)
end

local function refused(s, p, name, data)
  local ok, why = s:act(p, name, data)
  expect(ok).to_be(false)
  return why
end

-- The `data` of the last event `name` that `p` received (nil if none).
local function last(s, p, name)
  local list = s:events(p, name)
  local e = list[#list]
  return e and e.data
end

-- The host's list as {name = detail}.
local function progress(s)
  local list = {}
  for _, p in ipairs(s:view(s.host).players or {}) do list[p.name] = p.detail end
  return list
end

-- The report's row of `name`.
local function row(report, name)
  for _, r in ipairs(report.rows) do
    if r.name == name then return r end
  end
end

test("each student starts when they like and goes at their own pace, on their own timer", function()
  local s, ana, ben = homework({ "Ana", "Ben" })
  expect(s:view(ana).phase).to_be("ready")
  expect(s:view(ana).buttons).to_equal({ { label = "Start", action = "next" } })
  act(s, ana, "next")
  expect(s:view(ana).phase).to_be("question")
  expect(s:view(ana).title).to_be("Question 1 of 3")
  expect(s:view(ana).timer.ends_at).to_be(s:now() + LIMIT_MS)
  expect(last(s, ana, "question")).to_equal({ number = 1, count = 3, ends_at = s:now() + LIMIT_MS, type = "choice" })
  -- Ben has not started: nothing was sent to him, and nothing waits for him.
  expect(s:view(ben).phase).to_be("ready")
  expect(last(s, ben, "question")).to_be_nil()

  s:advance(2000)
  act(s, ana, "answer", { choice = 1 })      -- 2 s into her question: 900
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 900 })
  expect(s:view(ana).phase).to_be("reveal")
  expect(s:view(ana).banner).to_equal({ text = "Correct! +900 points", style = "correct" })
  expect(s:view(ana).score).to_be(900)

  -- Ben starts an hour later: his clock is his own.
  s:advance(HOUR)
  act(s, ben, "next")
  s:advance(5000)
  act(s, ana, "next")                         -- Ana on question 2, Ben on 1
  expect(s:view(ana).title).to_be("Question 2 of 3")
  expect(s:view(ben).title).to_be("Question 1 of 3")
  act(s, ben, "answer", { choice = 1 })      -- 5 s into his: 750
  expect(s:view(ben).score).to_be(750)
  s:advance(LIMIT_MS)                         -- Ana's time runs out
  expect(s:view(ana).phase).to_be("reveal")
  expect(last(s, ana, "result")).to_equal({ correct = false, points = 0 })
  expect(s:view(ana).banner).to_equal({ text = "No answer this time: it was 4", style = "wrong" })
  expect(s:view(ana).buttons).to_equal({ { label = "Next question", action = "next" } })
  expect(progress(s)).to_equal({
    Ana = "question 2 of 3 · 900 pts",
    Ben = "question 1 of 3 · 750 pts",
  })
end)

test("the host sees each student's progress live, with a chart per question", function()
  local s, ana, ben, cal = homework({ "Ana", "Ben", "Cal" })
  act(s, ana, "next")
  act(s, ana, "answer", { choice = 1 })
  act(s, ana, "next")
  act(s, ana, "answer", { choice = 1 })      -- wrong
  act(s, ana, "next")
  act(s, ana, "answer", { choice = 2 })
  act(s, ana, "next")
  act(s, ben, "next")
  act(s, ben, "answer", { choice = 1 })
  local host = s:view(s.host)
  expect(host.phase).to_be("open")
  expect(host.status).to_be("3 students: 1 finished, 1 playing, 1 not started")
  expect(progress(s)).to_equal({
    Ana = "finished · 1 right · 1000 pts",
    Ben = "question 1 of 3 · 1000 pts",
    Cal = "not started",
  })
  expect(host.bars).to_equal({
    { label = "1. 1 + 1?", value = 2, detail = "done, 2 right" },
    { label = "2. 2 + 2?", value = 1, detail = "done, 0 right" },
    { label = "3. Fun?", value = 1, detail = "done" },
  })
  expect(host.timer).to_equal({ ends_at = s:now() + 2 * HOUR, label = "Closes in" })
  expect(host.buttons).to_equal({ { label = "Close now and show results", action = "close" } })
  expect(host.leaderboard[1]).to_equal({ rank = 1, name = "Ana", score = 1000 })
  -- Ana is done: her own score and place so far.
  local done = s:view(ana)
  expect(done.phase).to_be("done")
  expect(done.banner).to_equal({ text = "All done! 1 of 3 right, 1000 points.", style = "correct" })
  expect(done.status).to_be("You are 1st of 3 so far")
  -- A student who leaves stays on the host's list, marked away.
  s:leave(cal)
  expect(progress(s).Cal).to_be("not started · away")
end)

test("the deadline closes the quiz: open questions count as unanswered, and the results are the usual spreadsheet", function()
  local s, ana, ben, cal = homework({ "Ana", "Ben", "Cal" })
  act(s, ana, "next")
  act(s, ana, "answer", { choice = 1 })      -- 1000
  act(s, ana, "next")
  s:advance(2 * HOUR - 3000)
  act(s, ben, "next")                         -- Ben starts 3 s before it closes
  s:advance(2999)
  expect(s:results()).to_be_nil()
  s:advance(1)
  local results = s:results()
  expect(results).to_be_truthy()
  expect(s:view(ana).phase).to_be("podium")
  expect({ table.unpack(results.columns, 1, 8) }).to_equal({
    "rank", "name", "score", "correct", "q1 answer", "q1 correct", "q1 points", "q1 time",
  })
  expect(results.rows[1]).to_equal({
    rank = 1, name = "Ana", score = 1000, correct = 1,
    ["q1 answer"] = "2", ["q1 correct"] = "yes", ["q1 points"] = 1000, ["q1 time"] = "0.0",
    -- her question 2 was open at the deadline: not answered
    ["q2 answer"] = "", ["q2 correct"] = "no", ["q2 points"] = 0, ["q2 time"] = "",
    -- never reached: all empty
    ["q3 answer"] = "", ["q3 correct"] = "", ["q3 points"] = "", ["q3 time"] = "",
  })
  expect(row(results, "Ben")["q1 correct"]).to_be("no")
  expect(row(results, "Ben")["q2 answer"]).to_be("")
  expect(row(results, "Cal")["q1 correct"]).to_be("")
  expect(refused(s, ben, "answer", { choice = 1 })).to_be("this game has finished")
end)

test("the results can be downloaded while students are still playing", function()
  local s, ana, ben = homework({ "Ana", "Ben" })
  local report = s:report()
  expect(#report.rows).to_be(2)
  expect(row(report, "Ana")["q1 correct"]).to_be("")
  act(s, ana, "next")
  s:advance(4000)
  act(s, ana, "answer", { choice = 2 })
  report = s:report()
  expect(row(report, "Ana")["q1 answer"]).to_be("3")
  expect(row(report, "Ana")["q1 correct"]).to_be("no")
  expect(row(report, "Ana")["q1 time"]).to_be("4.0")
  expect(row(report, "Ben")["q1 correct"]).to_be("")
end)

test("the host closes the homework early", function()
  local s, ana = homework({ "Ana" })
  act(s, ana, "next")
  act(s, s.host, "close")
  expect(s:results().rows[1]["q1 correct"]).to_be("no")
  expect(s:view(s.host).phase).to_be("podium")
  -- The deadline's timer went with it: nothing fires later.
  s:advance(3 * HOUR)
  expect(s:view(ana).phase).to_be("podium")
end)

test("only what fits the student's step is allowed, and the host does not move anyone on", function()
  local s, ana, ben = homework({ "Ana", "Ben" })
  expect(refused(s, ana, "answer", { choice = 1 })).to_be("press Start first")
  for _, command in ipairs({ "start", "next", "skip" }) do
    expect(refused(s, s.host, command)).to_be(
      "this quiz is self-paced: students start and move on by themselves; Close ends it for everyone")
  end
  expect(refused(s, ben, "close")).to_be("only the host can close the quiz")
  act(s, ana, "next")
  expect(refused(s, ana, "next")).to_be("answer the question first, or let its time run out")
  expect(refused(s, ana, "answer", { choice = 9 })).to_be("pick one of the answers, 1 to 4")
  act(s, ana, "answer", { choice = 1 })
  expect(refused(s, ana, "answer", { choice = 2 })).to_be("you already answered this question: press Next")
  expect(s:view(ana).score).to_be(1000)
  act(s, ana, "next")
  s:advance(LIMIT_MS)
  expect(refused(s, ana, "answer", { choice = 2 })).to_be("time is up for this question: press Next")
  act(s, ana, "next")
  act(s, ana, "answer", { choice = 1 })
  act(s, ana, "next")
  expect(refused(s, ana, "next")).to_be("you have done every question")
  expect(refused(s, ana, "answer", { choice = 1 })).to_be("you have done every question")
  local ok, why = s:event("next")
  expect(ok).to_be(false)
  expect(why).to_contain("self-paced")
end)

test("a student who comes back later goes on where they were; time that ran out meanwhile is spent", function()
  local s, ana = homework({ "Ana" })
  act(s, ana, "next")
  act(s, ana, "answer", { choice = 1 })
  act(s, ana, "next")
  s:leave(ana)
  expect(progress(s).Ana).to_be("question 2 of 3 · 1000 pts · away")
  s:advance(HOUR)
  local back = s:join("ana")
  expect(back.name).to_be("Ana")
  local view = s:view(back)
  expect(view.phase).to_be("reveal")
  expect(view.title).to_be("Question 2 of 3")
  expect(view.score).to_be(1000)
  expect(view.banner.style).to_be("wrong")
  act(s, back, "next")
  expect(s:view(back).title).to_be("Question 3 of 3")
  expect(#s:report().rows).to_be(1)
end)

test("a removed student leaves no trace, in the results or the class's answers", function()
  local s, ana, ben = homework({ "Ana", "Ben" })
  for _, p in ipairs({ ana, ben }) do
    act(s, p, "next")
    act(s, p, "answer", { choice = 1 })
    act(s, p, "next")
    act(s, p, "answer", { choice = 2 })
    act(s, p, "next")
    act(s, p, "answer", { choice = 1 })
  end
  expect(s:view(ana).bars[1].value).to_be(2)
  act(s, s.host, "kick", { player = ben.id })
  expect(s:view(ana).bars[1].value).to_be(1)
  expect(s:view(s.host).bars[1]).to_equal({ label = "1. 1 + 1?", value = 1, detail = "done, 1 right" })
  local report = s:report()
  expect(#report.rows).to_be(1)
  expect(report.rows[1].name).to_be("Ana")
  expect(s:view(s.host).buttons[2]).to_equal({ label = "Let Ben back in", action = "readmit", data = { name = "Ben" } })
end)

test("teams are balanced as students join, and scored as in a live quiz", function()
  local s, ana, ben, cal = homework({ "Ana", "Ben", "Cal" }, { teams = 2 })
  act(s, ana, "next")
  act(s, ana, "answer", { choice = 1 })      -- Red: 1000
  act(s, ben, "next")
  s:advance(LIMIT_MS)                         -- Blue: 0
  act(s, cal, "next")
  s:advance(5000)
  act(s, cal, "answer", { choice = 1 })      -- Red: 750
  act(s, s.host, "close")
  expect(s:results().teams).to_equal({
    { rank = 1, team = "Red", score = 875, members = 2 },
    { rank = 2, team = "Blue", score = 0, members = 1 },
  })
end)

test("wrong pace and deadline params are refused with what to give", function()
  local function fails(params, message)
    local ok, why = pcall(session, "quiz", params)
    expect(ok).to_be(false)
    expect(tostring(why)).to_contain(message)
  end
  fails({ pace = "fast" }, [[params.pace must be "host" (the host moves everyone on) or "self" (each student at their own pace), got 'fast']])
  fails({ deadline = 5 }, 'params.deadline is for a self-paced quiz: give pace = "self" too')
  fails({ pace = "self", deadline = 200 }, "params.deadline must be a number of hours from now, above 0 and at most 168 (a week), got 200")
  fails({ pace = "self", deadline = "soon" }, "params.deadline must be a number of hours")
  fails({ pace = "self", teams = 2, team_choice = true }, "params.team_choice needs a lobby")
end)

test("without a deadline, a self-paced quiz stays open for a day", function()
  local s = session("quiz", { questions = QUESTIONS, pace = "self" })
  expect(s:view(s.host).timer.ends_at).to_be(s:now() + 24 * HOUR)
  s:advance(24 * HOUR)
  expect(s:results()).to_be_truthy()
end)

test("a type, slider, order and cloud question play the same on a student's own clock", function()
  local s, ana = homework({ "Ana" }, { questions = {
    { type = "type", text = "Capital of France?", answer = "Paris" },
    { type = "slider", text = "Half of 100?", min = 0, max = 100, answer = 50, tolerance = 10 },
    { type = "order", text = "In order", items = { "A", "B", "C" } },
    { type = "cloud", text = "Two words", words = 2 },
  } })
  act(s, ana, "next")
  act(s, ana, "answer", { text = " paris " })
  expect(s:view(ana).score).to_be(1000)
  act(s, ana, "next")
  act(s, ana, "answer", { value = 48 })         -- closeness 0.8: 800
  expect(s:view(ana).score).to_be(1800)
  act(s, ana, "next")
  -- The shuffle is hers: sent back in the right order, by the places shown.
  local shown = s:view(ana).order.items
  local place = {}
  for i, item in ipairs(shown) do place[item.label] = i end
  act(s, ana, "answer", { order = { place.A, place.B, place.C } })
  expect(s:view(ana).score).to_be(2800)
  act(s, ana, "next")
  act(s, ana, "answer", { text = "sun" })
  expect(s:view(ana).phase).to_be("question")   -- one more word to send
  act(s, ana, "answer", { text = "rain" })
  expect(s:view(ana).phase).to_be("reveal")
  expect(s:view(ana).cloud).to_equal({ { text = "sun", count = 1 }, { text = "rain", count = 1 } })
  expect(s:report().rows[1]["q4 answer"]).to_be("sun, rain")
end)
