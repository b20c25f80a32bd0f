-- Tests of poll.lua: the rules as its header and docs/lua-api.md §16 state them.
-- Run them with `recess test games` (or `recess test games/poll_test.lua`).

local function class(params, ...)
  local s = session("poll", params)
  local students = {}
  for i, name in ipairs({ ... }) do
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

local function values(bars)
  local list = {}
  for i, b in ipairs(bars or {}) do list[i] = b.label .. "=" .. b.value end
  return list
end

test("the host types a question and its choices, then opens the poll", function()
  local s, ana = class({}, "Ana")
  expect(s:view(s.host).input.action).to_be("ask")
  expect(s:view(ana).text).to_be("You're in, Ana! The question appears here in a moment.")
  ok(s, s.host, "ask", { text = "  Which topic next?  " })
  refused(s, s.host, "open_poll", nil, "add at least 2 choices first (or open a word cloud)")
  ok(s, s.host, "add", { text = "Fractions" })
  ok(s, s.host, "add", { text = "Decimals" })
  local setup = s:view(s.host)
  expect(setup.text).to_be("Which topic next?")
  expect(setup.choices).to_equal({ { label = "Fractions" }, { label = "Decimals" } })
  expect(setup.input.label).to_be("2 of 8 choices")
  expect(s:view(ana).choices).to_be_nil()  -- nothing to press before it opens
  ok(s, s.host, "open_poll")
  local view = s:view(ana)
  expect(view.text).to_be("Which topic next?")
  expect(view.choices[2]).to_equal({ label = "Decimals", action = "vote", data = { choice = 2 } })
  expect(values(s:view(s.host).bars)).to_equal({ "Fractions=0", "Decimals=0" })
end)

test("students vote once each, may change their vote, and the host's chart follows live", function()
  local s, ana, ben, cy = class({ question = "Pizza or pasta?", choices = { "Pizza", "Pasta" } },
    "Ana", "Ben", "Cy")
  ok(s, ana, "vote", { choice = 1 })
  ok(s, ben, "vote", { choice = 1 })
  expect(values(s:view(s.host).bars)).to_equal({ "Pizza=2", "Pasta=0" })
  expect(s:view(s.host).status).to_be("2 of 3 students answered")
  ok(s, ben, "vote", { choice = 2 })                 -- changed his mind
  ok(s, ben, "vote", { choice = 2 })                 -- twice the same changes nothing
  expect(values(s:view(s.host).bars)).to_equal({ "Pizza=1", "Pasta=1" })
  expect(s:view(s.host).status).to_be("2 of 3 students answered")
  expect(s:view(ben).choices[2].style).to_be("selected")
  expect(s:view(ben).status).to_be("Vote saved: you can still change it")
  -- Students do not see the chart while it is open (nobody follows the crowd).
  expect(s:view(cy).bars).to_be_nil()
  refused(s, cy, "vote", { choice = 3 }, "pick one of the choices, 1 to 2")
  refused(s, cy, "vote", { choice = "x" }, "pick one of the choices, 1 to 2")
  refused(s, cy, "send", { text = "pizza" }, "pick one of the choices")
  refused(s, s.host, "vote", { choice = 1 }, "the host does not answer the poll")
end)

test("closing freezes the votes and shows everyone the chart", function()
  local s, ana, ben = class({ question = "Ready?", choices = { "Yes", "No" } }, "Ana", "Ben")
  ok(s, ana, "vote", { choice = 1 })
  refused(s, s.host, "new", nil, "close this question first")
  ok(s, s.host, "close")
  refused(s, ben, "vote", { choice = 2 }, "the question is closed")
  expect(values(s:view(ben).bars)).to_equal({ "Yes=1", "No=0" })
  expect(s:view(ben).choices).to_be_nil()
  expect(s:view(ben).banner).to_equal({ text = "The question is closed" })
  expect(s:view(s.host).status).to_be("1 of 2 students answered · closed")
end)

test("with show_results students watch the chart live", function()
  local s, ana = class({ question = "Ready?", choices = { "Yes", "No" }, show_results = true }, "Ana")
  ok(s, ana, "vote", { choice = 2 })
  expect(values(s:view(ana).bars)).to_equal({ "Yes=0", "No=1" })
end)

test("a word cloud counts answers together whatever their accents, capitals and spaces", function()
  local s, ana, ben, cy = class({ question = "A city you'd like to visit?" }, "Ana", "Ben", "Cy")
  expect(s:view(ana).input).to_equal({ action = "send", placeholder = "Your answer…", max = 40 })
  ok(s, ana, "send", { text = "Paris" })
  ok(s, ben, "send", { text = "  PARÍS " })
  ok(s, cy, "send", { text = "São Paulo" })
  ok(s, ana, "send", { text = "sao  paulo" })
  refused(s, ana, "send", { text = "paris" }, "you already sent that")
  expect(s:view(s.host).cloud).to_equal({
    { text = "Paris", count = 2 },
    { text = "São Paulo", count = 2 },
  })
  expect(s:view(s.host).status).to_be("3 of 3 students answered")
  expect(s:view(ana).status).to_be("You can send 1 more answer")
  expect(s:view(ana).cloud).to_be_nil()
  refused(s, ana, "vote", { choice = 1 }, "this question has no choices: type your answer")
  refused(s, ana, "send", { text = "   " }, "type the answer first")
  refused(s, ana, "send", { text = ("x"):rep(41) }, "answers can be at most 40 characters")
end)

test("each student sends at most `words` answers", function()
  local s, ana = class({ question = "Three words for today", words = 2 }, "Ana")
  ok(s, ana, "send", { text = "sunny" })
  ok(s, ana, "send", { text = "cold" })
  refused(s, ana, "send", { text = "fun" }, "you have sent your 2 answers")
  expect(s:view(ana).input).to_be_nil()
  expect(s:view(ana).status).to_be("Thanks! Watch the main screen.")
end)

test("the host removes an answer from the cloud and it cannot be sent again", function()
  local s, ana, ben = class({ question = "One word?" }, "Ana", "Ben")
  ok(s, ana, "send", { text = "Rude" })
  ok(s, ben, "send", { text = "kind" })
  local host = s:view(s.host)
  expect(host.kick).to_be("hide")
  expect(host.players).to_equal({
    { id = "rude", name = "Rude", detail = "1 time" },
    { id = "kind", name = "kind", detail = "1 time" },
  })
  refused(s, ana, "hide", { player = "rude" }, "only the host can remove answers")
  ok(s, s.host, "hide", { player = "rude" })
  expect(s:view(s.host).cloud).to_equal({ { text = "kind", count = 1 } })
  refused(s, ben, "send", { text = "RUDE" }, "the host removed that answer; try another")
  refused(s, s.host, "hide", { player = "nope" }, "there is no such answer in the word cloud")
end)

test("nobody sees who answered what: views and results hold counts only", function()
  local s, ana, ben = class({ question = "Cats or dogs?", choices = { "Cats", "Dogs" } }, "Ana", "Ben")
  ok(s, ana, "vote", { choice = 1 })
  ok(s, ben, "vote", { choice = 2 })
  ok(s, s.host, "close")
  ok(s, s.host, "finish")
  local function mentions(t, name)
    for k, v in pairs(t) do
      if v == name or k == name then return true end
      if type(v) == "table" and mentions(v, name) then return true end
    end
    return false
  end
  for _, who in ipairs({ s.host, ana, ben }) do
    expect(mentions(s:view(who), "Ana")).to_be(false)
  end
  expect(mentions(s:results(), "Ana")).to_be(false)
end)

test("several questions end in one spreadsheet of every answer and its count", function()
  local s, ana, ben = class({ question = "Cats or dogs?", choices = { "Cats", "Dogs" } }, "Ana", "Ben")
  ok(s, ana, "vote", { choice = 2 })
  ok(s, ben, "vote", { choice = 2 })
  ok(s, s.host, "close")
  ok(s, s.host, "new")
  expect(s:view(ana).choices).to_be_nil()
  ok(s, s.host, "ask", { text = "One word for Monday" })
  ok(s, s.host, "open_cloud")
  ok(s, ana, "send", { text = "Sleepy" })
  ok(s, ben, "send", { text = "sleepy" })
  ok(s, ben, "send", { text = "long" })
  ok(s, s.host, "close")
  ok(s, s.host, "finish")
  expect(s:results()).to_equal({
    columns = { "question", "answer", "votes" },
    title = "Class poll",
    rows = {
      { question = "Cats or dogs?", answer = "Cats", votes = 0 },
      { question = "Cats or dogs?", answer = "Dogs", votes = 2 },
      { question = "One word for Monday", answer = "Sleepy", votes = 2 },
      { question = "One word for Monday", answer = "long", votes = 1 },
    },
  })
  refused(s, s.host, "ask", { text = "More?" }, "this game has finished")
end)

test("only the host runs the poll", function()
  local s, ana = class({}, "Ana")
  for name, what in pairs({
    ask = "ask the question", add = "add choices", open_poll = "open the poll",
    open_cloud = "open the word cloud", close = "close the question",
    new = "start a new question", finish = "finish the poll", kick = "remove players",
  }) do
    refused(s, ana, name, { text = "x" }, "only the host can " .. what)
  end
  refused(s, ana, "vote", { choice = 1 }, "the question is not open yet")
  refused(s, ana, "dance", nil, "unknown action 'dance'")
end)

test("students who leave keep their answers counted; a kick removes them from the room", function()
  local s, ana, ben = class({ question = "Ready?", choices = { "Yes", "No" } }, "Ana", "Ben")
  ok(s, ana, "vote", { choice = 1 })
  s:leave(ana)
  expect(values(s:view(s.host).bars)).to_equal({ "Yes=1", "No=0" })
  expect(s:view(s.host).status).to_be("1 of 1 student answered")
  ok(s, s.host, "kick", { player = ben.id })
  expect(s:view(s.host).status).to_be("1 answered · 0 students here")
end)

test("bad params are reported when the session starts", function()
  local ok_, err = pcall(session, "poll", { question = "Q", choices = { "only one" } })
  expect(ok_).to_be(false)
  expect(tostring(err)).to_contain("params.choices must be a list of 2 to 8 choices")
  ok_, err = pcall(session, "poll", { words = 0 })
  expect(ok_).to_be(false)
  expect(tostring(err)).to_contain("params.words must be a whole number from 1 to 10")
end)

test("a bot sees the poll as a student does but is not counted and does not vote", function()
  local s, ana = class({}, "Ana")
  local bot, why = s:join("Helper", { role = "bot" })
  expect(why).to_be_nil()
  ok(s, s.host, "ask", { text = "Which topic next?" })
  ok(s, s.host, "add", { text = "Fractions" })
  ok(s, s.host, "add", { text = "Decimals" })
  ok(s, s.host, "open_poll")
  refused(s, bot, "vote", { choice = 1 }, "bots do not answer the poll")
  ok(s, ana, "vote", { choice = 1 })
  expect(s:view(bot).question).to_be(s:view(ana).question)
  expect(values(s:view(s.host).bars)).to_equal({ "Fractions=1", "Decimals=0" })
  expect(s:view(s.host).status).to_be("1 of 1 student answered")
end)
