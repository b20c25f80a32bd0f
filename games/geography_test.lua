-- Tests of geography.quiz.xlsx: Kahoot's quiz template (instruction rows,
-- an index column, its headings), played by the quiz's rules. The points
-- are the quiz's documented rule: 500 + 500 * time_left / time_limit for a
-- right answer, rounded down; 0 otherwise.
-- Run them with `recess test games` (or `recess test games/geography_test.lua`).


-- The first four columns of a results row (or of each row of a list): the
-- rows also have the per-question report columns (tested on their own).
local function summary(rows)
  local function four(r) return { rank = r.rank, name = r.name, score = r.score, correct = r.correct } end
  if rows.name then return four(rows) end
  local list = {}
  for i, r in ipairs(rows) do list[i] = four(r) end
  return list
end

local function class()
  local s = session("geography")
  local ana, ben, cy = s:join("Ana"), s:join("Ben"), s:join("Cy")
  return s, ana, ben, cy
end

local function answer(s, p, data)
  local ok, why = s:act(p, "answer", data)
  expect(why).to_be_nil()
  expect(ok).to_be(true)
end

local function points(s, p)
  local results = s:events(p, "result")
  return results[#results].data.points
end

test("the template's questions are read as Kahoot wrote them", function()
  local s, ana = class()
  expect(s:view(s.host).title).to_be("Geography")
  expect(s:act(s.host, "start")).to_be(true)
  local view = s:view(ana)
  expect(view.title).to_be("Question 1 of 5")
  expect(view.text).to_be("What is the capital of Canada?")
  local labels = {}
  for i, c in ipairs(view.choices) do labels[i] = c.label end
  expect(labels).to_equal({ "Toronto", "Ottawa", "Vancouver", "Montreal" })
end)

test("a whole quiz scores each answer by the documented rule", function()
  local s, ana, ben, cy = class()
  expect(s:act(s.host, "start")).to_be(true)

  -- 1. Canada (20 s, answer 2): Ana at once, Ben after 10 s, Cy wrong.
  answer(s, ana, { choice = 2 })
  s:advance(10000)
  answer(s, ben, { choice = 2 })
  answer(s, cy, { choice = 1 })
  expect(points(s, ana)).to_be(1000)
  expect(points(s, ben)).to_be(750)
  expect(points(s, cy)).to_be(0)

  -- 2. Kenya (20 s, answer 1): Ana and Cy after 5 s, Ben wrong.
  expect(s:act(s.host, "next")).to_be(true)
  s:advance(5000)
  answer(s, ana, { choice = 1 })
  answer(s, ben, { choice = 4 })
  answer(s, cy, { choice = 1 })
  expect(points(s, ana)).to_be(875)
  expect(points(s, cy)).to_be(875)

  -- 3. South America (30 s, answers 1,3: tick both): Ana at once, Ben
  -- only one of the two (no partial credit), Cy after 15 s.
  expect(s:act(s.host, "next")).to_be(true)
  expect(s:view(ana).select.action).to_be("answer")
  answer(s, ana, { choices = { 1, 3 } })
  answer(s, ben, { choices = { 1 } })
  s:advance(15000)
  answer(s, cy, { choices = { 1, 3 } })
  expect(points(s, ana)).to_be(1000)
  expect(points(s, ben)).to_be(0)
  expect(points(s, cy)).to_be(750)

  -- 4. Norway (10 s): nobody answers; the time runs out.
  expect(s:act(s.host, "next")).to_be(true)
  s:advance(10000)
  expect(s:view(ana).phase).to_be("reveal")
  expect(points(s, ana)).to_be(0)

  -- 5. Egypt (10 s, two answers only, answer 2): Ben at once, Cy after 2 s.
  expect(s:act(s.host, "next")).to_be(true)
  expect(#s:view(ana).choices).to_be(2)
  answer(s, ben, { choice = 2 })
  answer(s, ana, { choice = 1 })
  s:advance(2000)
  answer(s, cy, { choice = 2 })
  expect(points(s, ben)).to_be(1000)
  expect(points(s, cy)).to_be(900)

  expect(s:act(s.host, "next")).to_be(true)
  local results = s:results()
  expect(summary(results.rows[1])).to_equal({ rank = 1, name = "Ana", score = 2875, correct = 3 })
  expect(summary(results.rows[2])).to_equal({ rank = 2, name = "Cy", score = 2525, correct = 3 })
  expect(summary(results.rows[3])).to_equal({ rank = 3, name = "Ben", score = 1750, correct = 2 })
end)
