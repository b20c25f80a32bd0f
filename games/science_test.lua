-- Tests of science.quiz.csv: the quiz's own spreadsheet layout, one question
-- of every type, played by the quiz's rules and scored by its documented
-- rules (docs/lua-api.md §16): speed points 500 + 500 * time_left /
-- time_limit, rounded down, times the question's points; a slider's times
-- its closeness; polls and clouds score nothing.
-- Run them with `recess test games` (or `recess test games/science_test.lua`).


-- The first four columns of a results row (or of each row of a list): the
-- rows also have the per-question report columns (tested on their own).
local function summary(rows)
  local function four(r) return { rank = r.rank, name = r.name, score = r.score, correct = r.correct } end
  if rows.name then return four(rows) end
  local list = {}
  for i, r in ipairs(rows) do list[i] = four(r) end
  return list
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

local function next_question(s)
  local ok, why = s:act(s.host, "next")
  expect(why).to_be_nil()
  if s:view(s.host).phase == "reveal" then s:act(s.host, "next") end
end

-- The places (in the list as shown) of `labels`, in that order.
local function places(view, labels)
  local at = {}
  for i, item in ipairs(view.order.items) do at[item.label] = i end
  local list = {}
  for i, label in ipairs(labels) do list[i] = at[label] end
  return list
end

test("every type of the sheet plays and scores by the documented rules", function()
  local s = session("science")
  local ana, ben = s:join("Ana"), s:join("Ben")
  expect(s:view(s.host).title).to_be("Science review")
  expect(s:act(s.host, "start")).to_be(true)

  -- 1. choice (20 s, answer 2): Ana after 4 s; Ben wrong.
  s:advance(4000)
  answer(s, ana, { choice = 2 })
  answer(s, ben, { choice = 1 })
  expect(points(s, ana)).to_be(900)
  expect(points(s, ben)).to_be(0)

  -- 2. truefalse (10 s, true): both at once, Ben says false.
  next_question(s)
  expect(#s:view(ana).choices).to_be(2)
  answer(s, ana, { choice = 1 })
  answer(s, ben, { choice = 2 })
  expect(points(s, ana)).to_be(1000)
  expect(points(s, ben)).to_be(0)

  -- 3. type (20 s, "Au"): capitals and spaces do not matter.
  next_question(s)
  expect(s:view(ana).input.action).to_be("answer")
  answer(s, ana, { text = "  au " })
  s:advance(10000)
  answer(s, ben, { text = "Ag" })
  expect(points(s, ana)).to_be(1000)
  expect(points(s, ben)).to_be(0)

  -- 4. slider (20 s, 100 °C, tolerance 50): Ana exact, Ben 90 (closeness 0.8).
  next_question(s)
  local slider = s:view(ana).slider
  expect({ slider.min, slider.max, slider.step, slider.unit }).to_equal({ 0, 200, 5, "°C" })
  answer(s, ana, { value = 100 })
  answer(s, ben, { value = 90 })
  expect(points(s, ana)).to_be(1000)
  expect(points(s, ben)).to_be(800)

  -- 5. order (30 s): Ana puts them right after 15 s; Ben swaps two.
  next_question(s)
  local view = s:view(ana)
  s:advance(15000)
  answer(s, ana, { order = places(view, { "Mercury", "Venus", "Earth", "Mars" }) })
  answer(s, ben, { order = places(view, { "Venus", "Mercury", "Earth", "Mars" }) })
  expect(points(s, ana)).to_be(750)
  expect(points(s, ben)).to_be(0)

  -- 6. several answers, double points (20 s, 1 and 3): Ben at once.
  next_question(s)
  answer(s, ben, { choices = { 1, 3 } })
  answer(s, ana, { choices = { 1, 2, 3 } })
  expect(points(s, ben)).to_be(2000)
  expect(points(s, ana)).to_be(0)

  -- 7. poll: counted on the host's screen, no points.
  next_question(s)
  answer(s, ana, { choice = 3 })
  answer(s, ben, { choice = 3 })
  local bars = s:view(s.host).bars
  expect(bars[3].value).to_be(2)
  expect(points(s, ana)).to_be(0)

  -- 8. cloud: the same word whatever its capitals, no points.
  next_question(s)
  answer(s, ana, { text = "Heat" })
  answer(s, ben, { text = "heat " })
  local cloud = s:view(s.host).cloud
  expect(cloud[1].count).to_be(2)

  next_question(s)
  local rows = s:results().rows
  expect(summary(rows[1])).to_equal({ rank = 1, name = "Ana", score = 4650, correct = 5 })
  expect(summary(rows[2])).to_equal({ rank = 2, name = "Ben", score = 2800, correct = 2 })
end)
