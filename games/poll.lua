--[[
poll.lua: a live poll or word cloud, to start a lesson.

How it goes
  setup   On the host's screen, type the question and press Send. Then
          either add the choices one by one (type a choice, Send) and press
          "Open poll", or press "Open word cloud" for an open question
          ("One word for how you feel about fractions").
  open    Students see the question. In a poll they press one choice, and
          may change their mind until the poll closes. In a word cloud they
          type up to 3 words or short answers. The host's screen shows the
          live bar chart (or the cloud) and how many students have answered.
  closed  "Close" freezes the answers; everyone sees the chart. "New
          question" starts again at setup; "Finish" ends the session and
          sends the results (every question, every answer and its count) to
          the teacher as a spreadsheet.

Nobody sees who answered what, not even the host: the chart, the cloud and
the results hold counts only.

Word clouds count answers together when they differ only in accents,
capitals or spaces ("Paris", "paris " and "PARÍS" are one answer), and show
them as first typed. On the host's screen each answer of the cloud is also
listed with a Remove button: a removed answer disappears from the cloud and
cannot be sent again in this question.

Actions
  host:    ask {text}, add {text}, open_poll, open_cloud, close, new,
           finish, hide {player = answer key} (the Remove button), kick
  student: vote {choice = n} (poll), send {text} (word cloud)

Params (all optional, given when the session is created)
  question      the question: the session opens at once
  choices       with question: a list of 2 to 8 choices (a poll);
                without choices the question opens as a word cloud
  words         answers each student may send to a word cloud (default 3)
  show_results  true: students see the live chart too while it is open
                (default: only once it is closed, so nobody follows the crowd)
  title         shown at the top (default "Class poll")
]]

local MAX_CHOICES = 8
local MAX_TEXT = 120       -- characters of a question
local MAX_CHOICE = 60      -- characters of a choice
local MAX_ANSWER = 40      -- characters of a word-cloud answer
local DEFAULT_WORDS = 3
local MAX_WORDS = 10

-- Small helpers -------------------------------------------------------------

local function given(v)
  if v == nil or v == null then return nil end
  return v
end

local function plural(n, one, many)
  return n .. " " .. (n == 1 and one or many)
end

-- Trims what someone typed and checks its length; returns the text, or nil
-- and a reason.
local function clean(text, max, what)
  if type(text) ~= "string" then return nil, "send the " .. what .. " as {text = \"...\"}" end
  if #text > max * 4 then return nil, what .. "s can be at most " .. max .. " characters" end
  local first = text:find("%S")
  if not first then return nil, "type the " .. what .. " first" end
  text = text:match("^.*%S", first)
  if (utf8.len(text) or #text) > max then
    return nil, what .. "s can be at most " .. max .. " characters"
  end
  return text
end

-- The question --------------------------------------------------------------
-- state.question is nil during setup until the host types it; then
-- {text, mode = "poll" | "cloud", choices, votes, answers, ...}.

local function new_question(text)
  return {
    text = text,
    choices = {},     -- poll: the choices' labels
    counts = {},      -- poll: votes per choice
    votes = {},       -- poll: student id -> the choice they picked
    answers = {},     -- cloud: {key, text, count} in the order first sent
    index = {},       -- cloud: answer key -> its place in answers (a number:
                      -- the state is saved as JSON, where one table cannot
                      -- be in two places)
    sent = {},        -- cloud: student id -> {key = true} of what they sent
    hidden = {},      -- cloud: answer keys the host removed
    answered = 0,     -- students who voted (poll) or sent anything (cloud)
  }
end

local function open(state, mode)
  local q = state.question
  q.mode = mode
  if mode == "poll" then
    for c = 1, #q.choices do q.counts[c] = 0 end
  end
  state.phase = "open"
end

-- The finished question's rows for the results.
local function keep_results(state)
  local q = state.question
  if not q or not q.mode then return end
  if q.mode == "poll" then
    for c, label in ipairs(q.choices) do
      state.rows[#state.rows + 1] = { question = q.text, answer = label, votes = q.counts[c] }
    end
  else
    for _, a in ipairs(q.answers) do
      if not q.hidden[a.key] then
        state.rows[#state.rows + 1] = { question = q.text, answer = a.text, votes = a.count }
      end
    end
  end
end

local function vote(state, player, data)
  local q = state.question
  if q.mode ~= "poll" then return false, "this question has no choices: type your answer" end
  local choice = type(data) == "table" and math.tointeger(tonumber(data.choice) or 0)
  if not choice or choice < 1 or choice > #q.choices then
    return false, "pick one of the choices, 1 to " .. #q.choices
  end
  local before = q.votes[player.id]
  if before == choice then return end
  if before then
    q.counts[before] = q.counts[before] - 1
  else
    q.answered = q.answered + 1
  end
  q.votes[player.id] = choice
  q.counts[choice] = q.counts[choice] + 1
end

local function send(state, player, data)
  local q = state.question
  if q.mode ~= "cloud" then return false, "pick one of the choices" end
  local text, why = clean(type(data) == "table" and data.text or nil, MAX_ANSWER, "answer")
  if not text then return false, why end
  local key = text:fold()
  local mine = q.sent[player.id] or {}
  if mine[key] then return false, "you already sent that" end
  if q.hidden[key] then return false, "the host removed that answer; try another" end
  local count = 0
  for _ in pairs(mine) do count = count + 1 end
  if count >= state.words then
    return false, "you have sent your " .. plural(state.words, "answer", "answers")
  end
  if count == 0 then q.answered = q.answered + 1 end
  mine[key] = true
  q.sent[player.id] = mine
  local at = q.index[key]
  if at then
    q.answers[at].count = q.answers[at].count + 1
  else
    q.answers[#q.answers + 1] = { key = key, text = text, count = 1 }
    q.index[key] = #q.answers
  end
end

-- The host's actions ----------------------------------------------------------

local HOST_ONLY = {
  ask = "ask the question", add = "add choices", open_poll = "open the poll",
  open_cloud = "open the word cloud", close = "close the question",
  new = "start a new question", finish = "finish the poll",
  hide = "remove answers", kick = "remove players",
}

local function host_action(state, ctx, player, name, data)
  local phase, q = state.phase, state.question
  if name == "kick" then
    local id = type(data) == "table" and data.player
    if type(id) ~= "string" or id == player.id or not state.students[id] then
      return false, "say who to remove: {player = id}"
    end
    ctx.kick(id, "the host removed you from the poll")
    state.students[id] = nil
    state.present = state.present - 1
    return
  end
  if phase == "over" then return false, "the poll is over" end
  if name == "ask" then
    if phase ~= "setup" then return false, "close this question first, then start a new one" end
    local text, why = clean(type(data) == "table" and data.text or nil, MAX_TEXT, "question")
    if not text then return false, why end
    state.question = new_question(text)
  elseif name == "add" then
    if phase ~= "setup" or not q then return false, "type the question first" end
    if #q.choices >= MAX_CHOICES then return false, "a poll has at most " .. MAX_CHOICES .. " choices" end
    local text, why = clean(type(data) == "table" and data.text or nil, MAX_CHOICE, "choice")
    if not text then return false, why end
    q.choices[#q.choices + 1] = text
  elseif name == "open_poll" or name == "open_cloud" then
    if phase ~= "setup" or not q then return false, "type the question first" end
    if name == "open_poll" and #q.choices < 2 then
      return false, "add at least 2 choices first (or open a word cloud)"
    end
    open(state, name == "open_poll" and "poll" or "cloud")
  elseif name == "close" then
    if phase ~= "open" then return false, "no question is open" end
    state.phase = "closed"
  elseif name == "new" then
    if phase == "open" then return false, "close this question first" end
    keep_results(state)
    state.question = nil
    state.phase = "setup"
  elseif name == "finish" then
    if phase == "open" then return false, "close this question first" end
    keep_results(state)
    state.phase = "over"
    ctx.finish({ columns = { "question", "answer", "votes" }, rows = state.rows, title = state.title })
  elseif name == "hide" then
    local key = type(data) == "table" and data.player
    local at = q and q.mode == "cloud" and q.index[key]
    if not at then return false, "there is no such answer in the word cloud" end
    q.hidden[key] = true
  end
end

-- Views -----------------------------------------------------------------------

local function bars(q)
  local list = {}
  for c, label in ipairs(q.choices) do
    list[c] = { label = label, value = q.counts[c] or 0 }
  end
  return list
end

local function cloud(q)
  local list = {}
  for _, a in ipairs(q.answers) do
    if not q.hidden[a.key] then list[#list + 1] = { text = a.text, count = a.count } end
  end
  if #list == 0 then return nil end
  return list
end

-- The cloud's answers as a list with Remove buttons on the host's screen.
local function answer_list(q)
  local list = {}
  for _, a in ipairs(q.answers) do
    if not q.hidden[a.key] then
      list[#list + 1] = { id = a.key, name = a.text, detail = plural(a.count, "time", "times") }
    end
  end
  if #list == 0 then return nil end
  return list
end

-- "2 of 3 students answered"; once some who answered have left, the two
-- numbers are told apart: "3 answered · 2 students here".
local function answered_status(state)
  local answered, present = state.question.answered, state.present
  if answered > present then
    return answered .. " answered · " .. plural(present, "student", "students") .. " here"
  end
  return answered .. " of " .. plural(present, "student", "students") .. " answered"
end

local function host_view(state)
  local q = state.question
  local view = { title = state.title }
  if state.phase == "over" then
    view.text = "The poll is over. The results can be downloaded as a spreadsheet."
    return view
  end
  if state.phase == "setup" then
    view.status = plural(state.present, "student", "students") .. " here"
    if not q then
      view.text = "Type your question and press Send."
      view.input = { action = "ask", placeholder = "Your question…", max = MAX_TEXT }
    else
      view.text = q.text
      if #q.choices > 0 then
        -- Shown as they will look; they cannot be pressed yet.
        local list = {}
        for c, label in ipairs(q.choices) do list[c] = { label = label } end
        view.choices = list
      end
      view.input = { action = "add", placeholder = "Add a choice…", max = MAX_CHOICE,
        label = #q.choices .. " of " .. MAX_CHOICES .. " choices" }
      view.buttons = {
        { label = "Open poll", action = "open_poll", style = #q.choices < 2 and "disabled" or nil },
        { label = "Open word cloud", action = "open_cloud" },
      }
    end
    return view
  end
  view.text = q.text
  view.status = answered_status(state) .. (state.phase == "closed" and " · closed" or "")
  if q.mode == "poll" then
    view.bars = bars(q)
  else
    view.cloud = cloud(q)
    view.players = answer_list(q)
    view.kick = "hide"
  end
  if state.phase == "open" then
    view.buttons = { { label = "Close", action = "close" } }
  else
    view.buttons = {
      { label = "New question", action = "new" },
      { label = "Finish", action = "finish" },
    }
  end
  return view
end

local function student_view(state, player)
  local q = state.question
  local view = { title = state.title }
  if state.phase == "over" then
    view.text = "The poll is over. Thank you!"
    return view
  end
  if state.phase == "setup" then
    view.text = "You're in, " .. player.name .. "! The question appears here in a moment."
    return view
  end
  view.text = q.text
  local shown = state.phase == "closed" or state.show_results
  if q.mode == "poll" then
    local mine = q.votes[player.id]
    if state.phase == "open" then
      local choices = {}
      for c, label in ipairs(q.choices) do
        choices[c] = { label = label, action = "vote", data = { choice = c },
          style = mine == c and "selected" or nil }
      end
      view.choices = choices
      view.status = mine and "Vote saved: you can still change it" or "Pick one"
    end
    if shown then view.bars = bars(q) end
  else
    local mine = q.sent[player.id]
    local count = 0
    for _ in pairs(mine or {}) do count = count + 1 end
    if state.phase == "open" and count < state.words then
      view.input = { action = "send", placeholder = "Your answer…", max = MAX_ANSWER }
      view.status = "You can send " .. plural(state.words - count, "more answer", "more answers")
    elseif state.phase == "open" then
      view.status = "Thanks! Watch the main screen."
    end
    if shown then view.cloud = cloud(q) end
  end
  if state.phase == "closed" then view.banner = { text = "The question is closed" } end
  return view
end

-- The game --------------------------------------------------------------------

return {
  title = "Live poll and word cloud",
  max_players = 300,

  init = function(ctx, params)
    if type(params) ~= "table" then params = {} end
    local words = given(params.words) or DEFAULT_WORDS
    if math.type(words) ~= "integer" or words < 1 or words > MAX_WORDS then
      error("params.words must be a whole number from 1 to " .. MAX_WORDS)
    end
    local title = given(params.title)
    local state = {
      title = type(title) == "string" and title ~= "" and title or "Class poll",
      words = words,
      show_results = params.show_results == true,
      phase = "setup",      -- "setup" | "open" | "closed" | "over"
      question = nil,       -- see new_question
      rows = {},            -- results of the questions already asked
      students = {},        -- id -> true for students in the room
      present = 0,
    }
    local question = given(params.question)
    if question ~= nil then
      local text, why = clean(question, MAX_TEXT, "question")
      if not text then error("params.question: " .. why) end
      state.question = new_question(text)
      local choices = given(params.choices)
      if choices ~= nil then
        if type(choices) ~= "table" or #choices < 2 or #choices > MAX_CHOICES then
          error("params.choices must be a list of 2 to " .. MAX_CHOICES .. " choices")
        end
        for c, label in ipairs(choices) do
          local choice, bad = clean(type(label) == "number" and tostring(label) or label, MAX_CHOICE, "choice")
          if not choice then error("params.choices[" .. c .. "]: " .. bad) end
          state.question.choices[c] = choice
        end
        open(state, "poll")
      else
        open(state, "cloud")
      end
    end
    return state
  end,

  join = function(state, ctx, player)
    -- A bot (a backend service) sees the question and the results as a
    -- student does, but is not counted and does not answer.
    if player.role ~= "player" or state.students[player.id] then return end
    state.students[player.id] = true
    state.present = state.present + 1
  end,

  leave = function(state, ctx, player)
    -- Their answers stay counted: the poll is about the class, not the room.
    if state.students[player.id] then
      state.students[player.id] = nil
      state.present = state.present - 1
    end
  end,

  action = function(state, ctx, player, name, data)
    if HOST_ONLY[name] then
      if player.role ~= "host" then return false, "only the host can " .. HOST_ONLY[name] end
      return host_action(state, ctx, player, name, data)
    end
    if name ~= "vote" and name ~= "send" then
      return false, "unknown action '" .. tostring(name) .. "'"
    end
    if player.role == "host" then return false, "the host does not answer the poll" end
    if player.role == "bot" then return false, "bots do not answer the poll" end
    if state.phase ~= "open" then
      return false, state.phase == "setup" and "the question is not open yet" or "the question is closed"
    end
    if name == "vote" then return vote(state, player, data) end
    return send(state, player, data)
  end,

  view = function(state, player)
    if player.role == "host" then return host_view(state) end
    return student_view(state, player)
  end,
}
