--[[
buzzer.lua: a buzzer for the start of a lesson.

How a round goes
  lobby     The host's screen lists the students as they join (the host can
            remove one) and has a Start button. Students see that they are in.
  question  The host asks a question out loud. Every student has one big
            BUZZ button. The first to buzz is shown on every screen, with the
            next few in line. That student answers out loud, and the host
            presses Right or Wrong:
              Right  the student gets the points (100, or params.points) and
                     the question is over; the host presses Next question.
              Wrong  that student is out for this question (no points lost)
                     and the next in line answers. With nobody in line the
                     buzzers simply stay open for everyone else.
            The buzzers stay open all through a question: students may buzz
            while someone is answering, and join the line.
  podium    When the host presses Show podium: the top three, and the
            results (rank, name, score) go to the teacher as a CSV.

Who buzzed first
  Buzzes are put in line in the order they reach the server, not by the
  clock of each phone or laptop: a student whose Wi-Fi is slow reaches the
  server a little later. Everyone sees the same line.

Scoreboard
  Everyone sees the scoreboard (the top five, and your own place below it)
  all the time. Equal scores share a place: 1, 2, 2, 4.

Actions
  host:    start, right, wrong, next, finish, kick {player = "p3"},
           readmit {name = "Ana"}
  student: buzz
  `next` goes to the next question at any time (a question nobody got is
  simply over); `finish` shows the podium and ends the game.

Late joiners and leaving
  A student may join at any time before the podium, with 0 points, and buzz
  for the question that is open. A student who leaves keeps their points in
  the results, and gets their seat and score back by joining again under the
  same name.

Params (all optional, given when the session is created)
  points  points for a right answer (a whole number from 1 to 10000;
          default 100)
  title   shown in the lobby and on the podium
]]

local TITLE = "Buzzer"
local DEFAULT_POINTS = 100
local MAX_POINTS = 10000
local IN_LINE_SHOWN = 3     -- names after the one answering, on every screen
local LEADERBOARD_SIZE = 5  -- rows everyone sees; your own row is added below

-- Small helpers -------------------------------------------------------------

-- `v`, unless it is missing or JSON null.
local function given(v)
  if v == nil or v == null then return nil end
  return v
end

local function ordinal(n)
  local last_two, last = n % 100, n % 10
  if last_two >= 11 and last_two <= 13 then return n .. "th" end
  if last == 1 then return n .. "st" end
  if last == 2 then return n .. "nd" end
  if last == 3 then return n .. "rd" end
  return n .. "th"
end

-- Players -------------------------------------------------------------------
-- state.players maps a player id to their record; state.order lists the ids in
-- the order they joined, so lists on screen do not reshuffle between updates.
-- A record: {id, name, score, out?, left?}. `out` is the question number the
-- student was marked wrong on: they may not buzz again for it.

local function remove_id(list, id)
  for i, v in ipairs(list) do
    if v == id then
      table.remove(list, i)
      return true
    end
  end
  return false
end

-- Where `id` is in the line (1 = answering), or nil.
local function place_in_line(state, id)
  for i, v in ipairs(state.line) do
    if v == id then return i end
  end
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
    ranking[i] = { id = p.id, name = p.name, score = p.score, rank = rank }
    position[p.id] = i
  end
  state.ranking = ranking
  state.position = position
end

-- The names of the line after the one answering, at most IN_LINE_SHOWN, as
-- "Ben, Cy, Dee", or nil when nobody waits.
local function waiting_names(state)
  local names = {}
  for i = 2, math.min(#state.line, IN_LINE_SHOWN + 1) do
    names[#names + 1] = state.players[state.line[i]].name
  end
  if #names == 0 then return nil end
  local more = #state.line - 1 - #names
  local text = table.concat(names, ", ")
  if more > 0 then text = text .. " and " .. more .. " more" end
  return text
end

-- How many students in the room may still buzz for this question.
local function can_still_buzz(state)
  local n = 0
  for _, id in ipairs(state.order) do
    local p = state.players[id]
    if not p.left and p.out ~= state.number and not place_in_line(state, id) then n = n + 1 end
  end
  return n
end

-- The game -------------------------------------------------------------------

local function open_question(state, ctx)
  state.phase = "question"
  state.number = state.number + 1
  state.line = {}
  state.last = nil
  ctx.broadcast("question", { number = state.number })
end

local function finish(state, ctx)
  state.phase = "podium"
  state.line = {}
  rerank(state)
  local rows = {}
  for i, r in ipairs(state.ranking) do
    rows[i] = { rank = r.rank, name = r.name, score = r.score }
  end
  ctx.finish({ title = state.title, columns = { "rank", "name", "score" }, rows = rows })
end

-- Right or wrong, for the student answering (the first in line).
local function mark(state, ctx, right)
  if state.phase ~= "question" then
    return false, state.phase == "lobby" and "the game has not started yet"
      or state.phase == "answered" and "this question is already answered: press Next question"
      or "the game is over"
  end
  local id = state.line[1]
  if not id then return false, "nobody is answering: wait for a student to buzz" end
  local p = state.players[id]
  table.remove(state.line, 1)
  if right then
    p.score = p.score + state.points
    state.phase = "answered"
    state.line = {}
    state.last = { name = p.name, id = id, right = true }
    rerank(state)
    ctx.broadcast("answer", { name = p.name, right = true, points = state.points })
  else
    p.out = state.number
    state.last = { name = p.name, id = id, right = false }
    ctx.broadcast("answer", { name = p.name, right = false, points = 0 })
  end
end

local function host_command(state, ctx, name)
  if state.phase == "podium" then return false, "the game is over" end
  if name == "start" then
    if state.phase ~= "lobby" then return false, "the game has already started" end
    if #state.order == 0 then return false, "wait until at least one student has joined" end
    rerank(state)
    open_question(state, ctx)
  elseif name == "next" then
    if state.phase == "lobby" then return false, "press Start first" end
    open_question(state, ctx)
  elseif name == "right" or name == "wrong" then
    return mark(state, ctx, name == "right")
  elseif name == "finish" then
    if state.phase == "lobby" then return false, "the game has not started yet" end
    finish(state, ctx)
  else
    return false, "unknown command '" .. tostring(name) .. "'"
  end
end

local function buzz(state, ctx, player)
  if player.role == "host" then return false, "the host does not buzz" end
  if player.role == "bot" then return false, "bots watch the game; they do not buzz" end
  local p = state.players[player.id]
  if not p then return false, "you are not in this game" end
  if state.phase == "lobby" then return false, "the game has not started yet" end
  if state.phase == "answered" then return false, "this question is answered: wait for the next one" end
  if state.phase == "podium" then return false, "the game is over" end
  if p.out == state.number then
    return false, "you have answered this question already: wait for the next one"
  end
  local place = place_in_line(state, player.id)
  if place == 1 then return false, "you buzzed first: answer now" end
  if place then return false, "you are already in line (" .. ordinal(place) .. ")" end
  state.line[#state.line + 1] = player.id
  ctx.broadcast("buzz", { name = p.name, place = #state.line })
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
    return false, "there is no player '" .. id .. "' in this game"
  end
  ctx.kick(id, "the host removed you from the game")
  -- Recess keeps them out under that name until the host lets them back in.
  state.removed[#state.removed + 1] = record.name
  -- A removed student leaves no trace: not in line, not on the board, not in
  -- the results.
  state.players[id] = nil
  remove_id(state.order, id)
  remove_id(state.line, id)
  rerank(state)
end

-- readmit {name}: someone the host removed may join again.
local function readmit(state, ctx, data)
  local name = type(data) == "table" and data.name
  for i, removed in ipairs(state.removed) do
    if removed == name then
      table.remove(state.removed, i)
      ctx.readmit(name)
      return
    end
  end
  return false, "nobody called '" .. tostring(name) .. "' was removed"
end

-- Views ------------------------------------------------------------------------

-- The top of the board for everyone, with the viewer's own row below when
-- they are further down.
local function leaderboard(state, viewer_id)
  if #state.ranking == 0 then return nil end
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
  return board
end

local function podium(state)
  local top = {}
  for i = 1, math.min(3, #state.ranking) do
    local r = state.ranking[i]
    top[i] = { rank = r.rank, name = r.name, score = r.score }
  end
  return top
end

-- What the host's player list says of a student now.
local function detail(state, id)
  local p = state.players[id]
  if state.phase == "question" then
    local place = place_in_line(state, id)
    if place == 1 then return "answering" end
    if place then return ordinal(place) .. " in line" end
    if p.out == state.number then return "wrong this time" end
  end
  if state.phase ~= "lobby" then return p.score .. " points" end
end

local function host_players(state)
  local list = {}
  for _, id in ipairs(state.order) do
    local p = state.players[id]
    if not p.left then list[#list + 1] = { id = id, name = p.name, detail = detail(state, id) } end
  end
  return list
end

local function with_readmit(state, buttons)
  for _, name in ipairs(state.removed) do
    buttons[#buttons + 1] = { label = "Let " .. name .. " back in", action = "readmit", data = { name = name } }
  end
  return buttons
end

local function present(state)
  local n = 0
  for _, id in ipairs(state.order) do
    if not state.players[id].left then n = n + 1 end
  end
  return n
end

local function host_view(state)
  if state.phase == "lobby" then
    local n = present(state)
    return {
      title = state.title,
      text = "Students join with the code shown on this screen. Then ask a question out loud: the first to buzz answers.",
      status = n .. (n == 1 and " student joined" or " students joined"),
      players = host_players(state),
      kick = "kick",
      buttons = with_readmit(state, { { label = "Start", action = "start", style = n == 0 and "disabled" or nil } }),
    }
  end
  if state.phase == "podium" then
    return { title = state.title, podium = podium(state), leaderboard = leaderboard(state, nil) }
  end
  local view = {
    title = "Question " .. state.number,
    players = host_players(state),
    kick = "kick",
    leaderboard = leaderboard(state, nil),
  }
  local buttons = {}
  if state.phase == "answered" then
    view.banner = { text = state.last.name .. " got it right: +" .. state.points, style = "correct" }
    view.text = "Ask the next question, then press Next question."
  else
    local first = state.line[1] and state.players[state.line[1]]
    if first then
      view.banner = { text = first.name .. " is answering" }
      buttons[1] = { label = "Right: +" .. state.points .. " for " .. first.name, action = "right", style = "correct" }
      buttons[2] = { label = "Wrong", action = "wrong", style = "wrong" }
    elseif state.last then
      view.banner = { text = state.last.name .. " was wrong. Buzzers are open", style = "wrong" }
    else
      view.text = "Ask the question out loud. Buzzers are open."
    end
    local waiting = waiting_names(state)
    if waiting then
      view.status = "Next in line: " .. waiting
    elseif not first and can_still_buzz(state) == 0 then
      view.status = "Nobody else can buzz: press Next question."
    end
  end
  buttons[#buttons + 1] = { label = "Next question", action = "next" }
  buttons[#buttons + 1] = { label = "Show podium", action = "finish" }
  view.buttons = with_readmit(state, buttons)
  return view
end

local BUZZ = { { label = "BUZZ!", action = "buzz" } }

local function buzz_button(label)
  return { { label = label, style = "disabled" } }
end

local function player_view(state, player)
  local p = state.players[player.id]
  if not p then
    return { title = state.title, text = "You are not in this game." }
  end
  if state.phase == "lobby" then
    return {
      title = state.title,
      text = "You're in, " .. p.name .. "! When the game starts, listen to the question and buzz if you know the answer.",
    }
  end
  local view = {
    leaderboard = leaderboard(state, player.id),
    score = p.score,
  }
  if state.phase == "podium" then
    view.title = state.title
    view.podium = podium(state)
    local r = state.ranking[state.position[player.id]]
    view.banner = {
      text = "You finished " .. ordinal(r.rank) .. " of " .. #state.ranking .. " with " .. r.score .. " points",
      style = r.rank <= 3 and "correct" or nil,
    }
    return view
  end
  view.title = "Question " .. state.number
  if state.phase == "answered" then
    local mine = state.last.id == player.id
    view.banner = {
      text = mine and "Right! +" .. state.points .. " points" or state.last.name .. " got it right",
      style = mine and "correct" or nil,
    }
    view.choices = buzz_button("Wait for the next question")
    return view
  end
  local place = place_in_line(state, player.id)
  local first = state.line[1] and state.players[state.line[1]]
  if place == 1 then
    view.banner = { text = "You buzzed first! Answer out loud", style = "correct" }
    view.choices = buzz_button("You are answering")
  elseif p.out == state.number then
    view.banner = { text = "Not this time: wait for the next question", style = "wrong" }
    view.choices = buzz_button("Wait for the next question")
  else
    if first then view.banner = { text = first.name .. " is answering" } end
    if place then
      view.choices = buzz_button("You are " .. ordinal(place) .. " in line")
    else
      view.text = "Listen to the question. Know the answer? Buzz!"
      view.choices = BUZZ
    end
  end
  local waiting = waiting_names(state)
  if waiting then view.status = "Next in line: " .. waiting end
  return view
end

return {
  title = TITLE,
  max_players = 200,

  init = function(ctx, params)
    params = type(params) == "table" and params or {}
    local points = given(params.points)
    if points ~= nil then
      points = math.tointeger(tonumber(points))
      if not points or points < 1 or points > MAX_POINTS then
        error("params.points must be a whole number from 1 to " .. MAX_POINTS)
      end
    end
    local title = given(params.title)
    return {
      version = 1,
      title = type(title) == "string" and title ~= "" and title or TITLE,
      points = points or DEFAULT_POINTS,
      phase = "lobby",   -- "lobby" | "question" | "answered" | "podium"
      number = 0,        -- the question on screen
      players = {},      -- id -> {id, name, score, out?, left?}
      order = {},        -- ids in join order
      line = {},         -- ids in the order their buzz reached the server
      removed = {},      -- names the host removed (for readmit)
      ranking = {},      -- see rerank()
      position = {},     -- id -> index in ranking
      -- host and last (the last answer marked: {name, id, right}) are set as the game goes
    }
  end,

  join = function(state, ctx, player)
    if player.role == "host" then
      state.host = player.id
      return
    end
    -- A bot (a backend service) watches: not on the board, never in line.
    if player.role == "bot" then return end
    if state.players[player.id] then return end
    if state.phase == "podium" then return false, "this game is over" end

    -- Someone who left and comes back under the same name gets their seat back.
    local wanted = player.name:lower()
    for i, id in ipairs(state.order) do
      local p = state.players[id]
      if p.left and p.name:lower() == wanted then
        state.players[id] = nil
        p.id, p.name, p.left = player.id, player.name, nil
        state.players[player.id] = p
        state.order[i] = player.id
        rerank(state)
        return
      end
    end

    state.players[player.id] = { id = player.id, name = player.name, score = 0 }
    state.order[#state.order + 1] = player.id
    if state.phase ~= "lobby" then rerank(state) end
  end,

  leave = function(state, ctx, player)
    local p = state.players[player.id]
    if not p then return end
    if state.phase == "lobby" then
      state.players[player.id] = nil
      remove_id(state.order, player.id)
      return
    end
    p.left = true  -- their points still count in the results
    -- Out of the line; if they were answering, the next in line answers.
    remove_id(state.line, player.id)
  end,

  action = function(state, ctx, player, name, data)
    if name == "buzz" then return buzz(state, ctx, player) end
    local what = ({
      start = "start the game",
      next = "go to the next question",
      right = "mark an answer right",
      wrong = "mark an answer wrong",
      finish = "end the game",
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

  -- A backend (or a classroom clicker bridge) can drive the game over REST:
  -- POST /api/sessions/{id}/events {"name": "right"}
  event = function(state, ctx, name, data)
    if name == "start" or name == "next" or name == "right" or name == "wrong" or name == "finish" then
      return host_command(state, ctx, name)
    end
    if name == "kick" then return kick(state, ctx, data) end
    return false, "unknown event '" .. tostring(name) .. "'; expected start, next, right, wrong, finish or kick"
  end,

  -- `phase` is for custom screens and tests; the page does not draw it.
  view = function(state, player)
    local view = player.role == "host" and host_view(state) or player_view(state, player)
    view.phase = state.phase
    return view
  end,

  -- Sessions already running when a new version of this file is saved keep
  -- their state; fill in anything an older version did not keep.
  migrate = function(state)
    state.version = 1
    state.line = state.line or {}
    state.removed = state.removed or {}
    state.ranking = state.ranking or {}
    state.position = state.position or {}
    return state
  end,
}
