--[[
quiz.lua: a Kahoot-style quiz for the classroom.

How a round goes
  lobby     The host's screen lists the students as they join (the host can
            remove one) and has a Start button.
  question  Everyone sees the question, four answer buttons and a countdown.
            Each student may answer once. The host sees the correct answer,
            how many have answered and how many picked each choice.
  reveal    When every connected student has answered, the time runs out or
            the host presses Next: students see whether they were right and
            the points they got, and everyone sees the leaderboard.
  podium    After the last question: the top three, and the results (rank,
            name, score, correct answers) go to the teacher as a CSV.

Scoring
  A correct answer scores   500 + 500 * (time_left / time_limit)
  rounded down to a whole number: 1000 for an instant answer, 750 halfway
  through, 500 at the last moment. A wrong answer, or no answer, scores 0.
  Points are added at the reveal, so nobody's score gives the answer away
  while the question is still open.

Actions
  host:    start, next, skip, kick {player = "p3"}, readmit {name = "Ana"}
  student: answer {choice = 1..4}
  `next` reveals the answer early during a question, and moves on to the next
  question (or the podium) during a reveal. `skip` drops the current question
  without scoring it.

Late joiners
  A student who joins after the start plays on with a score of 0 and may
  answer the question that is open when they arrive (the time bonus is fair:
  it only counts the time left). With params.allow_late_join = false they are
  turned away with a reason instead. A student who left and comes back under
  the same name gets their seat and score back.

Params (all optional, given when the session is created)
  questions         a list replacing the built-in questions, same shape as
                    QUESTIONS below
  time_limit        seconds per question for every question (decimals are
                    fine, so tests can run a quiz in a second)
  shuffle           true to play the questions in a random order
  title             shown in the lobby and on the podium
  allow_late_join   false to refuse students once the quiz has started
  host_sees_answer  false to hide the answer on the host's screen until the
                    reveal (for a host screen projected to the class)
]]

-- The questions. `answer` is the position of the correct choice (1 = first),
-- `time` the seconds students get, `image` an optional picture URL.
local QUESTIONS = {
  {
    text = "What is the capital of France?",
    choices = { "Berlin", "Madrid", "Paris", "Rome" },
    answer = 3,
    time = 20,
  },
  {
    text = "Which planet is known as the Red Planet?",
    choices = { "Mars", "Venus", "Jupiter", "Mercury" },
    answer = 1,
    time = 20,
  },
  {
    text = "Which gas do plants take in from the air to make their food?",
    choices = { "Oxygen", "Nitrogen", "Carbon dioxide", "Helium" },
    answer = 3,
    time = 20,
  },
  {
    text = "What is the capital of Japan?",
    choices = { "Osaka", "Tokyo", "Kyoto", "Seoul" },
    answer = 2,
    time = 15,
  },
  {
    text = "How many legs does an insect have?",
    choices = { "4", "6", "8", "10" },
    answer = 2,
    time = 15,
  },
  {
    text = "At what temperature does water boil at sea level?",
    choices = { "50 °C", "90 °C", "100 °C", "120 °C" },
    answer = 3,
    time = 20,
  },
  {
    text = "What is the capital of Australia?",
    choices = { "Sydney", "Melbourne", "Perth", "Canberra" },
    answer = 4,
    time = 20,
  },
  {
    text = "Which is the largest ocean on Earth?",
    choices = { "Atlantic", "Indian", "Arctic", "Pacific" },
    answer = 4,
    time = 20,
  },
}

local TITLE = "Capitals and science quiz"
local DEFAULT_TIME = 20     -- seconds, for a question without `time`
local MAX_TIME = 3600       -- seconds; longer is surely a typo
local LEADERBOARD_SIZE = 5  -- rows everyone sees; your own row is added below

-- Small helpers -------------------------------------------------------------

-- `v`, unless it is missing or JSON null.
local function given(v)
  if v == nil or v == null then return nil end
  return v
end

-- A whole number from a number or numeric string (2, 2.0 and "2" all give 2).
local function to_int(v)
  if type(v) == "string" then v = tonumber(v) end
  if type(v) ~= "number" then return nil end
  return math.tointeger(v)
end

local function plural(n, one, many)
  return n .. " " .. (n == 1 and one or many)
end

local function ordinal(n)
  local last_two = n % 100
  if last_two >= 11 and last_two <= 13 then return n .. "th" end
  return n .. (({ "st", "nd", "rd" })[n % 10] or "th")
end

-- Checks a list of questions and returns a clean copy, so a typo in a
-- question is reported when the session starts, not in the middle of class.
local function check_questions(list, time_limit)
  if type(list) ~= "table" or #list == 0 then
    error("the quiz needs a non-empty list of questions")
  end
  local clean = {}
  for i, q in ipairs(list) do
    local where = "question " .. i
    if type(q) ~= "table" then error(where .. " must be a table") end
    if type(q.text) ~= "string" or q.text == "" then
      error(where .. " needs a 'text'")
    end
    if type(q.choices) ~= "table" or #q.choices < 2 or #q.choices > 6 then
      error(where .. " needs a list of 2 to 6 'choices'")
    end
    local choices = {}
    for c, label in ipairs(q.choices) do
      if type(label) ~= "string" and type(label) ~= "number" then
        error(where .. ": choice " .. c .. " must be text")
      end
      choices[c] = tostring(label)
    end
    local answer = to_int(q.answer)
    if not answer or answer < 1 or answer > #choices then
      error(where .. ": 'answer' must be a choice number from 1 to " .. #choices)
    end
    local time = time_limit or given(q.time) or DEFAULT_TIME
    if type(time) ~= "number" or time <= 0 or time > MAX_TIME then
      error(where .. ": 'time' must be a number of seconds, above 0 and at most " .. MAX_TIME)
    end
    local image = given(q.image)
    if image ~= nil and type(image) ~= "string" then
      error(where .. ": 'image' must be a URL")
    end
    clean[i] = {
      text = q.text,
      choices = choices,
      answer = answer,
      time_ms = math.max(1, math.floor(time * 1000)),
      image = image,
    }
  end
  return clean
end

-- Players -------------------------------------------------------------------
-- state.players maps a player id to their record; state.order lists the ids in
-- the order they joined, so lists on screen do not reshuffle between updates.
-- A student who leaves during the game keeps their record (marked `left`) so
-- their points still count in the results.

local function add_player(state, player)
  -- `joined` is the round they arrived in (see state.round below).
  local record = { id = player.id, name = player.name, score = 0, correct = 0, joined = state.round }
  state.players[player.id] = record
  state.order[#state.order + 1] = player.id
  return record
end

local function remove_player(state, id)
  state.players[id] = nil
  for i, pid in ipairs(state.order) do
    if pid == id then
      table.remove(state.order, i)
      return
    end
  end
end

-- Counts the students still in the room into state.present, and those of
-- them who answered the open question into state.answered (someone who left
-- after answering keeps the answer, but is not "1 of 1 answered" for those
-- still waiting). Called whenever someone arrives or goes, so views (run for
-- every member, many times a second) read a number instead of counting.
local function recount(state)
  local n, answered = 0, 0
  for _, id in ipairs(state.order) do
    if not state.players[id].left then
      n = n + 1
      if state.answers[id] then answered = answered + 1 end
    end
  end
  state.present = n
  state.answered = answered
end

-- Sorts everyone by score (ties by name) into state.ranking, which views read
-- instead of sorting once per viewer. Equal scores share a rank: 1, 2, 2, 4.
local function rerank(state)
  local list = {}
  for _, id in ipairs(state.order) do
    list[#list + 1] = state.players[id]
  end
  table.sort(list, function(a, b)
    if a.score ~= b.score then return a.score > b.score end
    local la, lb = a.name:lower(), b.name:lower()
    if la ~= lb then return la < lb end
    return a.id < b.id
  end)
  local ranking, position = {}, {}
  for i, p in ipairs(list) do
    local rank = i
    if i > 1 and p.score == list[i - 1].score then rank = ranking[i - 1].rank end
    ranking[i] = { id = p.id, name = p.name, score = p.score, correct = p.correct, rank = rank }
    position[p.id] = i
  end
  state.ranking = ranking
  state.position = position
end

-- True when every student who is connected and still in the game has
-- answered (and at least one has). Students whose Wi-Fi dropped are not
-- waited for: the timer covers them.
local function everyone_answered(state, ctx)
  if state.answered == 0 then return false end
  for _, member in ipairs(ctx.players()) do
    local record = state.players[member.id]
    if record and not record.left and member.connected ~= false
        and not state.answers[member.id] then
      return false
    end
  end
  return true
end

-- The round flow ------------------------------------------------------------
-- state.round goes up at every change of phase. A timer carries the round it
-- was started in, so a timer that fires after the host has moved on is
-- recognised as stale and ignored.

local function stop_timer(state, ctx)
  if state.timer_id ~= nil then
    ctx.cancel(state.timer_id)
    state.timer_id = nil
  end
end

local function begin_question(state, ctx, number)
  local q = state.questions[number]
  state.phase = "question"
  state.current = number
  state.round = state.round + 1
  state.answers = {}
  state.answered = 0
  state.counts = {}
  for c = 1, #q.choices do state.counts[c] = 0 end
  state.limit_ms = q.time_ms
  state.ends_at = ctx.now() + q.time_ms
  state.timer_id = ctx.after(q.time_ms, "time_up", { round = state.round })
  ctx.broadcast("question", {
    number = number,
    count = #state.questions,
    ends_at = state.ends_at,
  })
end

local function reveal(state, ctx)
  stop_timer(state, ctx)
  local q = state.questions[state.current]
  state.phase = "reveal"
  state.round = state.round + 1
  state.ends_at = nil
  state.revealed = state.revealed + 1
  for id, a in pairs(state.answers) do
    local p = state.players[id]
    if p and a.choice == q.answer then
      p.score = p.score + a.points
      p.correct = p.correct + 1
    end
  end
  rerank(state)
  ctx.broadcast("reveal", {
    number = state.current,
    answer = q.answer,
    label = q.choices[q.answer],
  })
  -- Each student hears how they did (custom clients play a sound on it).
  for _, id in ipairs(state.order) do
    if not state.players[id].left then
      local a = state.answers[id]
      ctx.send(id, "result", {
        correct = a ~= nil and a.choice == q.answer,
        points = a and a.points or 0,
      })
    end
  end
end

local function finish_quiz(state, ctx)
  stop_timer(state, ctx)
  state.phase = "podium"
  state.round = state.round + 1
  state.ends_at = nil
  state.answers = {}
  state.counts = {}
  rerank(state)
  local rows = {}
  for i, r in ipairs(state.ranking) do
    rows[i] = { rank = r.rank, name = r.name, score = r.score, correct = r.correct }
  end
  ctx.log("quiz finished:", #rows, "players,", state.revealed, "questions scored")
  ctx.finish({
    columns = { "rank", "name", "score", "correct" },
    rows = rows,
    title = state.title,
    questions = #state.questions,
    scored = state.revealed,
  })
end

-- After a reveal (or a skip): the next question, or the podium after the last.
local function advance(state, ctx)
  if state.current < #state.questions then
    begin_question(state, ctx, state.current + 1)
  else
    finish_quiz(state, ctx)
  end
end

-- Host controls, shared by the `action` and `event` handlers. Returns nothing
-- on success, or false and a reason.
local function host_command(state, ctx, name)
  local phase = state.phase
  if phase == "podium" then return false, "the quiz is over" end
  if name == "start" then
    if phase ~= "lobby" then return false, "the quiz has already started" end
    if state.present == 0 then
      return false, "nobody has joined yet: wait for at least one player"
    end
    ctx.log("quiz started with", state.present, "players")
    begin_question(state, ctx, 1)
  elseif phase == "lobby" then
    return false, "the quiz has not started yet: press Start first"
  elseif name == "next" then
    if phase == "question" then reveal(state, ctx) else advance(state, ctx) end
  elseif name == "skip" then
    -- During a question its answers are dropped unscored; during a reveal
    -- skipping is the same as moving on.
    stop_timer(state, ctx)
    advance(state, ctx)
  else
    return false, "unknown command '" .. tostring(name) .. "'"
  end
end

local function kick(state, ctx, data)
  local id = type(data) == "table" and given(data.player)
  if type(id) ~= "string" and type(id) ~= "number" then
    return false, "say who to remove: {player = id}"
  end
  id = tostring(id)
  if id == state.host then return false, "the host cannot be removed" end
  local record = state.players[id]
  if not record or record.left then
    return false, "there is no player '" .. id .. "' in this quiz"
  end
  ctx.kick(id, "the host removed you from the quiz")
  -- Recess keeps them out under that name until the host lets them back in.
  state.removed = state.removed or {}
  table.insert(state.removed, record.name)
  -- A removed student leaves no trace: not on the board, not in the results.
  local a = state.answers[id]
  if a then
    state.counts[a.choice] = state.counts[a.choice] - 1
    state.answered = state.answered - 1
    state.answers[id] = nil
  end
  remove_player(state, id)
  recount(state)
  if state.phase ~= "lobby" then rerank(state) end
  if state.phase == "question" and everyone_answered(state, ctx) then
    reveal(state, ctx)
  end
end

-- readmit {name}: someone the host removed may join again.
local function readmit(state, ctx, data)
  local name = type(data) == "table" and data.name
  for i, removed in ipairs(state.removed or {}) do
    if removed == name then
      table.remove(state.removed, i)
      ctx.readmit(name)
      return
    end
  end
  return false, "nobody called '" .. tostring(name) .. "' was removed"
end

-- The host's buttons, with one "let back in" per removed student.
local function with_readmit(state, buttons)
  for _, name in ipairs(state.removed or {}) do
    buttons[#buttons + 1] = { label = "Let " .. name .. " back in", action = "readmit", data = { name = name } }
  end
  return buttons
end

local function answer(state, ctx, player, data)
  if player.role == "host" then return false, "the host does not answer questions" end
  if state.phase == "lobby" then return false, "the quiz has not started yet" end
  if state.phase == "reveal" then return false, "time is up for this question" end
  if state.phase ~= "question" then return false, "the quiz is over" end
  if state.answers[player.id] then return false, "you already answered this question" end
  local q = state.questions[state.current]
  local choice = to_int(type(data) == "table" and data.choice or nil)
  if not choice or choice < 1 or choice > #q.choices then
    return false, "pick one of the answers, 1 to " .. #q.choices
  end
  local now = ctx.now()
  if now > state.ends_at then return false, "time is up for this question" end

  if not state.players[player.id] then  -- (a member the game never saw join)
    add_player(state, player)
    recount(state)
  end
  local points = 0
  if choice == q.answer then
    local time_left = math.max(0, math.min(state.limit_ms, state.ends_at - now))
    points = math.floor(500 + 500 * time_left / state.limit_ms)
  end
  state.answers[player.id] = { choice = choice, points = points }
  state.counts[choice] = state.counts[choice] + 1
  state.answered = state.answered + 1
  if everyone_answered(state, ctx) then reveal(state, ctx) end
end

-- Views -----------------------------------------------------------------------
-- Built from the screen vocabulary of docs/lua-api.md. Nothing a student's
-- view contains depends on the correct answer until the phase is "reveal".

local function question_title(state)
  return "Question " .. state.current .. " of " .. #state.questions
end

local function count_detail(n)
  return plural(n, "answer", "answers")
end

-- Top of the board for everyone, plus the viewer's own row if they are lower.
local function leaderboard(state, viewer_id)
  local board = {}
  for i = 1, math.min(LEADERBOARD_SIZE, #state.ranking) do
    local r = state.ranking[i]
    board[i] = { rank = r.rank, name = r.name, score = r.score, highlight = r.id == viewer_id or nil }
  end
  local mine = viewer_id and state.position[viewer_id]
  if mine and mine > LEADERBOARD_SIZE then
    local r = state.ranking[mine]
    board[#board + 1] = { rank = r.rank, name = r.name, score = r.score, highlight = true }
  end
  if #board == 0 then return nil end
  return board
end

local function podium(state)
  local top = {}
  for i = 1, math.min(3, #state.ranking) do
    local r = state.ranking[i]
    top[i] = { rank = r.rank, name = r.name, score = r.score }
  end
  if #top == 0 then return nil end
  return top
end

-- The host's list of students in the room, with what each is doing.
local function roster(state)
  local list = {}
  for _, id in ipairs(state.order) do
    local p = state.players[id]
    if not p.left then
      local detail
      if state.phase == "question" then
        detail = state.answers[id] and "answered" or "thinking"
      elseif state.phase ~= "lobby" then
        detail = p.score .. " pts"
      end
      list[#list + 1] = { id = id, name = p.name, detail = detail }
    end
  end
  if #list == 0 then return nil end
  return list
end

local function host_view(state)
  local present = state.present
  if state.phase == "lobby" then
    return {
      phase = "lobby",
      title = state.title,
      text = "Students join with the code shown on this screen.",
      status = plural(present, "player", "players") .. " joined",
      players = roster(state),
      kick = "kick",
      buttons = with_readmit(state, {
        { label = "Start", action = "start", style = present == 0 and "disabled" or nil },
      }),
    }
  end

  if state.phase == "podium" then
    return {
      phase = "podium",
      title = state.title .. ": final results",
      podium = podium(state),
      leaderboard = leaderboard(state, nil),
      status = "The quiz is over. The results can be downloaded as a spreadsheet.",
    }
  end

  local q = state.questions[state.current]
  local revealing = state.phase == "reveal"
  local show_answer = revealing or state.host_sees_answer
  local choices = {}
  for c, label in ipairs(q.choices) do
    choices[c] = {
      label = label,
      detail = count_detail(state.counts[c]),
      style = (show_answer and c == q.answer) and "correct" or nil,
    }
  end

  local view = {
    phase = state.phase,
    title = question_title(state),
    text = q.text,
    image = q.image,
    choices = choices,
    players = roster(state),
    kick = "kick",
  }
  if revealing then
    local right = 0  -- of the students in the room
    for id, a in pairs(state.answers) do
      local p = state.players[id]
      if p and not p.left and a.choice == q.answer then right = right + 1 end
    end
    view.status = right .. " of " .. plural(present, "player", "players") .. " got it right"
    view.leaderboard = leaderboard(state, nil)
    local last = state.current == #state.questions
    view.buttons = with_readmit(state, { { label = last and "Show podium" or "Next question", action = "next" } })
  else
    view.status = state.answered .. " of " .. present .. " answered"
    view.timer = { ends_at = state.ends_at, label = "Time left" }
    view.buttons = with_readmit(state, {
      { label = "Reveal answer", action = "next" },
      { label = "Skip question", action = "skip" },
    })
  end
  return view
end

local function player_view(state, player)
  local me = state.players[player.id]
  local present = state.present
  local score = me and me.score or nil

  if state.phase == "lobby" then
    return {
      phase = "lobby",
      title = state.title,
      text = "You're in, " .. player.name .. "! Watch the main screen: the quiz starts soon.",
      status = plural(present, "player", "players") .. " joined",
    }
  end

  if state.phase == "podium" then
    local view = {
      phase = "podium",
      title = state.title .. ": final results",
      podium = podium(state),
      leaderboard = leaderboard(state, player.id),
      score = score,
    }
    local pos = state.position[player.id]
    if pos then
      local r = state.ranking[pos]
      view.banner = {
        text = "You finished " .. ordinal(r.rank) .. " of " .. #state.ranking
          .. " with " .. plural(r.score, "point", "points") .. "!",
        style = r.rank <= 3 and "correct" or nil,
      }
    end
    return view
  end

  local q = state.questions[state.current]
  local mine = state.answers[player.id]
  local view = {
    phase = state.phase,
    title = question_title(state),
    text = q.text,
    image = q.image,
    score = score,
  }

  if state.phase == "question" then
    -- Before the reveal the buttons differ only in their label and the
    -- student's own pick: nothing here depends on which one is correct.
    local choices = {}
    for c, label in ipairs(q.choices) do
      if mine then
        choices[c] = { label = label, style = c == mine.choice and "selected" or "disabled" }
      else
        choices[c] = { label = label, action = "answer", data = { choice = c } }
      end
    end
    view.choices = choices
    view.timer = { ends_at = state.ends_at, label = "Time left" }
    if mine then
      view.status = "Answer saved. " .. state.answered .. " of " .. present .. " answered"
    else
      view.status = state.answered .. " of " .. present .. " answered"
    end
    return view
  end

  -- Reveal: the answer, the student's own result, the board.
  local choices = {}
  for c, label in ipairs(q.choices) do
    local style = "disabled"
    if c == q.answer then
      style = "correct"
    elseif mine and c == mine.choice then
      style = "wrong"
    end
    choices[c] = { label = label, style = style, detail = count_detail(state.counts[c]) }
  end
  view.choices = choices
  local right_answer = q.choices[q.answer]
  if mine and mine.choice == q.answer then
    view.banner = { text = "Correct! +" .. plural(mine.points, "point", "points"), style = "correct" }
  elseif mine then
    view.banner = { text = "Not quite: the answer was " .. right_answer, style = "wrong" }
  elseif me and (me.joined or 0) < state.round then
    -- (a student who arrived during this reveal was never asked)
    view.banner = { text = "No answer this time: it was " .. right_answer, style = "wrong" }
  end
  view.leaderboard = leaderboard(state, player.id)
  local pos = state.position[player.id]
  if pos then
    view.status = "You are " .. ordinal(state.ranking[pos].rank) .. " of " .. #state.ranking
  end
  return view
end

-- The game --------------------------------------------------------------------

return {
  title = TITLE,
  max_players = 200,

  init = function(ctx, params)
    if type(params) ~= "table" then params = {} end
    local time_limit = given(params.time_limit)
    if time_limit ~= nil and (type(time_limit) ~= "number" or time_limit <= 0 or time_limit > MAX_TIME) then
      error("params.time_limit must be a number of seconds, above 0 and at most " .. MAX_TIME)
    end
    local questions = check_questions(given(params.questions) or QUESTIONS, time_limit)
    if params.shuffle == true then
      for i = #questions, 2, -1 do
        local j = ctx.random(1, i)
        questions[i], questions[j] = questions[j], questions[i]
      end
    end
    local title = given(params.title)
    if type(title) ~= "string" or title == "" then
      title = given(params.questions) and "Quiz" or TITLE
    end
    return {
      version = 1,
      title = title,
      questions = questions,            -- copied in: editing the file changes new sessions
      allow_late_join = params.allow_late_join ~= false,
      host_sees_answer = params.host_sees_answer ~= false,
      phase = "lobby",                  -- "lobby" | "question" | "reveal" | "podium"
      current = 0,                      -- number of the question on screen
      round = 0,                        -- bumped at every phase change (stale timers)
      revealed = 0,                     -- questions scored so far
      players = {},                     -- id -> {id, name, score, correct, joined, left?}
      order = {},                       -- ids in join order
      answers = {},                     -- id -> {choice, points} for the open question
      counts = {},                      -- answers per choice for the open question
      answered = 0,
      present = 0,                      -- students in the room (see recount())
      ranking = {},                     -- see rerank()
      position = {},                    -- id -> index in ranking
      -- host, timer_id, ends_at, limit_ms are set as the game goes
    }
  end,

  join = function(state, ctx, player)
    if player.role == "host" then
      state.host = player.id
      return
    end
    if state.players[player.id] then return end
    if state.phase == "podium" then return false, "this quiz is over" end

    -- Someone who left and comes back under the same name gets their seat back.
    local wanted = player.name:lower()
    for i, id in ipairs(state.order) do
      local p = state.players[id]
      if p.left and p.name:lower() == wanted then
        state.players[id] = nil
        p.id, p.name, p.left = player.id, player.name, nil
        state.players[player.id] = p
        state.order[i] = player.id
        if state.answers[id] then
          state.answers[player.id], state.answers[id] = state.answers[id], nil
        end
        recount(state)
        rerank(state)
        return
      end
    end

    if state.phase ~= "lobby" and not state.allow_late_join then
      return false, "this quiz has already started; you can join the next one"
    end
    add_player(state, player)
    recount(state)
    if state.phase ~= "lobby" then rerank(state) end
  end,

  leave = function(state, ctx, player)
    local record = state.players[player.id]
    if not record then return end
    if state.phase == "lobby" then
      remove_player(state, player.id)
    else
      record.left = true  -- their points still count in the results
    end
    recount(state)
    if state.phase == "question" and everyone_answered(state, ctx) then
      reveal(state, ctx)
    end
  end,

  action = function(state, ctx, player, name, data)
    if name == "answer" then
      return answer(state, ctx, player, data)
    end
    local what = ({
      start = "start the quiz",
      next = "move the quiz on",
      skip = "skip a question",
      kick = "remove players",
      readmit = "let removed players back in",
    })[name]
    if not what then
      return false, "unknown action '" .. tostring(name) .. "'"
    end
    if player.role ~= "host" then
      return false, "only the host can " .. what
    end
    if name == "kick" then return kick(state, ctx, data) end
    if name == "readmit" then return readmit(state, ctx, data) end
    return host_command(state, ctx, name)
  end,

  timer = function(state, ctx, name, data)
    -- Stale: the host revealed, skipped or moved on since this timer started.
    if name ~= "time_up" or type(data) ~= "table" or data.round ~= state.round then return end
    if state.phase ~= "question" then return end
    state.timer_id = nil  -- it has fired; nothing left to cancel
    reveal(state, ctx)
  end,

  -- A backend (or a classroom clicker bridge) can drive the quiz over REST:
  -- POST /api/sessions/{id}/events {"name": "next"}
  event = function(state, ctx, name, data)
    if name == "start" or name == "next" or name == "skip" then
      return host_command(state, ctx, name)
    end
    if name == "kick" then return kick(state, ctx, data) end
    return false, "unknown event '" .. tostring(name) .. "'; expected start, next, skip or kick"
  end,

  view = function(state, player)
    if player.role == "host" then return host_view(state) end
    return player_view(state, player)
  end,

  -- Sessions already running when a new version of this file is saved keep
  -- their state; fill in anything an older version did not keep.
  migrate = function(state)
    state.version = 1
    state.revealed = state.revealed or 0
    recount(state)
    state.ranking = state.ranking or {}
    state.position = state.position or {}
    state.allow_late_join = state.allow_late_join ~= false
    state.host_sees_answer = state.host_sees_answer ~= false
    return state
  end,
}
