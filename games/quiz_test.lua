-- Tests of quiz.lua: the rules as docs/lua-api.md §16 states them.
-- Run them with `recess test games` (or `recess test games/quiz_test.lua`).

-- Every question gets 10 seconds, so points are easy to work out:
-- 500 + 500 * (10000 - ms taken) / 10000, rounded down.
local LIMIT_MS = 10000

local ONE = {
  { text = "1 + 1?", choices = { "2", "3", "4", "5" }, answer = 1 },
}
local TWO = {
  { text = "1 + 1?", choices = { "2", "3", "4", "5" }, answer = 1 },
  { text = "2 + 2?", choices = { "3", "4" }, answer = 2 },
}

-- A quiz of `questions` (ONE by default) with 10 s per question, and a
-- student for each name in `names`, all joined in the lobby.
local function quiz(names, questions, extra)
  local params = { questions = questions or ONE, time_limit = LIMIT_MS / 1000 }
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

local function start(s)
  local ok, why = s:act(s.host, "start")
  expect(why).to_be_nil()
  expect(ok).to_be(true)
end

-- The `data` of the last event `name` that `p` received (nil if none).
local function last(s, p, name)
  local list = s:events(p, name)
  local e = list[#list]
  return e and e.data
end

local function answer(s, p, choice)
  local ok, why = s:act(p, "answer", { choice = choice })
  expect(why).to_be_nil()
  expect(ok).to_be(true)
end

-- Scoring -----------------------------------------------------------------

test("an instant correct answer scores 1000", function()
  local s, ana = quiz({ "Ana" })
  start(s)
  answer(s, ana, 1)
  -- Ana was the only student, so her answer brought the reveal.
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 1000 })
  expect(s:view(ana).score).to_be(1000)
end)

test("a correct answer at the buzzer scores 500", function()
  local s, ana = quiz({ "Ana" })
  start(s)
  s:advance(LIMIT_MS - 1)
  expect(s:view(ana).phase).to_be("question")
  answer(s, ana, 1)
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 500 })
end)

test("in between, a correct answer scores 500 + 500 * time_left / time_limit, rounded down", function()
  for _, case in ipairs({
    { after = 1, points = 999 },
    { after = 2500, points = 875 },
    { after = 5000, points = 750 },
    { after = 7777, points = 611 },
  }) do
    local s, ana = quiz({ "Ana" })
    start(s)
    s:advance(case.after)
    answer(s, ana, 1)
    expect(last(s, ana, "result")).to_equal({ correct = true, points = case.points })
    expect(s:view(ana).score).to_be(case.points)
  end
end)

test("a wrong answer scores 0", function()
  local s, ana = quiz({ "Ana" })
  start(s)
  answer(s, ana, 2)
  expect(last(s, ana, "result")).to_equal({ correct = false, points = 0 })
  expect(s:view(ana).score).to_be(0)
  expect(s:view(ana).banner.text).to_be("Not quite: the answer was 2")
end)

test("no answer scores 0, and the time running out reveals", function()
  local s, ana, ben = quiz({ "Ana", "Ben" })
  start(s)
  answer(s, ana, 1)
  expect(s:view(ben).phase).to_be("question")
  s:advance(LIMIT_MS)
  expect(s:view(ben).phase).to_be("reveal")
  expect(last(s, ben, "result")).to_equal({ correct = false, points = 0 })
  expect(s:view(ben).score).to_be(0)
  expect(s:view(ben).banner.text).to_be("No answer this time: it was 2")
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 1000 })
end)

test("an answer after the time is refused", function()
  local s, ana, ben = quiz({ "Ana", "Ben" })
  start(s)
  s:advance(LIMIT_MS)
  local ok, why = s:act(ana, "answer", { choice = 1 })
  expect(ok).to_be(false)
  expect(why).to_be("time is up for this question")
  expect(s:view(ana).score).to_be(0)
end)

test("points are added at the reveal, not when the answer comes in", function()
  local s, ana, ben = quiz({ "Ana", "Ben" })
  start(s)
  answer(s, ana, 1)
  expect(s:view(ana).phase).to_be("question")
  expect(s:view(ana).score).to_be(0)
  expect(s:view(ana).leaderboard).to_be_nil()
  expect(#s:events(ana, "result")).to_be(0)
  s:advance(3000)
  answer(s, ben, 1)  -- the last one: the reveal
  expect(s:view(ana).phase).to_be("reveal")
  expect(s:view(ana).score).to_be(1000)
  expect(s:view(ben).score).to_be(850)
  expect(last(s, ana, "reveal")).to_equal({ number = 1, answer = 1, label = "2" })
end)

test("equal scores share a rank: 1, 2, 2, 4, ties by name", function()
  -- Cal joins before Ben: the board still lists Ben first.
  local s, ana, cal, ben, dee = quiz({ "Ana", "Cal", "Ben", "Dee" })
  start(s)
  answer(s, ana, 1)          -- 1000
  s:advance(2000)
  answer(s, cal, 1)          -- 900
  answer(s, ben, 1)          -- 900
  answer(s, dee, 3)          -- 0, and the reveal
  local board = s:view(dee).leaderboard
  expect(board).to_equal({
    { rank = 1, name = "Ana", score = 1000 },
    { rank = 2, name = "Ben", score = 900 },
    { rank = 2, name = "Cal", score = 900 },
    { rank = 4, name = "Dee", score = 0, highlight = true },
  })
  expect(s:view(cal).status).to_be("You are 2nd of 4")
  s:act(s.host, "next")
  local ranks = {}
  for i, row in ipairs(s:results().rows) do ranks[i] = row.rank end
  expect(ranks).to_equal({ 1, 2, 2, 4 })
end)

test("equal scores are listed by name, whatever the case", function()
  local s, eve, dan, cat, bob, abe = quiz({ "Eve", "Dan", "cat", "Bob", "Abe" })
  start(s)
  s:advance(LIMIT_MS)              -- nobody answers: five scores of 0
  s:act(s.host, "next")
  expect(s:results().rows).to_equal({
    { rank = 1, name = "Abe", score = 0, correct = 0 },
    { rank = 1, name = "Bob", score = 0, correct = 0 },
    { rank = 1, name = "cat", score = 0, correct = 0 },
    { rank = 1, name = "Dan", score = 0, correct = 0 },
    { rank = 1, name = "Eve", score = 0, correct = 0 },
  })
end)

-- Joining late, leaving and coming back ----------------------------------

test("a student may join after the start and answer the open question", function()
  local s, ana = quiz({ "Ana" }, TWO)
  start(s)
  s:advance(5000)
  local ben, why = s:join("Ben")
  expect(why).to_be_nil()
  expect(ben.role).to_be("player")
  local view = s:view(ben)
  expect(view.phase).to_be("question")
  expect(view.score).to_be(0)
  expect(view.choices[1].action).to_be("answer")
  answer(s, ben, 1)
  answer(s, ana, 2)
  expect(last(s, ben, "result")).to_equal({ correct = true, points = 750 })
  expect(s:view(ana).status).to_be("You are 2nd of 2")
end)

test("with allow_late_join = false a student is refused once the quiz started", function()
  local s, ana = quiz({ "Ana" }, ONE, { allow_late_join = false })
  start(s)
  local ben, why = s:join("Ben")
  expect(ben).to_be_nil()
  expect(why).to_be("this quiz has already started; you can join the next one")
  expect(#s:players()).to_be(2)  -- the host and Ana
end)

test("allow_late_join = false still lets students join in the lobby", function()
  local s, ana, ben = quiz({ "Ana", "Ben" }, ONE, { allow_late_join = false })
  expect(s:view(s.host).status).to_be("2 players joined")
end)

test("a student who leaves and comes back under the same name gets their seat and score", function()
  local s, ana, ben = quiz({ "Ana", "Ben" }, TWO)
  start(s)
  answer(s, ana, 1)
  answer(s, ben, 2)
  expect(s:view(ana).score).to_be(1000)
  s:leave(ana)
  expect(s:view(s.host).status).to_be("0 of 1 player got it right")  -- Ben, still here
  s:act(s.host, "next")            -- question 2, without Ana
  local back, why = s:join("Ana")
  expect(why).to_be_nil()
  local view = s:view(back)
  expect(view.phase).to_be("question")
  expect(view.score).to_be(1000)
  expect(view.title).to_be("Question 2 of 2")
  answer(s, back, 2)
  answer(s, ben, 2)
  s:act(s.host, "next")            -- the podium
  expect(s:results().rows).to_equal({
    { rank = 1, name = "Ana", score = 2000, correct = 2 },
    { rank = 2, name = "Ben", score = 1000, correct = 1 },
  })
end)

test("the answered count is of the students in the room", function()
  local s, ana, ben, cal = quiz({ "Ana", "Ben", "Cal" })
  start(s)
  answer(s, ana, 1)
  expect(s:view(ben).status).to_be("1 of 3 answered")
  s:leave(ana)                     -- her answer stays, but she is gone
  expect(s:view(ben).status).to_be("0 of 2 answered")
  expect(s:view(s.host).status).to_be("0 of 2 answered")
  local back = s:join("Ana")       -- and back, with her answer
  expect(s:view(back).status).to_be("Answer saved. 1 of 3 answered")
  answer(s, ben, 1)
  answer(s, cal, 2)
  expect(s:view(s.host).status).to_be("2 of 3 players got it right")
end)

test("a student who left keeps their points in the results", function()
  local s, ana, ben = quiz({ "Ana", "Ben" })
  start(s)
  answer(s, ana, 1)
  answer(s, ben, 1)
  s:leave(ana)
  s:act(s.host, "next")
  expect(s:results().rows[1]).to_equal({ rank = 1, name = "Ana", score = 1000, correct = 1 })
end)

test("students whose connection dropped are not waited for", function()
  local s, ana, ben = quiz({ "Ana", "Ben" })
  start(s)
  s:disconnect(ben)
  answer(s, ana, 1)                -- every connected student has answered
  expect(s:view(ana).phase).to_be("reveal")
  s:reconnect(ben)
  expect(s:view(ben).phase).to_be("reveal")
  expect(last(s, ben, "result")).to_equal({ correct = false, points = 0 })
end)

test("a student who arrives during a reveal is not told they missed it", function()
  local s, ana = quiz({ "Ana" }, TWO)
  start(s)
  answer(s, ana, 1)
  local ben = s:join("Ben")
  local view = s:view(ben)
  expect(view.phase).to_be("reveal")
  expect(view.banner).to_be_nil()
  expect(view.score).to_be(0)
  expect(view.leaderboard).to_equal({
    { rank = 1, name = "Ana", score = 1000 },
    { rank = 2, name = "Ben", score = 0, highlight = true },
  })
end)

-- The host's controls -----------------------------------------------------

test("skip drops the current question unscored and goes on", function()
  local s, ana, ben = quiz({ "Ana", "Ben" }, TWO)
  start(s)
  s:advance(4000)
  answer(s, ana, 1)                -- right, but the question is skipped
  expect(s:act(s.host, "skip")).to_be(true)
  expect(#s:events(ana, "reveal")).to_be(0)
  expect(#s:events(ana, "result")).to_be(0)
  expect(last(s, ana, "question").number).to_be(2)
  local view = s:view(ana)
  expect(view.title).to_be("Question 2 of 2")
  expect(view.score).to_be(0)
  expect(view.choices[1].action).to_be("answer")  -- a fresh question: Ana may answer
  -- The skipped question's time runs out at 10 s: that does not end this one.
  s:advance(9000)
  expect(s:view(ana).phase).to_be("question")
  answer(s, ana, 2)                -- 1 s left: 550
  answer(s, ben, 1)
  s:act(s.host, "next")
  local results = s:results()
  expect(results.scored).to_be(1)
  expect(results.questions).to_be(2)
  expect(results.rows[1]).to_equal({ rank = 1, name = "Ana", score = 550, correct = 1 })
end)

test("next reveals early during a question and moves on during a reveal", function()
  local s, ana = quiz({ "Ana" }, TWO)
  start(s)
  s:act(s.host, "next")
  expect(s:view(ana).phase).to_be("reveal")
  expect(last(s, ana, "result")).to_equal({ correct = false, points = 0 })
  s:act(s.host, "next")
  expect(s:view(ana).title).to_be("Question 2 of 2")
  s:act(s.host, "next")
  s:act(s.host, "next")
  expect(s:view(ana).phase).to_be("podium")
  expect(s:results()).to_be_truthy()
end)

test("start is refused until someone has joined", function()
  local s = quiz({})
  local ok, why = s:act(s.host, "start")
  expect(ok).to_be(false)
  expect(why).to_be("nobody has joined yet: wait for at least one player")
end)

test("every host action is refused for a student, with its reason", function()
  local s, ana, ben = quiz({ "Ana", "Ben" }, TWO)
  local function refused(name, data, reason)
    local ok, why = s:act(ana, name, data)
    expect(ok).to_be(false)
    expect(why).to_be(reason)
  end
  refused("start", nil, "only the host can start the quiz")
  expect(s:view(ana).phase).to_be("lobby")
  start(s)
  refused("next", nil, "only the host can move the quiz on")
  refused("skip", nil, "only the host can skip a question")
  refused("kick", { player = ben.id }, "only the host can remove players")
  refused("readmit", { name = "Ben" }, "only the host can let removed players back in")
  -- Nothing moved: still question 1, Ben still in.
  expect(s:view(ana).title).to_be("Question 1 of 2")
  expect(s:view(ana).phase).to_be("question")
  expect(s:view(s.host).players).to_equal({
    { id = ana.id, name = "Ana", detail = "thinking" },
    { id = ben.id, name = "Ben", detail = "thinking" },
  })
end)

test("the host does not answer, and answers in the lobby are refused", function()
  local s, ana = quiz({ "Ana" })
  local ok, why = s:act(ana, "answer", { choice = 1 })
  expect(ok).to_be(false)
  expect(why).to_be("the quiz has not started yet")
  start(s)
  ok, why = s:act(s.host, "answer", { choice = 1 })
  expect(ok).to_be(false)
  expect(why).to_be("the host does not answer questions")
  ok, why = s:act(ana, "answer", { choice = 5 })
  expect(ok).to_be(false)
  expect(why).to_be("pick one of the answers, 1 to 4")
end)

test("one answer per question: a second one is refused and the first counts", function()
  local s, ana, ben = quiz({ "Ana", "Ben" })
  start(s)
  answer(s, ana, 2)
  local ok, why = s:act(ana, "answer", { choice = 1 })
  expect(ok).to_be(false)
  expect(why).to_be("you already answered this question")
  local view = s:view(ana)
  expect(view.choices[2].style).to_be("selected")
  expect(view.choices[1].action).to_be_nil()
  expect(s:view(s.host).choices[2].detail).to_be("1 answer")
  expect(s:view(s.host).choices[1].detail).to_be("0 answers")
  answer(s, ben, 1)
  expect(last(s, ana, "result")).to_equal({ correct = false, points = 0 })
end)

-- Secrecy -------------------------------------------------------------------

-- Two quizzes that differ only in which choice is right: until the reveal,
-- every student must see exactly the same in both, whatever they do.
test("no student view gives the answer away before the reveal", function()
  local function make(right)
    local s, ana, ben, cal = quiz({ "Ana", "Ben", "Cal" }, {
      { text = "Pick one", choices = { "A", "B", "C", "D" }, answer = right },
    }, { host_sees_answer = false })
    return { s = s, students = { ana, ben, cal } }
  end
  local one, three = make(1), make(3)
  local function same(when)
    for i = 1, 3 do
      local a, b = one.s:view(one.students[i]), three.s:view(three.students[i])
      expect(a.phase).to_be(b.phase)
      expect(a).to_equal(b)
      -- Events too, by name and data (seqs may differ).
      local ea, eb = one.s:events(one.students[i]), three.s:events(three.students[i])
      expect(#ea).to_be(#eb)
      for k = 1, #ea do
        expect(ea[k].name).to_be(eb[k].name)
        expect(ea[k].data).to_equal(eb[k].data)
      end
    end
    -- With host_sees_answer = false the projected host screen keeps it too.
    local ha, hb = one.s:view(one.s.host), three.s:view(three.s.host)
    ha.players, hb.players = nil, nil  -- (ids differ between the sessions)
    expect(ha).to_equal(hb)
  end
  local function both(f)
    f(one.s, one.students)
    f(three.s, three.students)
  end
  same("lobby")
  both(function(s) start(s) end)
  same("question open")
  both(function(s, st) s:advance(1500) answer(s, st[1], 1) end)  -- right in one, wrong in three
  same("Ana answered")
  both(function(s, st) s:advance(500) answer(s, st[2], 3) end)   -- wrong in one, right in three
  same("Ben answered")
  expect(one.s:view(one.students[1]).phase).to_be("question")
  -- The reveal tells them apart: this test compares something real.
  both(function(s, st) answer(s, st[3], 2) end)
  local a, b = one.s:view(one.students[1]), three.s:view(three.students[1])
  expect(a.phase).to_be("reveal")
  expect(a.choices[1].style).to_be("correct")
  expect(b.choices[3].style).to_be("correct")
  expect(a.score).to_be(925)
  expect(b.score).to_be(0)
end)

test("the host sees the answer during the question unless host_sees_answer = false", function()
  local s = quiz({ "Ana" })
  start(s)
  expect(s:view(s.host).choices[1].style).to_be("correct")
  local hidden = quiz({ "Ana" }, ONE, { host_sees_answer = false })
  start(hidden)
  for _, c in ipairs(hidden:view(hidden.host).choices) do
    expect(c.style).to_be_nil()
  end
end)

-- Removing a student ----------------------------------------------------------

test("a kicked student leaves the board and the results", function()
  local s, ana, ben = quiz({ "Ana", "Ben" }, TWO)
  start(s)
  answer(s, ana, 1)
  answer(s, ben, 1)
  expect(#s:view(ana).leaderboard).to_be(2)
  expect(s:act(s.host, "kick", { player = ben.id })).to_be(true)
  expect(s:view(ana).leaderboard).to_equal({
    { rank = 1, name = "Ana", score = 1000, highlight = true },
  })
  for _, p in ipairs(s:players()) do
    expect(p.name == "Ben").to_be(false)
  end
  -- Recess keeps them out under that name until the host lets them back in.
  local again, why = s:join("Ben")
  expect(again).to_be_nil()
  expect(why).to_be("the teacher removed you from this game; ask them to let you back in")
  s:act(s.host, "next")            -- question 2
  s:act(s.host, "next")            -- its reveal
  s:act(s.host, "next")            -- the podium
  expect(s:results().rows).to_equal({
    { rank = 1, name = "Ana", score = 1000, correct = 1 },
  })
end)

test("the host can let a removed student back in", function()
  local s, ana, ben = quiz({ "Ana", "Ben" })
  s:act(s.host, "kick", { player = ben.id })
  expect(s:view(s.host).buttons[2]).to_equal({ label = "Let Ben back in", action = "readmit", data = { name = "Ben" } })
  expect(s:act(s.host, "readmit", { name = "Ben" })).to_be(true)
  local again, why = s:join("Ben")
  expect(why).to_be_nil()
  expect(s:view(s.host).status).to_be("2 players joined")
end)

test("a kick during a question takes back the kicked student's answer", function()
  local s, ana, ben, cal = quiz({ "Ana", "Ben", "Cal" })
  start(s)
  answer(s, ben, 2)
  expect(s:view(s.host).choices[2].detail).to_be("1 answer")
  s:act(s.host, "kick", { player = ben.id })
  expect(s:view(s.host).choices[2].detail).to_be("0 answers")
  expect(s:view(ana).status).to_be("0 of 2 answered")
  answer(s, ana, 1)
  answer(s, cal, 1)             -- everyone left has answered: the reveal
  expect(s:view(ana).phase).to_be("reveal")
end)

test("kick is refused for the host and for nobody", function()
  local s, ana = quiz({ "Ana" })
  local ok, why = s:act(s.host, "kick", { player = s.host.id })
  expect(ok).to_be(false)
  expect(why).to_be("the host cannot be removed")
  ok, why = s:act(s.host, "kick", { player = "nobody" })
  expect(ok).to_be(false)
  expect(why).to_be("there is no player 'nobody' in this quiz")
  ok, why = s:act(s.host, "kick")
  expect(ok).to_be(false)
  expect(why).to_be("say who to remove: {player = id}")
end)

-- The podium --------------------------------------------------------------

test("the podium ends the quiz with rows {rank, name, score, correct}", function()
  local s, ana, ben, cal = quiz({ "Ana", "Ben", "Cal" }, TWO, { title = "Sums" })
  start(s)
  answer(s, ana, 1)                     -- 1000
  s:advance(5000)
  answer(s, ben, 1)                     -- 750
  answer(s, cal, 4)                     -- 0
  s:act(s.host, "next")
  answer(s, ana, 1)                     -- wrong: 0
  answer(s, ben, 2)                     -- 1000
  s:advance(LIMIT_MS)                   -- Cal gives no answer
  expect(s:results()).to_be_nil()
  s:act(s.host, "next")
  local results = s:results()
  expect(results.columns).to_equal({ "rank", "name", "score", "correct" })
  expect(results.rows).to_equal({
    { rank = 1, name = "Ben", score = 1750, correct = 2 },
    { rank = 2, name = "Ana", score = 1000, correct = 1 },
    { rank = 3, name = "Cal", score = 0, correct = 0 },
  })
  expect(results.title).to_be("Sums")
  expect(results.questions).to_be(2)
  expect(results.scored).to_be(2)
  local view = s:view(ana)
  expect(view.phase).to_be("podium")
  expect(view.title).to_be("Sums: final results")
  expect(view.banner.text).to_be("You finished 2nd of 3 with 1000 points!")
  expect(#view.podium).to_be(3)
  -- The quiz is over: nothing moves it any more.
  local ok, why = s:act(s.host, "next")
  expect(ok).to_be(false)
  expect(why).to_be("this game has finished")
end)

test("a backend can drive the quiz with events", function()
  local s, ana = quiz({ "Ana" })
  local ok, why = s:event("next")
  expect(ok).to_be(false)
  expect(why).to_be("the quiz has not started yet: press Start first")
  expect(s:event("start")).to_be(true)
  expect(s:view(ana).phase).to_be("question")
  expect(s:event("next")).to_be(true)
  expect(s:view(ana).phase).to_be("reveal")
  ok, why = s:event("shout")
  expect(ok).to_be(false)
  expect(why).to_be("unknown event 'shout'; expected start, next, skip or kick")
end)
