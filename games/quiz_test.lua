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

-- The first four columns of a results row (or of each row of a list): the
-- rows also have the per-question report columns (tested on their own).
local function summary(rows)
  local function four(r) return { rank = r.rank, name = r.name, score = r.score, correct = r.correct } end
  if rows.name then return four(rows) end
  local list = {}
  for i, r in ipairs(rows) do list[i] = four(r) end
  return list
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
  expect(summary(s:results().rows)).to_equal({
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
  expect(summary(s:results().rows)).to_equal({
    { rank = 1, name = "Ana", score = 2000, correct = 2 },
    { rank = 2, name = "Ben", score = 1000, correct = 1 },
  })
end)

test("an answer changes no other student's screen: the count is on the host's", function()
  local s, ana, ben, cal = quiz({ "Ana", "Ben", "Cal" })
  start(s)
  local before = s:view(ben)
  expect(before.status).to_be_nil()
  answer(s, ana, 1)
  expect(s:view(ben)).to_equal(before)
  expect(s:view(ana).status).to_be("Answer saved.")
  expect(s:view(s.host).status).to_be("1 of 3 answered")
end)

test("a join in the lobby changes no other student's screen: the list is on the host's", function()
  local s, ana = quiz({ "Ana" })
  local before = s:view(ana)
  expect(before.status).to_be_nil()
  local ben = s:join("Ben")
  expect(s:view(ana)).to_equal(before)
  expect(s:view(ben).text).to_be("You're in, Ben! Watch the main screen: the quiz starts soon.")
  expect(s:view(s.host).status).to_be("2 players joined")
end)

test("the answered count is of the students in the room", function()
  local s, ana, ben, cal = quiz({ "Ana", "Ben", "Cal" })
  start(s)
  answer(s, ana, 1)
  expect(s:view(s.host).status).to_be("1 of 3 answered")
  s:leave(ana)                     -- her answer stays, but she is gone
  expect(s:view(s.host).status).to_be("0 of 2 answered")
  local back = s:join("Ana")       -- and back, with her answer
  expect(s:view(back).status).to_be("Answer saved.")
  expect(s:view(s.host).status).to_be("1 of 3 answered")
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
  expect(summary(s:results().rows[1])).to_equal({ rank = 1, name = "Ana", score = 1000, correct = 1 })
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
  expect(summary(results.rows[1])).to_equal({ rank = 1, name = "Ana", score = 550, correct = 1 })
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
  expect(summary(s:results().rows)).to_equal({
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

test("generated names: the host lets a removed student back in by the name they typed", function()
  local s = session("quiz", { questions = ONE, time_limit = 10 }, { names = "generated" })
  local ana = s:join("Ana Lopez")
  s:act(s.host, "kick", { player = ana.id })
  local again, why = s:join("Ana Lopez")
  expect(again).to_be_nil()
  -- The button shows the name the class saw; it readmits the typed one.
  expect(s:view(s.host).buttons[2]).to_equal({
    label = "Let " .. ana.name .. " back in", action = "readmit", data = { name = "Ana Lopez" },
  })
  expect(s:act(s.host, "readmit", { name = "Ana Lopez" })).to_be(true)
  again, why = s:join("Ana Lopez")
  expect(why).to_be_nil()
  expect(#s:view(s.host).buttons).to_be(1)
end)

test("a student the host renamed who comes back under the name they typed gets their seat, and the host's name", function()
  local s, ana, ben = quiz({ "Ana", "Ben" })
  expect(s:act(s.host, "rename", { player = ben.id, name = "Student 2" })).to_be(true)
  start(s)
  answer(s, ben, 1)
  answer(s, ana, 2)
  s:leave(ben)
  local back, why = s:join("Ben")
  expect(why).to_be_nil()
  expect(s:view(back).score).to_be(1000)
  local names = {}
  for _, p in ipairs(s:players()) do names[#names + 1] = p.name end
  expect(names).to_equal({ "Host", "Ana", "Student 2" })
  expect(s:view(s.host).leaderboard[1]).to_equal({ rank = 1, name = "Student 2", score = 1000 })
end)

test("a kick during a question takes back the kicked student's answer", function()
  local s, ana, ben, cal = quiz({ "Ana", "Ben", "Cal" })
  start(s)
  answer(s, ben, 2)
  expect(s:view(s.host).choices[2].detail).to_be("1 answer")
  s:act(s.host, "kick", { player = ben.id })
  expect(s:view(s.host).choices[2].detail).to_be("0 answers")
  expect(s:view(s.host).status).to_be("0 of 2 answered")
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
  expect({ table.unpack(results.columns, 1, 4) }).to_equal({ "rank", "name", "score", "correct" })
  expect(summary(results.rows)).to_equal({
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
  expect(why).to_be("unknown event 'shout'; expected start, next, skip, close, kick or award")
end)

-- Question types ------------------------------------------------------------------
-- docs/lua-api.md §16 "Question types": one test file, every type's scoring.

-- A quiz of the one question `q` (10 s), students `names` joined, started.
local function one(q, names, extra)
  local s, a, b, c, d = quiz(names or { "Ana" }, { q }, extra)
  start(s)
  return s, a, b, c, d
end

local function refused(s, p, data, reason)
  local ok, why = s:act(p, "answer", data)
  expect(ok).to_be(false)
  expect(why).to_be(reason)
end

local function send(s, p, data)
  local ok, why = s:act(p, "answer", data)
  expect(why).to_be_nil()
  expect(ok).to_be(true)
end

local MAMMALS = { text = "Which are mammals?", choices = { "Whale", "Shark", "Bat", "Penguin" }, answer = { 1, 3 } }

test("several right answers: students tick and submit, and score only with exactly the right set", function()
  local s, ana, ben, cal, dee = one(MAMMALS, { "Ana", "Ben", "Cal", "Dee", "Eve" })
  local eve = s:players()[6]
  local view = s:view(ana)
  expect(view.select).to_equal({ action = "answer", min = 1, max = 4, label = "Submit" })
  local function tick(c, label) return { label = label, action = "answer", data = { choices = { c } } } end
  expect(view.choices).to_equal({ tick(1, "Whale"), tick(2, "Shark"), tick(3, "Bat"), tick(4, "Penguin") })
  send(s, ana, { choices = { 3, 1 } })       -- the right set, in any order: 1000
  s:advance(5000)
  send(s, ben, { choices = { 1 } })          -- one missing: 0
  send(s, cal, { choices = { 1, 2, 3 } })    -- one too many: 0
  send(s, eve, { choices = { 4, 1, 3 } })    -- the right ones and one more: 0
  expect(s:view(ana).select).to_be_nil()
  expect(s:view(ana).choices[1]).to_equal({ label = "Whale", style = "selected" })
  expect(s:view(ana).choices[2]).to_equal({ label = "Shark", style = "disabled" })
  expect(s:view(s.host).choices[1].detail).to_be("4 answers")
  expect(s:view(s.host).choices[2].detail).to_be("1 answer")
  send(s, dee, { choices = { 1, 3 } })       -- right, halfway: 750
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 1000 })
  expect(last(s, ben, "result")).to_equal({ correct = false, points = 0 })
  expect(last(s, cal, "result")).to_equal({ correct = false, points = 0 })
  expect(last(s, eve, "result")).to_equal({ correct = false, points = 0 })
  expect(last(s, dee, "result")).to_equal({ correct = true, points = 750 })
  expect(last(s, ana, "reveal")).to_equal({ number = 1, answer = { 1, 3 }, label = "Whale and Bat" })
  local styles = {}
  for i, c in ipairs(s:view(cal).choices) do styles[i] = c.style end
  expect(styles).to_equal({ "correct", "wrong", "correct", "disabled" })
  expect(s:view(ben).banner.text).to_be("Not quite: the answer was Whale and Bat")
end)

test("a list of one right answer is still ticked and submitted", function()
  local s, ana = one({ text = "Pick", choices = { "a", "b", "c" }, answer = { 2 } })
  expect(s:view(ana).select).to_equal({ action = "answer", min = 1, max = 3, label = "Submit" })
  send(s, ana, { choices = { 2 } })
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 1000 })
end)

test("a choice answer of the wrong shape is refused with what to send", function()
  local s, ana = one(MAMMALS)
  refused(s, ana, { choice = 1 }, "tick one or more answers and press Submit ({choices = {1, 3}})")
  refused(s, ana, { choices = {} }, "tick at least one answer")
  refused(s, ana, { choices = { 1, 5 } }, "pick answers from 1 to 4, got 5")
  refused(s, ana, { choices = { 1, 1 } }, "answer 1 is ticked twice")
  local s2, ben = one(ONE[1])
  refused(s2, ben, { choices = { 1 } }, "pick one of the answers, 1 to 4")
  refused(s2, ben, { text = "2" }, "pick one of the answers, 1 to 4")
end)

test("true or false: two buttons, True and False unless renamed", function()
  local s, ana, ben = one({ type = "truefalse", text = "The Earth is flat.", answer = false }, { "Ana", "Ben" })
  expect(s:view(ana).choices).to_equal({
    { label = "True", action = "answer", data = { choice = 1 } },
    { label = "False", action = "answer", data = { choice = 2 } },
  })
  send(s, ana, { choice = 2 })
  send(s, ben, { choice = 1 })
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 1000 })
  expect(last(s, ben, "result")).to_equal({ correct = false, points = 0 })
  expect(last(s, ana, "reveal")).to_equal({ number = 1, answer = 2, label = "False", type = "truefalse" })
  local fr = one({ type = "truefalse", text = "Paris est en France.", choices = { "Vrai", "Faux" }, answer = "vrai" })
  expect(fr:view(fr.host).choices[1]).to_equal({ label = "Vrai", detail = "0 answers", style = "correct" })
end)

local CAPITAL = { type = "type", text = "Largest city of Switzerland?", answer = { "Zürich", "Zurich" } }

test("a typed answer matches whatever its capitals, accents and spaces", function()
  local names = { "Ana", "Ben", "Cal", "Dee", "Eve" }
  local s, ana, ben, cal, dee = one(CAPITAL, names)
  expect(s:view(ana).input).to_equal({ action = "answer", placeholder = "Type your answer", max = 100 })
  send(s, ana, { text = "  ZURICH " })
  send(s, ben, { text = "zu\u{308}rich" })     -- the accent typed as a separate mark
  send(s, cal, { text = "Zúrich" })          -- another accent: folded too
  send(s, dee, { text = "Geneva" })
  expect(s:view(ana).input).to_be_nil()
  expect(s:view(ana).status).to_be("You answered: ZURICH.")
  -- The host sees the answers given, most first, the accepted ones marked.
  expect(s:view(s.host).bars).to_equal({
    { label = "ZURICH", value = 3, detail = "75%", style = "correct" },
    { label = "Geneva", value = 1, detail = "25%" },
  })
  expect(s:view(s.host).status).to_be("Accepted: Zürich / Zurich. 4 of 5 answered")
  s:act(s.host, "next")
  for _, p in ipairs({ ana, ben, cal }) do
    expect(last(s, p, "result")).to_equal({ correct = true, points = 1000 })
  end
  expect(last(s, dee, "result")).to_equal({ correct = false, points = 0 })
  expect(s:view(dee).banner.text).to_be("Not quite: the answer was Zürich")
  expect(last(s, ana, "reveal")).to_equal({ number = 1, answer = { "Zürich", "Zurich" }, label = "Zürich", type = "type" })
  expect(s:view(s.host).bars[2].style).to_be("wrong")
end)

test("folding covers Latin letters with accents, in both cases, and curly quotes", function()
  local cases = {
    { "São Paulo", "sao   paulo" }, { "Ærøskøbing", "AEROSKOBING" }, { "Łódź", "lodz" },
    { "Straße", "STRASSE" }, { "Œuvre", "oeuvre" }, { "Žižkov", "zizkov" }, { "Çanakkale", "canakkale" },
    { "Ħamrun", "hamrun" }, { "Þingvellir", "thingvellir" }, { "O'Neill", "O’Neill" },
  }
  for _, case in ipairs(cases) do
    local s, ana = one({ type = "type", text = "?", answer = case[1] })
    send(s, ana, { text = case[2] })
    expect(last(s, ana, "result")).to_equal({ correct = true, points = 1000 })
  end
end)

test("a typed answer of the wrong shape, empty or too long is refused", function()
  local s, ana = one(CAPITAL)
  refused(s, ana, { choice = 1 }, 'type your answer ({text = "..."})')
  refused(s, ana, { text = "   " }, "type your answer first")
  refused(s, ana, { text = ("x"):rep(101) }, "that is too long: at most 100 characters")
  send(s, ana, { text = ("é"):rep(100) })   -- 100 characters, 200 bytes: fine
end)

local BOIL = { type = "slider", text = "Water boils at?", min = 0, max = 200, step = 5, unit = "°C", answer = 100, tolerance = 20 }

test("a slider answer scores by closeness: full at the answer, 0 at the tolerance", function()
  for _, case in ipairs({
    { value = 100, after = 0, points = 1000, correct = true },
    { value = 95, after = 0, points = 750, correct = true },     -- 5 off of 20: 3/4
    { value = 114, after = 0, points = 300, correct = true },    -- 14 off: 6/20
    { value = 90, after = 5000, points = 375, correct = true },  -- 750 speed, half as close
    { value = 120, after = 0, points = 0, correct = false },     -- at the tolerance
    { value = 0, after = 0, points = 0, correct = false },
  }) do
    local s, ana = one(BOIL)
    s:advance(case.after)
    send(s, ana, { value = case.value })
    expect(last(s, ana, "result")).to_equal({ correct = case.correct, points = case.points })
  end
end)

test("a slider's tolerance is a tenth of its range unless given", function()
  local s, ana = one({ type = "slider", text = "?", min = 1900, max = 2000, answer = 1969 })
  send(s, ana, { value = 1964 })            -- 5 off of 10
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 500 })
  expect(s:view(ana).banner.text).to_be("Close! +500 points: the answer was 1969")
  local s2, ben = one({ type = "slider", text = "?", min = 0, max = 10, step = 0.5, answer = 3.5, tolerance = 0 })
  send(s2, ben, { value = 3.5 })
  expect(last(s2, ben, "result")).to_equal({ correct = true, points = 1000 })
end)

test("a slider shows its range to students and the answer only at the reveal", function()
  local s, ana = one(BOIL, { "Ana", "Ben" })
  expect(s:view(ana).slider).to_equal({ action = "answer", min = 0, max = 200, step = 5, unit = "°C", value = 100, label = "Submit" })
  expect(s:view(s.host).slider).to_equal({ min = 0, max = 200, step = 5, unit = "°C", answer = 100 })
  refused(s, ana, { value = 201 }, "pick a number from 0 to 200, got 201")
  refused(s, ana, { value = "100" }, "pick a number from 0 to 200 ({value = n})")
  refused(s, ana, { choice = 1 }, "pick a number from 0 to 200 ({value = n})")
  send(s, ana, { value = 105 })
  expect(s:view(ana).slider).to_equal({ min = 0, max = 200, step = 5, unit = "°C", value = 105 })
  s:act(s.host, "next")
  expect(last(s, ana, "reveal")).to_equal({ number = 1, answer = 100, label = "100 °C", type = "slider" })
  expect(s:view(ana).slider).to_equal({ min = 0, max = 200, step = 5, unit = "°C", value = 105, answer = 100 })
  expect(s:view(ana).banner).to_equal({ text = "Close! +750 points: the answer was 100 °C", style = "correct" })
end)

local PLANETS = { type = "order", text = "Nearest the Sun first", items = { "Mercury", "Venus", "Earth", "Mars" } }

-- The `order` data that puts the items shown to `p` into `wanted` (labels).
local function order_of(s, p, wanted)
  local shown = s:view(p).order.items
  local order = {}
  for i, label in ipairs(wanted) do
    for k, item in ipairs(shown) do
      if item.label == label then order[i] = k end
    end
  end
  return order
end

test("order: all in place scores, anything else 0", function()
  local s, ana, ben = one(PLANETS, { "Ana", "Ben" })
  send(s, ana, { order = order_of(s, ana, PLANETS.items) })
  s:advance(2000)
  send(s, ben, { order = order_of(s, ben, { "Mercury", "Venus", "Mars", "Earth" }) })
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 1000 })
  expect(last(s, ben, "result")).to_equal({ correct = false, points = 0 })
  expect(s:view(ben).order).to_equal({ items = {
    { label = "Mercury", style = "correct" }, { label = "Venus", style = "correct" },
    { label = "Mars", style = "wrong" }, { label = "Earth", style = "wrong" },
  } })
  expect(last(s, ana, "reveal")).to_equal({
    number = 1, answer = PLANETS.items, label = "Mercury, Venus, Earth, Mars", type = "order",
  })
end)

test("order: the items are shown shuffled, never in the right order", function()
  local seen = {}
  for _ = 1, 12 do
    local s, ana = one({ type = "order", text = "?", items = { "a", "b", "c" } })
    local view = s:view(ana)
    expect(view.order.action).to_be("answer")
    local labels = {}
    for i, item in ipairs(view.order.items) do
      expect(item.style).to_be_nil()
      labels[i] = item.label
    end
    local shown = table.concat(labels)
    expect(shown == "abc").to_be(false)
    seen[shown] = true
    -- The host's screen (with the answer) shows the right order.
    expect(s:view(s.host).order.items[1]).to_equal({ label = "a", style = "correct" })
  end
  local kinds = 0
  for _ in pairs(seen) do kinds = kinds + 1 end
  expect(kinds).to_be_at_least(2)   -- shuffled, not one fixed order
end)

test("an order answer of the wrong shape is refused", function()
  local s, ana = one(PLANETS)
  local how = "put all 4 items in order: {order = {3, 1, 2, ...}}, the places of the items as shown, in your order"
  refused(s, ana, { order = { 1, 2, 3 } }, how)
  refused(s, ana, { order = { 1, 2, 3, 3 } }, how)
  refused(s, ana, { order = { 1, 2, 3, 5 } }, how)
  refused(s, ana, { choice = 1 }, how)
end)

local COLOURS = { type = "poll", text = "Favourite colour?", choices = { "Red", "Green", "Blue" } }

test("a poll counts votes live for the host, scores nothing and tells nobody they were wrong", function()
  local s, ana, ben, cal = one(COLOURS, { "Ana", "Ben", "Cal" })
  expect(s:view(ana).choices[3]).to_equal({ label = "Blue", action = "answer", data = { choice = 3 } })
  send(s, ana, { choice = 3 })
  send(s, ben, { choice = 3 })
  expect(s:view(s.host).bars).to_equal({
    { label = "Red", value = 0, detail = "0%" },
    { label = "Green", value = 0, detail = "0%" },
    { label = "Blue", value = 2, detail = "100%" },
  })
  expect(s:view(ana).bars).to_be_nil()       -- students see the votes at the reveal
  send(s, cal, { choice = 1 })
  expect(s:view(ana).phase).to_be("reveal")
  expect(#s:events(ana, "result")).to_be(0)
  expect(last(s, ana, "reveal")).to_equal({ number = 1, type = "poll" })
  expect(s:view(ana).bars[3]).to_equal({ label = "Blue", value = 2, detail = "67%", style = "selected" })
  expect(s:view(ana).banner).to_be_nil()
  expect(s:view(ana).score).to_be(0)
  expect(s:view(s.host).status).to_be("3 of 3 players voted")
  s:act(s.host, "next")
  expect(summary(s:results().rows[1])).to_equal({ rank = 1, name = "Ana", score = 0, correct = 0 })
end)

local LESSON = { type = "cloud", text = "One word for today?", words = 2 }

test("a cloud counts words folded, so Paris and paris are one word", function()
  local s, ana, ben, cal = one(LESSON, { "Ana", "Ben", "Cal" })
  expect(s:view(ana).input).to_equal({ action = "answer", placeholder = "Type up to 2 words, one at a time", max = 30 })
  send(s, ana, { text = "Paris" })
  expect(s:view(ana).input.placeholder).to_be("Another word (1 more)")
  expect(s:view(ana).status).to_be("You sent Paris.")
  send(s, ben, { text = " PARIS  " })
  send(s, ben, { text = "Nice" })
  send(s, ana, { text = "Bern" })
  expect(s:view(ana).input).to_be_nil()
  expect(s:view(s.host).cloud).to_equal({
    { text = "Paris", count = 2 }, { text = "Nice", count = 1 }, { text = "Bern", count = 1 },
  })
  expect(s:view(ana).cloud).to_be_nil()
  expect(s:view(ana).phase).to_be("question")  -- Cal has not sent anything yet
  send(s, cal, { text = "nice" })
  expect(s:view(ana).phase).to_be("question")  -- Cal may send one more
  send(s, cal, { text = "café" })
  expect(s:view(ana).phase).to_be("reveal")    -- everyone sent all their words
  expect(s:view(cal).cloud).to_equal({
    { text = "Paris", count = 2 }, { text = "Nice", count = 2 }, { text = "Bern", count = 1 }, { text = "café", count = 1 },
  })
  expect(#s:events(ana, "result")).to_be(0)
  expect(s:view(ana).score).to_be(0)
  expect(s:view(s.host).status).to_be("3 of 3 players sent words")
end)

test("a cloud refuses a word sent twice, a word too many and a word too long", function()
  local s, ana = one(LESSON, { "Ana", "Ben" })
  send(s, ana, { text = "Paris" })
  refused(s, ana, { text = "paris" }, "you already sent 'paris'")
  refused(s, ana, { text = ("x"):rep(31) }, "that is too long: at most 30 characters")
  refused(s, ana, { choice = 1 }, 'type a word ({text = "..."})')
  send(s, ana, { text = "Rome" })
  refused(s, ana, { text = "Oslo" }, "you already sent 2 words")
end)

test("a kick takes back a student's typed answer and cloud words", function()
  local s, ana, ben = one(LESSON, { "Ana", "Ben", "Cal" })
  send(s, ana, { text = "Paris" })
  send(s, ben, { text = "Paris" })
  send(s, ben, { text = "Rome" })
  s:act(s.host, "kick", { player = ben.id })
  expect(s:view(s.host).cloud).to_equal({ { text = "Paris", count = 1 } })
end)

test("points multiply a question's score: 2 doubles, 0 gives none but still counts as right", function()
  local s, ana = quiz({ "Ana" }, {
    { text = "double", choices = { "a", "b" }, answer = 1, points = 2 },
    { text = "none", choices = { "a", "b" }, answer = 1, points = 0 },
    { type = "slider", text = "double slider", min = 0, max = 100, answer = 50, tolerance = 10, points = 2 },
    { type = "poll", text = "a poll never scores", choices = { "a", "b" }, points = 2 },
  })
  start(s)
  answer(s, ana, 1)
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 2000 })
  s:act(s.host, "next")
  s:advance(5000)
  answer(s, ana, 1)
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 0 })
  s:act(s.host, "next")
  s:advance(2500)
  send(s, ana, { value = 53 })              -- speed 875, 7/10 close, doubled: 1225
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 1225 })
  s:act(s.host, "next")
  answer(s, ana, 1)
  s:act(s.host, "next")
  expect(summary(s:results().rows[1])).to_equal({ rank = 1, name = "Ana", score = 3225, correct = 3 })
end)

test("a question is checked when the session starts, with its number and what is wrong", function()
  local function fails(q, message)
    local ok, err = pcall(session, "quiz", { questions = { ONE[1], q } })
    expect(ok).to_be(false)
    expect(tostring(err)).to_contain("question 2: " .. message)
  end
  fails({ type = "essay", text = "?" }, "unknown question type 'essay': use choice, truefalse, type, slider, order, poll or cloud")
  fails({ text = " ", choices = { "a", "b" }, answer = 1 }, "the question is empty")
  fails({ text = "?", choices = { "a" }, answer = 1 }, "a question needs at least 2 answers, got 1")
  fails({ text = "?", choices = { "a", "b", "c", "d", "e", "f", "g" }, answer = 1 }, "a question may have at most 6 answers, got 7")
  fails({ text = "?", choices = { "a", "b" }, answer = 3 }, "the correct answer must be 1–2, got 3")
  fails({ text = "?", choices = { "a", "b" }, answer = { 1, 4 } }, "the correct answer must be 1–2, got 4")
  fails({ text = "?", choices = { "a", "b" } }, "the correct answer is missing: give the number of the right answer, 1–2")
  fails({ text = "?", choices = { "a", "b" }, answer = 1, time = 0 }, "the time must be a number of seconds, above 0 and at most 3600, got 0")
  fails({ text = "?", choices = { "a", "b" }, answer = 1, points = 11 }, "the points must be 0 (no points), 1 (standard) or 2 (double), or another multiplier up to 10, got 11")
  fails({ type = "truefalse", text = "?", answer = "maybe" }, "the correct answer must be true or false, got 'maybe'")
  fails({ type = "type", text = "?" }, "the correct answer is missing: give the accepted answer(s)")
  fails({ type = "slider", text = "?", min = 0, max = 10, answer = 11 }, "the correct answer must be a number from 0 to 10, got 11")
  fails({ type = "slider", text = "?", min = 5, max = 5, answer = 5 }, "the slider's min must be below its max, got 5 and 5")
  fails({ type = "order", text = "?", items = { "a" } }, "a question needs at least 2 items, got 1")
  fails({ type = "order", text = "?", items = { "a", "b", "A" } }, "the item 'A' is there twice: each must be different")
  fails({ type = "cloud", text = "?", words = 11 }, "the words per student must be a whole number from 1 to 10, got 11")
end)

-- Secrecy, every type -------------------------------------------------------------

-- Two quizzes of one question that differ only in the answer: until the
-- reveal, each student sees exactly the same in both, whatever they answer.
local function same_until_reveal(q1, q2, plays)
  local function make(q)
    local s, ana, ben = quiz({ "Ana", "Ben" }, { q }, { host_sees_answer = false })
    return { s = s, students = { ana, ben } }
  end
  local one_, two = make(q1), make(q2)
  local function same()
    for i = 1, 2 do
      expect(one_.s:view(one_.students[i])).to_equal(two.s:view(two.students[i]))
      local ea, eb = one_.s:events(one_.students[i]), two.s:events(two.students[i])
      expect(#ea).to_be(#eb)
      for k = 1, #ea do expect(ea[k].data).to_equal(eb[k].data) end
    end
    local ha, hb = one_.s:view(one_.s.host), two.s:view(two.s.host)
    ha.players, hb.players = nil, nil
    expect(ha).to_equal(hb)
  end
  start(one_.s)
  start(two.s)
  same()
  for _, play in ipairs(plays) do
    for _, x in ipairs({ one_, two }) do
      x.s:advance(700)
      send(x.s, x.students[play[1]], play[2])
    end
    if one_.s:view(one_.students[1]).phase == "question" then same() end
  end
  -- The reveal tells them apart: the comparison was of something real.
  one_.s:act(one_.s.host, "next")
  two.s:act(two.s.host, "next")
  local a, b = one_.s:view(one_.students[1]), two.s:view(two.students[1])
  expect(a.phase).to_be("reveal")
  expect(a.banner.text == b.banner.text).to_be(false)
end

test("no student view gives away a choice question's right answers before the reveal", function()
  same_until_reveal(
    { text = "?", choices = { "a", "b", "c" }, answer = { 1, 3 } },
    { text = "?", choices = { "a", "b", "c" }, answer = { 2 } },
    { { 1, { choices = { 1, 3 } } } })
end)

test("no student view gives away a true/false answer before the reveal", function()
  same_until_reveal(
    { type = "truefalse", text = "?", answer = true },
    { type = "truefalse", text = "?", answer = false },
    { { 1, { choice = 1 } } })
end)

test("no student view gives away a typed answer before the reveal", function()
  same_until_reveal(
    { type = "type", text = "?", answer = "Paris" },
    { type = "type", text = "?", answer = { "Rome", "Roma" } },
    { { 1, { text = "paris" } } })
end)

test("no student view gives away a slider's answer before the reveal", function()
  same_until_reveal(
    { type = "slider", text = "?", min = 0, max = 100, answer = 50 },
    { type = "slider", text = "?", min = 0, max = 100, answer = 7 },
    { { 1, { value = 50 } } })
end)

test("no student view of an order question carries a style or the answer before the reveal", function()
  local s, ana, ben = one(PLANETS, { "Ana", "Ben" })
  local function clean(v)
    expect(v.banner).to_be_nil()
    for _, item in ipairs(v.order.items) do expect(item.style).to_be_nil() end
  end
  clean(s:view(ana))
  send(s, ana, { order = order_of(s, ana, PLANETS.items) })
  clean(s:view(ana))
  clean(s:view(ben))
  expect(#s:events(ana, "result")).to_be(0)
  expect(#s:events(ana, "reveal")).to_be(0)
  local hidden = one(PLANETS, { "Ana" }, { host_sees_answer = false })
  for _, item in ipairs(hidden:view(hidden.host).order.items) do expect(item.style).to_be_nil() end
end)

-- Spreadsheets ------------------------------------------------------------------
-- games/NAME.quiz.csv is read by the game table's `sheet`. A test cannot call
-- it directly, so these hand the same rows to a session as params.sheet,
-- which goes through the very same reader (and its check).

-- {7, "a", "b"} -> {row = 7, cells = {"a", "b"}}: a row as params carry it.
local function rows(list)
  local out = {}
  for i, r in ipairs(list) do
    out[i] = { row = r[1], cells = { table.unpack(r, 2) } }
  end
  return out
end

local function from_sheet(list, extra, file)
  local params = { sheet = { file = file or "capitals.quiz.csv", rows = rows(list) } }
  for k, v in pairs(extra or {}) do params[k] = v end
  return session("quiz", params)
end

-- The problem a sheet is refused with, as `file:row: message`.
local function sheet_problem(list, file)
  local ok, err = pcall(session, "quiz", { sheet = { file = file or "capitals.quiz.csv", rows = rows(list) } })
  expect(ok).to_be(false)
  local text = tostring(err)
  return text:match('session%("quiz"%): ([^\n]*)') or text
end

-- Kahoot's quiz template, as its xlsx comes: instructions, an index column,
-- its headings, numbered rows.
local KAHOOT = {
  { 1, "", "Quiz template" },
  { 2, "", "Add questions, at least two answer alternatives, time limit and choose correct answers (at least one). Have fun creating your awesome quiz!" },
  { 3, "", "Remember: questions can have a maximum of 120 characters and answers can have 75 characters max. If several answers are correct, separate them with a comma." },
  { 8, "", "Question - max 120 characters", "Answer 1 - max 75 characters", "Answer 2 - max 75 characters",
    "Answer 3 - max 75 characters", "Answer 4 - max 75 characters",
    "Time limit (sec) – 5, 10, 20, 30, 60, 90, 120, or 240 secs", "Correct answer(s) - choose at least one" },
  { 9, "1", "What is the capital of France?", "Berlin", "Madrid", "Paris", "Rome", "20", "3" },
  { 10, "2", "Which of these are prime?", "2", "4", "5", "9", "30", "1,3" },
  { 10, "2", "Which of these are even?", "2", "4", "5", "9", "30", "1.2" },  -- 1,2 taken for a decimal
  { 11, "3", "Is the Earth flat?", "Yes", "No", "", "", "5", "2" },
  { 12, "4", "Which is blue?", "Grass", "Sky", "", "Sea", "20", "2,4" },   -- answer 3 left empty
  { 13, "5", "", "", "", "", "", "", "" },
}

-- The host's choice labels, with "*" after the ones shown as right.
local function marked(s)
  local out = {}
  for i, c in ipairs(s:view(s.host).choices) do
    out[i] = c.label .. (c.style == "correct" and "*" or "")
  end
  return out
end

local function seconds_left(s, p)
  return (s:view(p).timer.ends_at - s:now()) / 1000
end

test("a sheet in Kahoot's template reads as it is", function()
  local s = from_sheet(KAHOOT)
  expect(s:view(s.host).title).to_be("Capitals")
  local ana = s:join("Ana")
  start(s)
  expect(s:view(s.host).text).to_be("What is the capital of France?")
  expect(marked(s)).to_equal({ "Berlin", "Madrid", "Paris*", "Rome" })
  expect(seconds_left(s, ana)).to_be(20)
  s:act(s.host, "skip")
  expect(marked(s)).to_equal({ "2*", "4", "5*", "9" })
  expect(s:view(ana).select.action).to_be("answer")
  expect(seconds_left(s, ana)).to_be(30)
  s:act(s.host, "skip")
  expect(marked(s)).to_equal({ "2*", "4*", "5", "9" })
  s:act(s.host, "skip")
  expect(marked(s)).to_equal({ "Yes", "No*" })
  expect(seconds_left(s, ana)).to_be(5)
  s:act(s.host, "skip")
  expect(marked(s)).to_equal({ "Grass", "Sky*", "Sea*" })  -- "4" is the column Answer 4
  s:act(s.host, "skip")                       -- the empty numbered row is no question
  expect(s:view(ana).phase).to_be("podium")
end)

local OWN = {
  { 1, "title", "Science review" },
  { 2, "Type", "Question", "Choice 1", "Choice 2", "Choice 3", "Choice 4", "Correct", "Time", "Points",
    "Min", "Max", "Step", "Unit", "Tolerance", "Words", "Image" },
  { 3, "", "Capital of France?", "Berlin", "Paris", "Rome", "", "Paris", "20" },
  { 4, "truefalse", "The Sun is a star.", "", "", "", "", "TRUE", "10 sec" },
  { 5, "type", "Largest city of Switzerland?", "", "", "", "", "Zürich | Zurich", "30" },
  { 6, "slider", "Water boils at?", "", "", "", "", "100", "", "2", "0", "200", "5", "°C", "20" },
  { 7, "order", "Nearest the Sun first", "Mercury", "Venus", "Earth", "Mars" },
  { 8, "poll", "Favourite colour?", "Red", "Green", "Blue" },
  { 9, "Word cloud", "One word for today?", "", "", "", "", "", "", "", "", "", "", "", "", "1" },
  { 10, "Multiple choice", "Which are mammals?", "Whale", "Shark", "Bat", "", "A, C", "", "double", "", "", "", "", "", "", "https://example.org/whale.png" },
}

test("a sheet in the quiz's own layout gives every type", function()
  local s = from_sheet(OWN)
  expect(s:view(s.host).title).to_be("Science review")
  local ana, ben = s:join("Ana"), s:join("Ben")
  start(s)
  local function kind() return last(s, ana, "question").type end
  expect(kind()).to_be("choice")
  expect(marked(s)).to_equal({ "Berlin", "Paris*", "Rome" })
  s:act(s.host, "skip")
  expect(kind()).to_be("truefalse")
  expect(marked(s)).to_equal({ "True*", "False" })
  expect(seconds_left(s, ana)).to_be(10)
  s:act(s.host, "skip")
  expect(kind()).to_be("type")
  send(s, ana, { text = "zurich" })
  expect(s:view(s.host).status).to_be("Accepted: Zürich / Zurich. 1 of 2 answered")
  s:act(s.host, "skip")
  expect(kind()).to_be("slider")
  expect(s:view(s.host).slider).to_equal({ min = 0, max = 200, step = 5, unit = "°C", answer = 100 })
  send(s, ana, { value = 95 })                -- 5 off of 20, double points: 1500
  send(s, ben, { value = 0 })
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 1500 })
  s:act(s.host, "next")
  expect(kind()).to_be("order")
  expect(#s:view(ana).order.items).to_be(4)
  s:act(s.host, "skip")
  expect(kind()).to_be("poll")
  expect(#s:view(s.host).bars).to_be(3)
  s:act(s.host, "skip")
  expect(kind()).to_be("cloud")
  send(s, ana, { text = "atoms" })
  expect(s:view(ana).input).to_be_nil()        -- one word each
  s:act(s.host, "skip")
  expect(kind()).to_be("choice")
  expect(marked(s)).to_equal({ "Whale*", "Shark", "Bat*" })
  expect(s:view(ana).image).to_be("https://example.org/whale.png")
  send(s, ana, { choices = { 1, 3 } })
  send(s, ben, { choices = { 1 } })
  expect(last(s, ana, "result")).to_equal({ correct = true, points = 2000 })
end)

test("a sheet with one `choices` column, answers separated by |", function()
  local s = from_sheet({
    { 1, "question", "choices", "correct" },
    { 2, "Capital of Italy?", "Milan | Rome |Turin", "2" },
  }, nil, "world_capitals.quiz.csv")
  expect(s:view(s.host).title).to_be("World capitals")
  s:join("Ana")
  start(s)
  expect(marked(s)).to_equal({ "Milan", "Rome*", "Turin" })
end)

test("a host's own params win over the sheet's", function()
  local s = from_sheet(OWN, { title = "Friday quiz", time_limit = 3 })
  expect(s:view(s.host).title).to_be("Friday quiz")
  local ana = s:join("Ana")
  start(s)
  expect(seconds_left(s, ana)).to_be(3)
end)

test("a broken sheet is refused with its row and what to fix", function()
  local HEAD = { 1, "question", "answer 1", "answer 2", "answer 3", "answer 4", "time", "correct" }
  local function problem(row) return sheet_problem({ HEAD, row }) end
  expect(sheet_problem({ { 1, "prompt", "answer 1", "answer 2", "correct" }, { 2, "2 + 2?", "4", "5", "1" } }))
    .to_be("capitals.quiz.csv: there is no row of headings with a 'question' column: put headings such as question, choice 1, choice 2, correct above the questions")
  expect(sheet_problem({ HEAD })).to_be("capitals.quiz.csv: there are no questions under the headings")
  expect(problem({ 7, "", "a", "b", "", "", "20", "1" })).to_be("capitals.quiz.csv:7: the question is empty")
  expect(problem({ 7, "2 + 2?", "3", "4", "5", "6", "20", "5" })).to_be("capitals.quiz.csv:7: the correct answer must be 1–4, got 5")
  expect(problem({ 7, "2 + 2?", "3", "4", "5", "6", "20", "two" })).to_be("capitals.quiz.csv:7: the correct answer must be 1–4, got 'two'")
  expect(problem({ 7, "2 + 2?", "3", "4", "5", "6", "20", "" })).to_be("capitals.quiz.csv:7: the correct answer is missing: give the number of the right answer, 1–4")
  expect(problem({ 7, "2 + 2?", "4", "", "", "", "20", "1" })).to_be("capitals.quiz.csv:7: a question needs at least 2 answers, got 1")
  expect(problem({ 7, "2 + 2?", "3", "4", "", "", "20", "3" })).to_be("capitals.quiz.csv:7: the correct answer is 3, but answer 3 is empty")
  expect(problem({ 7, "2 + 2?", "3", "4", "", "", "soon", "2" })).to_be("capitals.quiz.csv:7: the time must be a number of seconds, above 0 and at most 3600, got 'soon'")
  expect(problem({ 7, "2 + 2?", "3", "4", "", "", "-5", "2" })).to_be("capitals.quiz.csv:7: the time must be a number of seconds, above 0 and at most 3600, got -5")
  local TYPED = { 1, "type", "question", "choice 1", "choice 2", "correct", "min", "max" }
  local function typed(row) return sheet_problem({ TYPED, row }) end
  expect(typed({ 4, "essay", "Why?" })).to_be("capitals.quiz.csv:4: unknown question type 'essay': use choice, truefalse, type, slider, order, poll or cloud")
  expect(typed({ 4, "truefalse", "Flat?", "", "", "maybe" })).to_be("capitals.quiz.csv:4: the correct answer must be true or false, got 'maybe'")
  expect(typed({ 4, "type", "Capital of Peru?" })).to_be("capitals.quiz.csv:4: the correct answer is missing: give the accepted answer(s)")
  expect(typed({ 4, "slider", "Year?", "", "", "2050", "1900", "2000" })).to_be("capitals.quiz.csv:4: the correct answer must be a number from 1900 to 2000, got 2050")
  expect(typed({ 4, "slider", "Year?", "", "", "1950", "1900", "lots" })).to_be("capitals.quiz.csv:4: the slider's max must be a number, got 'lots'")
  expect(typed({ 4, "order", "Sort", "only one" })).to_be("capitals.quiz.csv:4: a question needs at least 2 items, got 1")
  -- The first problem is the one reported, with its own row.
  expect(sheet_problem({ TYPED, { 4, "", "Fine?", "yes", "no", "1" }, { 9, "poll", "Vote", "alone" } }))
    .to_be("capitals.quiz.csv:9: a question needs at least 2 answers, got 1")
end)

-- A CSV text -> rows as above (quoted cells may hold commas and "").
local function csv(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local cells, i = {}, 1
    while i <= #line + 1 do
      if line:sub(i, i) == '"' then
        local cell, j = "", i + 1
        while true do
          local q = line:find('"', j, true)
          if line:sub(q + 1, q + 1) == '"' then
            cell, j = cell .. line:sub(j, q), q + 2
          else
            cell, i = cell .. line:sub(j, q - 1), q + 2
            break
          end
        end
        cells[#cells + 1] = cell
      else
        local comma = line:find(",", i, true) or #line + 1
        cells[#cells + 1] = line:sub(i, comma - 1)
        i = comma + 1
      end
    end
    out[#out + 1] = { #out + 1, table.unpack(cells) }
  end
  return out
end

test("the example sheet of docs/lua-api.md reads as it says", function()
  local s = from_sheet(csv([[
title,Science review
type,question,choice 1,choice 2,choice 3,choice 4,correct,time,points,min,max,step,unit,tolerance,words
,Capital of France?,Berlin,Paris,Rome,,2,20
truefalse,The Sun is a star.,,,,,true,10
type,Largest city of Switzerland?,,,,,Zürich|Zurich,30
slider,Water boils at?,,,,,100,,2,0,200,5,°C,20
order,Nearest the Sun first,Mercury,Venus,Earth,Mars
poll,Favourite colour?,Red,Green,Blue
cloud,One word for today?,,,,,,,,,,,,,1
multiple choice,Which are mammals?,Whale,Shark,Bat,,"1,3",,double
]]))
  expect(s:view(s.host).title).to_be("Science review")
  local ana = s:join("Ana")
  start(s)
  local kinds = {}
  for i = 1, 8 do
    kinds[i] = last(s, ana, "question").type
    if i == 1 then expect(marked(s)).to_equal({ "Berlin", "Paris*", "Rome" }) end
    if i == 8 then expect(marked(s)).to_equal({ "Whale*", "Shark", "Bat*" }) end
    s:act(s.host, "skip")
  end
  expect(kinds).to_equal({ "choice", "truefalse", "type", "slider", "order", "poll", "cloud", "choice" })
end)

test("odd answer data is refused for every type, never an error", function()
  local odd = {
    "x", 5, {}, { choice = "x" }, { choice = 1.5 }, { choices = "1,3" }, { choices = { {} } },
    { text = 5 }, { text = {} }, { value = 0 / 0 }, { value = 1 / 0 }, { order = { 1.5, 2, 3, 4 } },
    { order = "1234" },
  }
  for _, q in ipairs({ MAMMALS, CAPITAL, BOIL, PLANETS, LESSON, { type = "truefalse", text = "?", answer = true } }) do
    local s, ana = one(q)
    for _, data in ipairs(odd) do
      local ok, why = s:act(ana, "answer", data)
      expect(ok).to_be(false)
      expect(type(why)).to_be("string")
    end
    expect(s:view(ana).phase).to_be("question")
  end
end)

-- Teams ---------------------------------------------------------------------

-- The host's lobby list as "name: detail" lines.
local function roster_lines(s)
  local lines = {}
  for i, p in ipairs(s:view(s.host).players or {}) do lines[i] = p.name .. ": " .. tostring(p.detail) end
  return lines
end

test("teams: students are balanced into the smallest team as they join, ties to the first", function()
  local s = quiz({ "A1", "B2", "C3", "D4", "E5", "F6", "G7" }, ONE, { teams = 3 })
  expect(roster_lines(s)).to_equal({
    "A1: Red", "B2: Blue", "C3: Green", "D4: Red", "E5: Blue", "F6: Green", "G7: Red",
  })
  local g7 = s:players()[8]
  expect(s:view(g7).text).to_contain("You are on team Red.")
  expect(s:view(s.host).rename).to_be("rename")
  -- Named teams, and wrong params.
  local n = quiz({ "Ana", "Ben" }, ONE, { teams = { "Lions", "Tigers" } })
  expect(roster_lines(n)).to_equal({ "Ana: Lions", "Ben: Tigers" })
end)

test("teams: team_choice lets students pick in the lobby, never unbalancing by more than 1", function()
  local s, ana, ben, cy, dan = quiz({ "Ana", "Ben", "Cy", "Dan" }, ONE,
    { teams = { "Red", "Blue" }, team_choice = true })
  expect(roster_lines(s)).to_equal({ "Ana: no team yet", "Ben: no team yet", "Cy: no team yet", "Dan: no team yet" })
  expect(s:view(ana).choices).to_equal({
    { label = "Red", detail = "0 players", action = "team", data = { team = 1 } },
    { label = "Blue", detail = "0 players", action = "team", data = { team = 2 } },
  })
  expect(s:act(ana, "team", { team = 1 })).to_be(true)
  local ok, why = s:act(ben, "team", { team = 1 })
  expect(ok).to_be(false)
  expect(why).to_be("Red has 1 player and Blue 0: pick a smaller team (teams may differ by at most 1)")
  expect(s:act(ben, "team", { team = 2 })).to_be(true)
  expect(s:act(cy, "team", { team = 1 })).to_be(true)
  ok, why = s:act(dan, "team", { team = 1 })
  expect(why).to_be("Red has 2 players and Blue 1: pick a smaller team (teams may differ by at most 1)")
  -- Ana may move: without her, Red and Blue have 1 each.
  expect(s:act(ana, "team", { team = 2 })).to_be(true)
  expect(s:view(ana).choices[2]).to_equal(
    { label = "Blue", detail = "2 players", action = "team", data = { team = 2 }, style = "selected" })
  expect(s:view(ana).text).to_contain("You are on team Blue.")
  ok, why = s:act(s.host, "team", { team = 1 })
  expect(why).to_be("the host is not on a team")
  -- Dan never picked: the start puts him in the smallest team.
  start(s)
  ok, why = s:act(cy, "team", { team = 2 })
  expect(why).to_be("teams are picked in the lobby, before the start")
  s:act(s.host, "next")
  s:act(s.host, "next")
  local teams = {}
  for _, r in ipairs(s:results().rows) do teams[r.name] = r.team end
  expect(teams).to_equal({ Ana = "Blue", Ben = "Blue", Cy = "Red", Dan = "Red" })
end)

test("teams: a team's score is its members' average, rounded down; board at the reveal, team podium", function()
  local s, ana, ben, cy, dan, eve = quiz({ "Ana", "Ben", "Cy", "Dan", "Eve" }, ONE, { teams = 2 })
  -- Red: Ana, Cy, Eve. Blue: Ben, Dan.
  start(s)
  answer(s, ana, 1)                -- 1000
  s:advance(2500)
  answer(s, ben, 1)                -- 875
  s:advance(2500)
  answer(s, cy, 1)                 -- 750
  answer(s, dan, 2)                -- wrong: 0
  s:advance(5000)                  -- Eve never answers: the time is up
  expect(s:view(ana).phase).to_be("reveal")
  -- Red (1000 + 750 + 0) / 3 = 583.33 -> 583; Blue (875 + 0) / 2 = 437.5 -> 437.
  expect(s:view(ana).leaderboard).to_equal({
    { rank = 1, name = "Red", score = 583, highlight = true },
    { rank = 2, name = "Blue", score = 437 },
  })
  expect(s:view(ben).leaderboard).to_equal({
    { rank = 1, name = "Red", score = 583 },
    { rank = 2, name = "Blue", score = 437, highlight = true },
  })
  expect(s:view(s.host).leaderboard).to_equal({
    { rank = 1, name = "Red", score = 583 },
    { rank = 2, name = "Blue", score = 437 },
  })
  expect(s:view(ben).status).to_be("You are 2nd of 5. Blue is 2nd of 2 teams")
  s:act(s.host, "next")            -- the podium
  expect(s:view(s.host).podium).to_equal({
    { rank = 1, name = "Red", score = 583 },
    { rank = 2, name = "Blue", score = 437 },
  })
  expect(s:view(s.host).status).to_be(
    "Top players: Ana 1000, Ben 875, Cy 750. The quiz is over. The results can be downloaded as a spreadsheet.")
  expect(s:view(dan).podium[2]).to_equal({ rank = 2, name = "Blue", score = 437 })
  expect(s:view(dan).leaderboard[1]).to_equal({ rank = 1, name = "Ana", score = 1000 })
  expect(s:view(dan).status).to_be("Blue is 2nd of 2 teams")
  local results = s:results()
  expect(results.teams).to_equal({
    { rank = 1, team = "Red", score = 583, members = 3 },
    { rank = 2, team = "Blue", score = 437, members = 2 },
  })
  expect({ table.unpack(results.columns, 1, 5) }).to_equal({ "rank", "name", "score", "correct", "team" })
  expect(results.rows[2].team).to_be("Blue")
  expect(results.rows[2].name).to_be("Ben")
end)

test("teams: a student who leaves and comes back keeps their team, in the lobby and in the game", function()
  local s, ana, ben = quiz({ "Ana", "Ben" }, ONE, { teams = 2 })
  s:leave(ben)
  s:join("Cy")                     -- Blue is the smallest now
  s:join("Ben")                    -- rebalanced, he would be Red (1 and 1: the first)
  expect(roster_lines(s)).to_equal({ "Ana: Red", "Cy: Blue", "Ben: Blue" })

  local g, gana, gben = quiz({ "Ana", "Ben" }, ONE, { teams = 2 })
  start(g)
  g:leave(gben)
  g:join("Cy")                     -- late, into Blue (Ben left)
  g:join("Ben")                    -- his seat back, on Blue
  g:act(g.host, "next")
  g:act(g.host, "next")
  local teams = {}
  for _, r in ipairs(g:results().rows) do teams[r.name] = r.team end
  expect(teams).to_equal({ Ana = "Red", Ben = "Blue", Cy = "Blue" })
  expect(g:results().teams[2].members).to_be(2)
end)

test("teams: params.teams must be 2 to 8 teams", function()
  local ok = pcall(session, "quiz", { teams = 1 })
  expect(ok).to_be(false)
end)

-- Rename and real names -------------------------------------------------------

test("rename: the host renames a student; the quiz's board and results use the new name", function()
  local s, ana, ben = quiz({ "Ana", "Ben" }, TWO)
  local ok, why = s:act(ana, "rename", { player = ben.id, name = "Benny" })
  expect(why).to_be("only the host can rename players")
  ok, why = s:act(s.host, "rename", { player = ben.id, name = "ana" })
  expect(ok).to_be(false)
  expect(why).to_be('the name "ana" is already taken in this game')
  -- The quiz keeps the name as Recess shows it (trimmed), not as typed.
  expect(s:act(s.host, "rename", { player = ben.id, name = "  Benny  " })).to_be(true)
  expect(s:view(s.host).players[2].name).to_be("Benny")
  start(s)
  answer(s, ana, 2)
  answer(s, ben, 1)
  expect(s:view(ana).leaderboard[1]).to_equal({ rank = 1, name = "Benny", score = 1000 })
  expect(s:act(s.host, "rename", { player = ben.id, name = "Ben B" })).to_be(true)
  expect(s:view(ana).leaderboard[1]).to_equal({ rank = 1, name = "Ben B", score = 1000 })
  expect(s:view(s.host).rename).to_be("rename")
  s:act(s.host, "next")
  s:act(s.host, "next")
  s:act(s.host, "next")
  expect(summary(s:results().rows)).to_equal({
    { rank = 1, name = "Ben B", score = 1000, correct = 1 },
    { rank = 2, name = "Ana", score = 0, correct = 0 },
  })
end)

test("generated names: the real_name column is private (the students' copy of the results has none)", function()
  -- s:results() is the students' `ended` frame: the engine has taken the
  -- private column out (the host's copy with it: tests/quiz_teams.rs).
  local s = session("quiz", { questions = ONE, time_limit = 10 }, { names = "generated" })
  local ana = s:join("Ana Lopez")
  expect(ana.name == "Ana Lopez").to_be(false)
  start(s)
  answer(s, ana, 1)
  s:act(s.host, "next")
  local results = s:results()
  expect(results.private).to_be_nil()
  expect({ table.unpack(results.columns, 1, 5) }).to_equal({ "rank", "name", "score", "correct", "q1 answer" })
  expect(results.rows[1].real_name).to_be_nil()
  expect(results.rows[1].name).to_be(ana.name)
end)

-- The report ------------------------------------------------------------------

local REPORT_QUESTIONS = {
  { text = "1 + 1?", choices = { "2", "3", "4", "5" }, answer = 1 },
  { text = "Mammals?", choices = { "Whale", "Shark", "Bat" }, answer = { 1, 3 } },
  { type = "type", text = "Capital of France?", answer = "Paris" },
  { type = "slider", text = "Half of 100?", min = 0, max = 100, answer = 50, tolerance = 10 },
  { type = "order", text = "In order", items = { "A", "B", "C" } },
  { type = "poll", text = "Fun?", choices = { "Yes", "No" } },
  { type = "cloud", text = "Two words", words = 2 },
}

-- Plays REPORT_QUESTIONS with Ana and Ben; returns the session, Ana, Ben and
-- the labels of the order question as Ben saw (and sent) them.
local function play_report()
  local s, ana, ben = quiz({ "Ana", "Ben" }, REPORT_QUESTIONS)
  local function act(p, data)
    local ok, why = s:act(p, "answer", data)
    expect(why).to_be_nil()
  end
  start(s)
  act(ana, { choice = 1 })                       -- 0.0 s: 1000
  s:advance(2500)
  act(ben, { choice = 2 })                       -- 2.5 s: wrong
  s:act(s.host, "next")
  s:advance(1000)
  act(ana, { choices = { 1, 3 } })               -- 1.0 s: 950
  s:advance(3000)
  act(ben, { choices = { 1 } })                  -- 4.0 s: wrong
  s:act(s.host, "next")
  act(ana, { text = "  paris " })                -- 0.0 s: 1000
  s:advance(5000)
  act(ben, { text = "Lyon" })                    -- 5.0 s: wrong
  s:act(s.host, "next")
  s:advance(2000)
  act(ana, { value = 50 })                       -- 2.0 s: 900
  act(ben, { value = 45 })                       -- 2.0 s: 900 * 0.5 = 450
  s:act(s.host, "next")
  s:advance(3000)
  local shown = {}
  for i, item in ipairs(s:view(ana).order.items) do shown[i] = item.label end
  local right = {}
  for want, label in ipairs({ "A", "B", "C" }) do
    for i, l in ipairs(shown) do if l == label then right[want] = i end end
  end
  act(ana, { order = right })                    -- 3.0 s: 850
  act(ben, { order = { 1, 2, 3 } })              -- as shown: never right
  s:act(s.host, "next")
  act(ana, { choice = 1 })                       -- 0.0 s
  s:advance(500)
  act(ben, { choice = 2 })                       -- 0.5 s
  s:act(s.host, "next")
  act(ana, { text = "sun" })                     -- 0.0 s (the first word)
  s:advance(1000)
  act(ana, { text = "moon" })
  act(ben, { text = "rain" })                    -- 1.0 s
  s:advance(500)
  act(ben, { text = "snow" })
  return s, ana, ben, table.concat(shown, " > ")
end

test("the report: one row per student, with each question's answer, correct, points and time", function()
  local s, ana, ben, ben_order = play_report()
  expect(s:view(ana).phase).to_be("reveal")
  s:act(s.host, "next")            -- the podium
  local results = s:results()
  local columns = { "rank", "name", "score", "correct" }
  for n = 1, 7 do
    for _, f in ipairs({ "answer", "correct", "points", "time" }) do columns[#columns + 1] = "q" .. n .. " " .. f end
  end
  expect(results.columns).to_equal(columns)
  expect(results.rows[1]).to_equal({
    rank = 1, name = "Ana", score = 4700, correct = 5,
    ["q1 answer"] = "2", ["q1 correct"] = "yes", ["q1 points"] = 1000, ["q1 time"] = "0.0",
    ["q2 answer"] = "Whale, Bat", ["q2 correct"] = "yes", ["q2 points"] = 950, ["q2 time"] = "1.0",
    ["q3 answer"] = "paris", ["q3 correct"] = "yes", ["q3 points"] = 1000, ["q3 time"] = "0.0",
    ["q4 answer"] = 50, ["q4 correct"] = "yes", ["q4 points"] = 900, ["q4 time"] = "2.0",
    ["q5 answer"] = "A > B > C", ["q5 correct"] = "yes", ["q5 points"] = 850, ["q5 time"] = "3.0",
    ["q6 answer"] = "Yes", ["q6 correct"] = "", ["q6 points"] = 0, ["q6 time"] = "0.0",
    ["q7 answer"] = "sun, moon", ["q7 correct"] = "", ["q7 points"] = 0, ["q7 time"] = "0.0",
  })
  expect(results.rows[2]).to_equal({
    rank = 2, name = "Ben", score = 450, correct = 1,
    ["q1 answer"] = "3", ["q1 correct"] = "no", ["q1 points"] = 0, ["q1 time"] = "2.5",
    ["q2 answer"] = "Whale", ["q2 correct"] = "no", ["q2 points"] = 0, ["q2 time"] = "4.0",
    ["q3 answer"] = "Lyon", ["q3 correct"] = "no", ["q3 points"] = 0, ["q3 time"] = "5.0",
    ["q4 answer"] = 45, ["q4 correct"] = "yes", ["q4 points"] = 450, ["q4 time"] = "2.0",
    ["q5 answer"] = ben_order, ["q5 correct"] = "no", ["q5 points"] = 0, ["q5 time"] = "3.0",
    ["q6 answer"] = "No", ["q6 correct"] = "", ["q6 points"] = 0, ["q6 time"] = "0.5",
    ["q7 answer"] = "rain, snow", ["q7 correct"] = "", ["q7 points"] = 0, ["q7 time"] = "1.0",
  })
end)

test("the report: an unanswered question is 'no' and 0, a skipped or unplayed one is empty", function()
  local s, ana = quiz({ "Ana" }, { ONE[1], ONE[1], ONE[1] })
  start(s)
  s:advance(LIMIT_MS)              -- no answer: the time is up
  s:act(s.host, "next")
  s:act(s.host, "skip")            -- question 2 dropped
  s:act(s.host, "next")            -- (question 3 revealed unanswered too)
  s:act(s.host, "next")
  local row = s:results().rows[1]
  expect({ row["q1 answer"], row["q1 correct"], row["q1 points"], row["q1 time"] }).to_equal({ "", "no", 0, "" })
  expect({ row["q2 answer"], row["q2 correct"], row["q2 points"], row["q2 time"] }).to_equal({ "", "", "", "" })
end)

-- Bots --------------------------------------------------------------------

test("a bot watches the quiz: not a player, not on the board, does not answer", function()
  local s, ana = quiz({ "Ana" })
  local bot, why = s:join("Grader", { role = "bot" })
  expect(why).to_be_nil()
  expect(bot.role).to_be("bot")
  start(s)
  local ok, refused = s:act(bot, "answer", { choice = 1 })
  expect(ok).to_be(false)
  expect(refused).to_be("bots watch the quiz; they do not answer")
  answer(s, ana, 1)
  -- Ana alone answering is everyone: the bot is not waited for.
  expect(s:view(ana).phase).to_be("reveal")
  local names = {}
  for _, row in ipairs(s:view(s.host).leaderboard) do names[#names + 1] = row.name end
  expect(names).to_equal({ "Ana" })
  expect(s:view(bot).leaderboard[1].name).to_be("Ana")
end)

-- A grading service's points ----------------------------------------------

test("award: a backend's points join the scores, the board and a bonus column of the results", function()
  local s, ana, ben = quiz({ "Ana", "Ben" })
  start(s)
  answer(s, ana, 1)
  answer(s, ben, 2)
  local before = s:view(s.host).leaderboard
  expect(before[1].name).to_be("Ana")
  local ok, why = s:event("award", { points = { ben = 1500, [ana.id] = 100 }, reason = "Lab report" })
  expect(why).to_be_nil()
  expect(ok).to_be(true)
  expect(last(s, ben, "award")).to_equal({ points = 1500, reason = "Lab report", score = 1500 })
  expect(last(s, ana, "award").points).to_be(100)
  local board = s:view(s.host).leaderboard
  expect(board[1].name).to_be("Ben")
  expect(board[1].score).to_be(1500)
  expect(board[2].score).to_be(before[1].score + 100)
  ok, why = s:act(s.host, "next")
  expect(why).to_be_nil()
  local rows = s:results().rows
  expect({ rows[1].name, rows[1].bonus, rows[2].name, rows[2].bonus }).to_equal({ "Ben", 1500, "Ana", 100 })
end)

test("award: an unknown student or a bad number changes nothing", function()
  local s, ana = quiz({ "Ana" })
  start(s)
  local ok, why = s:event("award", { points = { Ana = 10, Zed = 5 } })
  expect(ok).to_be(false)
  expect(why).to_be("there is no student 'Zed' in this quiz")
  ok, why = s:event("award", { points = { Ana = 2.5 } })
  expect(why).to_be("points for 'Ana' must be a whole number from -100000 to 100000")
  ok, why = s:event("award", { points = {} })
  expect(why).to_be("say who gets how many points: {points = {[\"Ana\"] = 200}, reason = \"...\"}")
  expect(#s:events(ana, "award")).to_be(0)
  answer(s, ana, 1)
  expect(s:view(s.host).leaderboard[1].score).to_be(1000)
end)

test("each reveal emits a webhook with the counts; a refused call emits nothing", function()
  local s, ana, ben = quiz({ "Ana", "Ben" }, TWO)
  start(s)
  answer(s, ana, 1)
  local ok = s:act(ben, "answer", { choice = 9 })
  expect(ok).to_be(false)
  answer(s, ben, 2)
  expect(s:emitted("quiz.revealed")).to_equal({
    { name = "quiz.revealed", data = { number = 1, text = "1 + 1?", answered = 2, correct = 1 } },
  })
  local first = s:emitted()[1]
  expect(first.name).to_be("session.created")
end)
