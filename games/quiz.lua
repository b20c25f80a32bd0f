--[[
quiz.lua: a Kahoot-style quiz for the classroom.

How a round goes
  lobby     The host's screen lists the students as they join (the host can
            remove one) and has a Start button.
  question  Everyone sees the question and a countdown; students answer on
            their device (buttons, a text field, a slider, ... by type).
            Each student may answer once. The host sees the correct answer,
            how many have answered and what they picked.
  reveal    When every connected student has answered, the time runs out or
            the host presses Next: students see whether they were right and
            the points they got, and everyone sees the leaderboard.
  podium    After the last question: the top three, and the results go to
            the teacher as a CSV (see Results below).

Question types (the `type` of a question; see QUESTIONS below for examples)
  Every question has `text`, and may have `time` (seconds, default 20),
  `image` (a picture URL) and `points` (0 = no points, 1 = standard,
  2 = double; any multiplier from 0 to 10).

  choice     (the default) `choices` = 2 to 6 answers. `answer = 3` means the
             third is right: students press one button. `answer = {1, 3}` (a
             list, even of one) means students tick one or several answers
             and press Submit; they are right only when they ticked exactly
             the right ones (no partial credit). They are not told how many
             are right: write "Pick two" in the question if you want to.
  truefalse  `answer = true` or `false`. The buttons say True and False, or
             your own words: `choices = {"Vrai", "Faux"}`.
  type       Students type the answer. `answer = "Paris"`, or a list of
             accepted answers {"Zurich", "Zürich"}. Capitals, accents and
             extra spaces do not matter: "  sao   PAULO" matches "São Paulo".
  slider     Students pick a number with a slider: `min`, `max`, `step`
             (default 1), `answer`, and optionally `unit` ("°C") and
             `tolerance` (default a tenth of max - min). Full points for the
             exact answer, falling evenly to 0 at `tolerance` away; inside the
             tolerance counts as right.
  order      `items` = 2 to 6 things written in the right order; students
             see them shuffled (never in the right order, with 3 or more)
             and put them in order. Right only when all are in place.
  poll       `choices`, no right answer and no points: the host's screen
             shows a live bar chart of the votes.
  cloud      Students type up to `words` words or short phrases (default 3);
             the host's screen shows them as a live word cloud. No points.
             "Paris" and "paris " count as the same word.

Scoring
  A right answer scores the speed points
      500 + 500 * (time_left / time_limit), rounded down
  (1000 for an instant answer, 750 halfway through, 500 at the last moment),
  times the question's `points` (rounded down). A slider answer inside the
  tolerance scores that times its closeness: 1 - distance / tolerance. A
  wrong answer, or no answer, scores 0. Points are added at the reveal, so
  nobody's score gives the answer away while the question is still open.

Spreadsheets
  Save a spreadsheet as games/NAME.quiz.csv (or .xlsx) and it becomes the game
  NAME, played with these rules: Kahoot's quiz template works as it is, and
  so does a sheet with the headings
      type, question, choice 1 ... choice 6, correct, time, image, points,
      min, max, step, unit, tolerance, words
  (see SPREADSHEETS below, and docs/lua-api.md "Quiz spreadsheets").

Teams (params.teams = 3, or a list of names {"Red", "Blue"}; 2 to 8)
  Students go into the smallest team as they join (ties: the first). With
  params.team_choice = true they pick a team in the lobby instead (one button
  per team, with its size); a pick is refused when that team already has more
  players than the smallest one (not counting the one moving), so teams never
  differ by more than 1, and whoever has not picked at Start goes into the
  smallest. A student who leaves and comes back keeps their team.
  THE TEAM SCORE IS THE AVERAGE OF ITS MEMBERS' SCORES, ROUNDED DOWN, so a
  team of 5 and a team of 4 compete fairly (members: everyone who played for
  it, including those who left; an empty team scores 0). At each reveal the
  leaderboard shows the teams (yours highlighted); the podium shows the top
  teams, with the students' leaderboard below.

Self-paced (homework): params.pace = "self", params.deadline = 48 (hours)
  No lobby and no host moving everyone on: the quiz is open from the start
  until the deadline (default 24 hours, at most a week) or until the host
  presses Close. Each student presses Start when they are ready and goes
  through the questions on their own, each question on their own timer
  (scored as above, at once, since nobody else sees its answer then), with
  a Next button after each. They may stop between questions and come back
  (under the same name) to go on where they were; a timer runs on while
  they are away. The host's screen lists every student with where they are,
  a bar per question (how many are done with it, how many got it right) and
  the leaderboard. At the deadline the questions still open count as not
  answered, and the podium and the results follow, as in a live quiz.

Results (the CSV), one row per student, best first
  rank, name, score, correct (questions right), then team (with teams),
  real_name (with generated names: the name the student typed; private, so
  only the host and the API get it), then for every question N:
    qN answer   what they answered, as text: the choice(s) (", " between
                several), the typed text, the slider's number, an order as
                "Mercury > Venus > ...", cloud words as "sun, rain"
    qN correct  yes or no; empty for polls and clouds
    qN points   the points it scored
    qN time     seconds from the question's start to their answer ("2.5")
  Not answered: answer and time empty, "no" and 0. Skipped, not yet played or
  before they joined: all empty. The results can be downloaded during the
  game too: they are reported at the start and at every reveal.

Actions
  host:    start, next, skip, close (self-paced), kick {player = "p3"}, readmit {name = "Ana"},
           rename {player = "p3", name = "Ana B"} (refused with the reason
           when the name is taken or not allowed)
  student: team {team = 2} (team_choice, in the lobby), answer, with {choice = 2} (one button), {choices = {1, 3}}
           (several), {text = "Paris"} (type, cloud), {value = 42} (slider)
           or {order = {3, 1, 2}} (order: positions in the shuffled list);
           next (self-paced: Start, and Next after each question)
  `next` reveals the answer early during a question, and moves on to the next
  question (or the podium) during a reveal. `skip` drops the current question
  without scoring it.

Late joiners
  A student who joins after the start plays on with a score of 0 and may
  answer the question that is open when they arrive (the time bonus is fair:
  it only counts the time left). With params.allow_late_join = false they are
  turned away with a reason instead. A student who left and comes back under
  the name they typed gets their seat and score back (and the name the class
  knew them by, if the host renamed them).

Params (all optional, given when the session is created)
  questions         a list replacing the built-in questions, same shape as
                    QUESTIONS below
  sheet             {file =, rows = {{row = 1, cells = {"question", ...}}, ...}}:
                    spreadsheet rows, read as a spreadsheet file would be (for
                    tests, or a backend with its own upload)
  time_limit        seconds per question for every question (decimals are
                    fine, so tests can run a quiz in a second)
  shuffle           true to play the questions in a random order
  title             shown in the lobby and on the podium
  allow_late_join   false to refuse students once the quiz has started
  host_sees_answer  false to hide the answer on the host's screen until the
                    reveal (for a host screen projected to the class)
  teams             a number of teams (2-8) or a list of team names
  team_choice       true to let students pick their team in the lobby
  pace              "self" for homework (see Self-paced above); "host" (the
                    default) for a live quiz
  deadline          hours a self-paced quiz stays open (default 24, at most 168)
]]

-- The questions. `answer` is the right answer (for `choice`: the position of
-- the right choice, 1 = first), `time` the seconds students get, `image` an
-- optional picture URL.
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
    type = "truefalse",
    text = "The Sun is a star.",
    answer = true,
    time = 10,
  },
  {
    type = "type",
    text = "What is the capital of Japan?",
    answer = { "Tokyo", "Tokio" },
    time = 20,
  },
  {
    type = "slider",
    text = "At what temperature does water boil at sea level?",
    min = 0, max = 300, step = 5, unit = "°C",   -- the slider starts at 150
    answer = 100,
    tolerance = 20,
    time = 20,
  },
  {
    type = "order",
    text = "Put the planets in order, nearest the Sun first.",
    items = { "Mercury", "Venus", "Earth", "Mars" },
    time = 30,
  },
  {
    text = "Which of these are mammals? Pick all that are.",
    choices = { "Whale", "Shark", "Bat", "Penguin" },
    answer = { 1, 3 },
    time = 20,
    points = 2,
  },
  {
    type = "poll",
    text = "How did you find this quiz?",
    choices = { "Easy", "Just right", "Hard" },
    time = 15,
  },
  {
    type = "cloud",
    text = "One word for today's lesson?",
    words = 1,
    time = 20,
  },
}

local TITLE = "Capitals and science quiz"
local DEFAULT_TIME = 20     -- seconds, for a question without `time`
local MAX_TIME = 3600       -- seconds; longer is surely a typo
local MAX_CHOICES = 6       -- answers of a choice or poll question, items of an order one
local MAX_TYPED = 100       -- characters of a typed answer
local MAX_WORD = 30         -- characters of one word (or phrase) of a cloud
local MAX_WORDS = 10        -- most words a cloud question may ask of a student
local MAX_POINTS = 10       -- largest `points` multiplier
local LEADERBOARD_SIZE = 5  -- rows everyone sees; your own row is added below
local TOP_WORDS = 50        -- words in a cloud, answers in a typed question's chart
local MAX_TEAMS = 8
local DEFAULT_DEADLINE = 24 -- hours a self-paced quiz stays open
local MAX_DEADLINE = 168    -- hours (a week): the longest a game timer may wait
local TEAM_NAMES = { "Red", "Blue", "Green", "Yellow", "Purple", "Orange", "Pink", "Teal" }

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

-- A number from a number or numeric string; nil for anything else (and NaN).
local function to_number(v)
  if type(v) == "string" then v = tonumber(v) end
  if type(v) ~= "number" or v ~= v then return nil end
  return v
end

local function plural(n, one, many)
  return n .. " " .. (n == 1 and one or many)
end

local function ordinal(n)
  local last_two = n % 100
  if last_two >= 11 and last_two <= 13 then return n .. "th" end
  return n .. (({ "st", "nd", "rd" })[n % 10] or "th")
end

-- A value as a message quotes it: 'abc', 5, a list.
local function shown(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) == "table" then return "a list" end
  return tostring(v)
end

-- 42 as "42", 2.5 as "2.5", 100 with unit "°C" as "100 °C".
local function number_text(n, unit)
  local text = math.tointeger(n) and tostring(math.tointeger(n)) or string.format("%.10g", n)
  if unit then text = text .. " " .. unit end
  return text
end

-- "a, b and c".
local function and_list(list)
  if #list <= 1 then return list[1] or "" end
  return table.concat(list, ", ", 1, #list - 1) .. " and " .. list[#list]
end

-- Text folding ----------------------------------------------------------------
-- Typed answers, cloud words and spreadsheet headings are compared folded
-- (string.fold, docs/lua-api.md §13): in lower case, without accents, with
-- the spaces trimmed and single, in any script; curly quotes count as
-- straight ones. So "  Zürich " = "zurich" and "São  Paulo" = "sao paulo".
local function fold(text)
  return tostring(text):fold()
end

-- Trimmed, with single spaces, as typed otherwise (for showing).
local function tidy(text)
  return (tostring(text):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

-- Checking questions ----------------------------------------------------------
-- One check for every question, whether it comes from QUESTIONS, from
-- params.questions or from a spreadsheet: a typo is reported when the
-- session starts (or the file is saved), not in the middle of class.

-- What a teacher may write as a question's type, folded and without spaces,
-- dashes or slashes ("True/False", "word cloud", "Type answer" all work).
local TYPE_NAMES = {
  choice = "choice", choices = "choice", quiz = "choice", multiplechoice = "choice",
  truefalse = "truefalse", trueorfalse = "truefalse", tf = "truefalse",
  type = "type", typeanswer = "type", typed = "type", text = "type", open = "type",
  slider = "slider", number = "slider",
  order = "order", puzzle = "order", sort = "order",
  poll = "poll", survey = "poll", vote = "poll",
  cloud = "cloud", wordcloud = "cloud",
}

-- The type a question names: "choice" when it names none, nil when unknown.
local function type_of(name)
  if name == nil then return "choice" end
  if type(name) ~= "string" then return nil end
  local key = fold(name):gsub("[%s%-_/]", "")
  if key == "" then return "choice" end
  return TYPE_NAMES[key]
end

-- `points` as a number: 1 when missing; also the words Kahoot uses.
local POINTS_WORDS = { standard = 1, double = 2, none = 0, ["no points"] = 0, zero = 0 }

local function range_text(n) return "1–" .. n end

-- A list of 2 to MAX_CHOICES labels (`what` says "answers" or "items").
local function check_labels(list, what)
  if type(list) ~= "table" then
    return nil, "a question needs a list of 2 to " .. MAX_CHOICES .. " " .. what
  end
  local labels = {}
  for c, label in ipairs(list) do
    if type(label) ~= "string" and type(label) ~= "number" then
      return nil, what:sub(1, -2) .. " " .. c .. " must be text"
    end
    label = tidy(label)
    if label == "" then return nil, what:sub(1, -2) .. " " .. c .. " is empty" end
    labels[c] = label
  end
  if #labels < 2 then
    return nil, "a question needs at least 2 " .. what .. ", got " .. #labels
  end
  if #labels > MAX_CHOICES then
    return nil, "a question may have at most " .. MAX_CHOICES .. " " .. what .. ", got " .. #labels
  end
  return labels
end

-- The right choice(s) of a `choice` question: a number, or a list of them
-- (ascending, no repeats) when students tick several.
local function check_choice_answer(answer, n)
  if answer == nil then
    return nil, "the correct answer is missing: give the number of the right answer, " .. range_text(n)
  end
  local wrong = "the correct answer must be " .. range_text(n) .. ", got "
  if type(answer) ~= "table" then
    local c = to_int(answer)
    if not c or c < 1 or c > n then return nil, wrong .. shown(answer) end
    return c
  end
  local list, seen = {}, {}
  for _, v in ipairs(answer) do
    local c = to_int(v)
    if not c or c < 1 or c > n then return nil, wrong .. shown(v) end
    if seen[c] then return nil, "the correct answer " .. c .. " is given twice" end
    seen[c] = true
    list[#list + 1] = c
  end
  if #list == 0 then
    return nil, "the correct answer is missing: give the number of the right answer, " .. range_text(n)
  end
  table.sort(list)
  return list
end

-- true/false, 1/2, "true"/"false", "yes"/"no" or one of the two labels.
local function check_truefalse_answer(answer, labels)
  if answer == true or answer == false then return answer and 1 or 2 end
  if answer == nil then return nil, "the correct answer is missing: write true or false" end
  local c = to_int(answer)
  if c == 1 or c == 2 then return c end
  if type(answer) == "string" then
    local word = fold(answer)
    if word == "true" or word == "t" or word == "yes" or word == fold(labels[1]) then return 1 end
    if word == "false" or word == "f" or word == "no" or word == fold(labels[2]) then return 2 end
  end
  return nil, "the correct answer must be true or false, got " .. shown(answer)
end

-- Checks one question; returns a clean copy, or nil and what is wrong.
local function check_question(q, time_limit)
  if type(q) ~= "table" then return nil, "a question must be a table" end
  local kind = type_of(given(q.type))
  if not kind then
    return nil, "unknown question type " .. shown(q.type)
      .. ": use choice, truefalse, type, slider, order, poll or cloud"
  end
  local text = given(q.text)
  if type(text) == "number" then text = tostring(text) end
  if type(text) ~= "string" then return nil, "the question has no text" end
  if tidy(text) == "" then return nil, "the question is empty" end

  local raw_time = given(q.time)
  local time = time_limit or (raw_time == nil and DEFAULT_TIME) or to_number(raw_time)
  if not time or time <= 0 or time > MAX_TIME then
    return nil, "the time must be a number of seconds, above 0 and at most " .. MAX_TIME
      .. ", got " .. shown(raw_time)
  end
  local image = given(q.image)
  if image ~= nil and type(image) ~= "string" then return nil, "the image must be a URL" end
  if image == "" then image = nil end
  local raw_points = given(q.points)
  local points = 1
  if raw_points ~= nil then
    points = to_number(raw_points)
    if points == nil and type(raw_points) == "string" then points = POINTS_WORDS[fold(raw_points)] end
    if not points or points < 0 or points > MAX_POINTS then
      return nil, "the points must be 0 (no points), 1 (standard) or 2 (double), or another multiplier up to "
        .. MAX_POINTS .. ", got " .. shown(raw_points)
    end
  end

  local clean = {
    type = kind,
    text = text,
    time_ms = math.max(1, math.floor(time * 1000)),
    image = image,
    points = points,
  }
  local answer = given(q.answer)
  local why
  if kind == "choice" or kind == "poll" then
    clean.choices, why = check_labels(given(q.choices), "answers")
    if not clean.choices then return nil, why end
    if kind == "choice" then
      clean.answer, why = check_choice_answer(answer, #clean.choices)
      if not clean.answer then return nil, why end
      clean.multi = type(clean.answer) == "table" or nil
    end
  elseif kind == "truefalse" then
    local labels = given(q.choices) or { "True", "False" }
    clean.choices, why = check_labels(labels, "answers")
    if not clean.choices then return nil, why end
    if #clean.choices ~= 2 then
      return nil, "a true/false question has 2 answers, got " .. #clean.choices
    end
    clean.answer, why = check_truefalse_answer(answer, clean.choices)
    if not clean.answer then return nil, why end
  elseif kind == "type" then
    if type(answer) ~= "table" then answer = { answer } end
    local accepted, keys = {}, {}
    for _, a in ipairs(answer) do
      if type(a) ~= "string" and type(a) ~= "number" then
        return nil, "an accepted answer must be text, got " .. shown(a)
      end
      local key = fold(a)
      if key == "" then return nil, "an accepted answer is empty" end
      if utf8.len(tostring(a)) and utf8.len(tostring(a)) > MAX_TYPED then
        return nil, "an accepted answer may have at most " .. MAX_TYPED .. " characters"
      end
      accepted[#accepted + 1] = tidy(a)
      keys[#keys + 1] = key
    end
    if #accepted == 0 then return nil, "the correct answer is missing: give the accepted answer(s)" end
    clean.answer, clean.keys = accepted, keys
  elseif kind == "slider" then
    local min = given(q.min) == nil and 0 or to_number(q.min)
    local max = given(q.max) == nil and 100 or to_number(q.max)
    if not min then return nil, "the slider's min must be a number, got " .. shown(q.min) end
    if not max then return nil, "the slider's max must be a number, got " .. shown(q.max) end
    if min >= max then
      return nil, "the slider's min must be below its max, got " .. number_text(min) .. " and " .. number_text(max)
    end
    local step = given(q.step) == nil and 1 or to_number(q.step)
    if not step or step <= 0 or step > max - min then
      return nil, "the slider's step must be a number above 0 and at most max - min, got " .. shown(given(q.step))
    end
    local value = to_number(answer)
    if value == nil then
      return nil, "the correct answer must be a number from " .. number_text(min) .. " to "
        .. number_text(max) .. ", got " .. shown(answer)
    end
    if value < min or value > max then
      return nil, "the correct answer must be a number from " .. number_text(min) .. " to "
        .. number_text(max) .. ", got " .. number_text(value)
    end
    local tolerance = given(q.tolerance) == nil and (max - min) / 10 or to_number(q.tolerance)
    if not tolerance or tolerance < 0 then
      return nil, "the tolerance must be a number, 0 or more, got " .. shown(given(q.tolerance))
    end
    local unit = given(q.unit)
    if unit ~= nil and type(unit) ~= "string" then return nil, "the unit must be text, such as 'km'" end
    clean.min, clean.max, clean.step, clean.tolerance = min, max, step, tolerance
    clean.unit = unit ~= "" and unit or nil
    clean.answer = value
  elseif kind == "order" then
    clean.items, why = check_labels(given(q.items), "items")
    if not clean.items then return nil, why end
    local seen = {}
    for _, item in ipairs(clean.items) do
      if seen[fold(item)] then return nil, "the item " .. shown(item) .. " is there twice: each must be different" end
      seen[fold(item)] = true
    end
  elseif kind == "cloud" then
    local words = given(q.words) == nil and 3 or to_int(q.words)
    if not words or words < 1 or words > MAX_WORDS then
      return nil, "the words per student must be a whole number from 1 to " .. MAX_WORDS
        .. ", got " .. shown(given(q.words))
    end
    clean.words = words
  end
  -- Polls and clouds have no right answer, so no points either.
  if kind == "poll" or kind == "cloud" then clean.points = 0 end
  return clean
end

-- Checks a list of questions and returns a clean copy.
local function check_questions(list, time_limit)
  if type(list) ~= "table" or #list == 0 then
    error("the quiz needs a non-empty list of questions")
  end
  local clean = {}
  for i, q in ipairs(list) do
    local ok, why = check_question(q, time_limit)
    if not ok then error("question " .. i .. ": " .. why) end
    clean[i] = ok
  end
  return clean
end

-- SPREADSHEETS ------------------------------------------------------------------
-- A file games/NAME.quiz.csv (or .xlsx) is the game NAME with these rules.
-- Recess reads its first worksheet and calls `sheet` below (the game table's
-- `sheet`) with every row that is not blank:
--     { file = "capitals.quiz.csv", rows = { {row = 1, cells = {"cell", "cell", ...}}, ... } }
-- It returns the params of the game's sessions, or nil, row, message.
--
-- The layout (docs/lua-api.md, "Quiz spreadsheets"):
--   * optional rows before the headings; a row `title | My quiz` gives the title
--     (otherwise it comes from the file name: world_capitals.quiz.csv gives
--     "World capitals");
--   * a row of headings with a `question` column; each heading is known by its
--     first words, in any case: question, type, choice 1 ... choice 6 (or
--     answer 1 ... answer 6, or one `choices` column with the answers
--     separated by |), correct, time, image, points, min, max, step, unit,
--     tolerance, words. Other columns are ignored, so Kahoot's template
--     ("Question - max 120 characters", "Answer 1 - max 75 characters", ...,
--     "Time limit (sec)", "Correct answer(s)") reads as it is;
--   * then one question per row. What `correct` holds depends on the type:
--       choice     the number of the right answer (3), or several (1,3); or
--                  the right answer's text
--       truefalse  true or false (the choice columns may rename the buttons)
--       type       the accepted answers, separated by | (Paris|Paree); or one
--                  per choice column
--       slider     the number; with min, max, step, unit, tolerance columns
--       order      nothing: the choice columns are the items, in the right order
--       poll       nothing: the choice columns are the choices
--       cloud      nothing; `words` says how many words each student may send
--   * a row whose question, answers and correct answer are all empty is
--     skipped (Kahoot's template has numbered empty rows).

-- Heading (folded) -> the key it fills. Checked by the heading's first word.
local HEADINGS = {
  question = "question", type = "type", correct = "correct", time = "time",
  image = "image", picture = "image", points = "points", min = "min", minimum = "min",
  max = "max", maximum = "max", step = "step", unit = "unit", units = "unit",
  tolerance = "tolerance", words = "words", choices = "choices", answers = "choices",
  items = "choices", title = "title",
}
local NUMBERED = { answer = true, choice = true, item = true, option = true }

-- The columns of a heading row (key -> column, and choice number -> column),
-- or nil when the row is not one.
local function read_headings(row)
  local columns, choice = {}, {}
  for col, cell in ipairs(row) do
    local h = fold(cell)
    local word = h:match("^(%a+)")
    local number = to_int(h:match("^%a+%s*(%d+)"))
    local key
    if h:match("^question%s*type") then
      key = "type"
    elseif word and NUMBERED[word] and number then
      if number >= 1 and number <= MAX_CHOICES and not choice[number] then choice[number] = col end
    elseif word then
      key = HEADINGS[word]
    end
    if key and not columns[key] then columns[key] = col end
  end
  if not columns.question then return nil end
  if not (columns.correct or columns.type or columns.choices or next(choice)) then return nil end
  columns.choice = choice
  return columns
end

-- "a | b |c" -> {"a", "b", "c"}, leaving out empty parts.
local function split(text, separators)
  local parts = {}
  for part in text:gmatch("[^" .. separators .. "]+") do
    part = tidy(part)
    if part ~= "" then parts[#parts + 1] = part end
  end
  return parts
end

-- A number cell: a number, nil when empty, the text itself when it is not a
-- number (so the check says what was written). "20 s", "20 sec" are 20.
local function number_cell(text)
  if text == "" then return nil end
  local n = tonumber(text) or tonumber((fold(text):gsub("%s*s?e?c?o?n?d?s?$", "")))
  return n or text
end

-- The `correct` cell of a choice question -> a number or a list of numbers
-- (positions among the answers that are filled in), or nil and a problem.
-- Numbers come first (1,3), then the text of one answer (Paris), then
-- letters (A, C). `columns` says which choice columns there are, `position`
-- maps a choice column's number to its answer's position.
local function choice_cell(text, labels, columns, position)
  if text == "" then return nil end
  -- (1.3 is 1,3 from a spreadsheet that took the comma for a decimal point)
  local parts = split(text, ",;%s&.")
  local picks = {}
  for i, part in ipairs(parts) do picks[i] = to_int(part) end
  if #picks ~= #parts then
    picks = {}
    for c, label in ipairs(labels) do
      if fold(label) == fold(text) then return c end
    end
    for i, part in ipairs(parts) do
      if #part ~= 1 or not part:lower():match("[a-f]") then return text end  -- the check says it is wrong
      picks[i] = part:lower():byte() - 96
    end
  end
  for i, n in ipairs(picks) do
    -- Numbers are of the columns (answer 1 ... answer 6); with one `choices`
    -- column, of the answers in it.
    if not columns.choices and columns.choice[n] then
      if not position[n] then return nil, "the correct answer is " .. n .. ", but answer " .. n .. " is empty" end
      picks[i] = position[n]
    end
  end
  if #picks == 1 then return picks[1] end
  return picks
end

-- The title from the file name: "world_capitals.quiz.csv" -> "World capitals".
local function title_of(file)
  local name = tostring(file or ""):match("([^/\\]*)$"):match("^([^.]*)") or ""
  name = tidy(name:gsub("[_%-]+", " "))
  if name == "" then return "Quiz" end
  return name:sub(1, 1):upper() .. name:sub(2)
end

-- One row -> a question table, as params.questions would have it.
local function question_of(row, columns)
  local function cell(key)
    local col = columns[key]
    return col and tidy(row[col] or "") or ""
  end
  local labels, position = {}, {}
  if columns.choices then
    labels = split(cell("choices"), "|")
  else
    for n = 1, MAX_CHOICES do
      local col = columns.choice[n]
      local text = col and tidy(row[col] or "") or ""
      if text ~= "" then
        labels[#labels + 1] = text
        position[n] = #labels
      end
    end
  end
  local correct = cell("correct")
  if cell("question") == "" and #labels == 0 and correct == "" then return nil end  -- an empty row

  local q = {
    type = cell("type") ~= "" and cell("type") or nil,
    text = cell("question"),
    time = number_cell(cell("time")),
    image = cell("image") ~= "" and cell("image") or nil,
    points = number_cell(cell("points")),
  }
  local kind = type_of(q.type)
  if kind == "choice" then
    q.choices = labels
    local why
    q.answer, why = choice_cell(correct, labels, columns, position)
    if why then return nil, why end
  elseif kind == "truefalse" then
    q.choices = #labels > 0 and labels or nil
    q.answer = correct ~= "" and correct or nil
  elseif kind == "type" then
    q.answer = correct ~= "" and split(correct, "|") or labels
  elseif kind == "slider" then
    q.answer = number_cell(correct)
    q.min, q.max = number_cell(cell("min")), number_cell(cell("max"))
    q.step, q.tolerance = number_cell(cell("step")), number_cell(cell("tolerance"))
    q.unit = cell("unit") ~= "" and cell("unit") or nil
  elseif kind == "order" then
    q.items = labels
  elseif kind == "poll" then
    q.choices = labels
  elseif kind == "cloud" then
    q.words = number_cell(cell("words"))
  end
  return q
end

-- The game table's `sheet`: spreadsheet rows -> params, or nil, row, message.
local function read_sheet(sheet)
  if type(sheet) ~= "table" or type(sheet.rows) ~= "table" then
    return nil, nil, "the spreadsheet has no rows"
  end
  local title, columns
  local questions = {}
  for _, line in ipairs(sheet.rows) do
    local at = type(line) == "table" and to_int(line.row) or nil
    -- {row = 7, cells = {...}}, from Recess or in params.sheet.
    local row = type(line) == "table" and type(line.cells) == "table" and line.cells or {}
    if not columns then
      columns = read_headings(row)
      -- Before the headings: a `title` row, or instructions (ignored).
      local first
      for col, cell in ipairs(row) do
        if tidy(cell) ~= "" then first = col break end
      end
      if not columns and first and fold(row[first]) == "title" then
        for col = first + 1, #row do
          if tidy(row[col]) ~= "" then title = tidy(row[col]) break end
        end
      end
    else
      local q, why = question_of(row, columns)
      if why then return nil, at, why end
      if q then
        local ok
        ok, why = check_question(q, nil)
        if not ok then return nil, at, why end
        questions[#questions + 1] = q
      end
    end
  end
  if not columns then
    return nil, nil, "there is no row of headings with a 'question' column: put headings such as "
      .. "question, choice 1, choice 2, correct above the questions"
  end
  if #questions == 0 then
    return nil, nil, "there are no questions under the headings"
  end
  return { title = title or title_of(sheet.file), questions = questions }
end

-- Players -------------------------------------------------------------------
-- state.players maps a player id to their record; state.order lists the ids in
-- the order they joined, so lists on screen do not reshuffle between updates.
-- A student who leaves during the game keeps their record (marked `left`) so
-- their points still count in the results.

-- Teams (params.teams): state.teams is the list of team names, and a
-- student's record has `team`, the number of theirs (nil while a student of a
-- team_choice lobby has not picked one).

-- How many students in the room are on each team (not counting `except_id`).
local function team_sizes(state, except_id)
  local sizes = {}
  for t = 1, #state.teams do sizes[t] = 0 end
  for _, id in ipairs(state.order) do
    local p = state.players[id]
    if p.team and not p.left and id ~= except_id then sizes[p.team] = sizes[p.team] + 1 end
  end
  return sizes
end

-- The smallest team (ties: the first of them).
local function smallest_team(state)
  local sizes, best = team_sizes(state), 1
  for t = 2, #sizes do
    if sizes[t] < sizes[best] then best = t end
  end
  return best
end

-- Who a student is, for remembering their team across a leave in the lobby.
local function name_key(player)
  return (player.real_name or player.name):lower()
end

local function add_player(state, player)
  -- `joined` is the round they arrived in (see state.round below); `log` is
  -- what they did at each question, for the report (see report_row).
  -- `typed` is the name they typed, to know them by when they come back.
  local record = { id = player.id, name = player.name, score = 0, correct = 0, joined = state.round,
                   real_name = player.real_name, typed = name_key(player), log = {} }
  if state.pace == "self" then
    state.seats = state.seats + 1
    record.seat, record.step, record.at, record.turn, record.answers = state.seats, "ready", 0, 0, {}
  end
  if state.teams then
    local kept = state.lobby_teams and state.lobby_teams[name_key(player)]
    if kept then
      record.team = kept
    elseif not state.team_choice or state.phase ~= "lobby" then
      record.team = smallest_team(state)
    end
  end
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
  if state.teams then
    -- A team's score is the average of its members' scores, rounded down
    -- (everyone who played for it, including those who left since).
    local totals, members = {}, {}
    for t = 1, #state.teams do totals[t], members[t] = 0, 0 end
    for _, id in ipairs(state.order) do
      local p = state.players[id]
      if p.team then
        totals[p.team] = totals[p.team] + p.score
        members[p.team] = members[p.team] + 1
      end
    end
    local teams = {}
    for t, name in ipairs(state.teams) do
      teams[t] = { team = t, name = name, members = members[t],
                   score = members[t] > 0 and totals[t] // members[t] or 0 }
    end
    table.sort(teams, function(a, b)
      if a.score ~= b.score then return a.score > b.score end
      return a.team < b.team
    end)
    local team_position = {}
    for i, t in ipairs(teams) do
      t.rank = (i > 1 and t.score == teams[i - 1].score) and teams[i - 1].rank or i
      team_position[t.team] = i
    end
    state.team_ranking = teams
    state.team_position = team_position
  end
end

-- True when every student who is connected and still in the game has
-- answered (and at least one has). Students whose Wi-Fi dropped are not
-- waited for: the timer covers them. A cloud answer is finished once the
-- student has sent all their words.
local function everyone_answered(state, ctx)
  if state.answered == 0 then return false end
  for _, member in ipairs(ctx.players()) do
    local record = state.players[member.id]
    local a = state.answers[member.id]
    if record and not record.left and member.connected ~= false
        and (not a or a.done == false) then
      return false
    end
  end
  return true
end

-- Tallies -----------------------------------------------------------------------
-- What the class answered to the open question, for the host's counts, bars
-- and word cloud: state.counts (answers per choice) and state.words (typed
-- answers and cloud words, folded, with how many sent each, in the order they
-- first came; state.word_index maps a folded word to its place there).
-- state.top is the words sorted for the screen, most sent first.

local function resort_words(state)
  local list = {}
  for _, w in ipairs(state.words) do
    if w.count > 0 then list[#list + 1] = w end
  end
  table.sort(list, function(a, b)
    if a.count ~= b.count then return a.count > b.count end
    return a.first < b.first
  end)
  local top = {}
  for i = 1, math.min(TOP_WORDS, #list) do
    top[i] = { text = list[i].text, key = list[i].key, count = list[i].count }
  end
  state.top = top
end

local function count_word(state, key, text, delta)
  local i = state.word_index[key]
  if not i then
    i = #state.words + 1
    state.words[i] = { key = key, text = text, count = 0, first = i }
    state.word_index[key] = i
  end
  state.words[i].count = state.words[i].count + delta
end

-- Adds an answer to the tallies (delta 1), or takes it back (delta -1).
local function tally(state, q, a, delta)
  if a.choice then
    state.counts[a.choice] = state.counts[a.choice] + delta
  elseif a.choices then
    for _, c in ipairs(a.choices) do state.counts[c] = state.counts[c] + delta end
  elseif a.key then
    count_word(state, a.key, a.text, delta)
  elseif a.words then
    for i, key in ipairs(a.words) do count_word(state, key, a.texts[i], delta) end
  end
  if a.key or a.words then resort_words(state) end
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

-- The order in which an `order` question shows its items: a shuffle of
-- 1..n, never 1..n itself when there are 3 items or more (with 2 items that
-- would always show them swapped).
local function shuffled(ctx, n)
  while true do
    local list = {}
    for i = 1, n do list[i] = i end
    for i = n, 2, -1 do
      local j = ctx.random(1, i)
      list[i], list[j] = list[j], list[i]
    end
    if n < 3 then return list end
    for i = 1, n do
      if list[i] ~= i then return list end
    end
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
  for c = 1, #(q.choices or {}) do state.counts[c] = 0 end
  state.words, state.word_index, state.top = {}, {}, {}
  state.shown = q.type == "order" and shuffled(ctx, #q.items) or nil
  state.started_at = ctx.now()
  state.ends_at = state.started_at + q.time_ms
  state.timer_id = ctx.after(q.time_ms, "time_up", { round = state.round })
  ctx.broadcast("question", {
    number = number,
    count = #state.questions,
    ends_at = state.ends_at,
    type = q.type,
  })
end

-- The right answer as words: "Paris", "Whale and Bat", "100 °C".
local function answer_text(q)
  if q.type == "choice" and q.multi then
    local labels = {}
    for i, c in ipairs(q.answer) do labels[i] = q.choices[c] end
    return and_list(labels)
  elseif q.type == "choice" or q.type == "truefalse" then
    return q.choices[q.answer]
  elseif q.type == "type" then
    return q.answer[1]
  elseif q.type == "slider" then
    return number_text(q.answer, q.unit)
  elseif q.type == "order" then
    return table.concat(q.items, ", ")
  end
end

-- What the `reveal` event says about the answer.
local function reveal_data(state, q)
  local data = { number = state.current }
  if q.type == "poll" or q.type == "cloud" then
    data.type = q.type
    return data
  end
  data.answer = q.type == "order" and q.items or q.answer
  data.label = answer_text(q)
  if q.type ~= "choice" then data.type = q.type end
  return data
end

-- The report -------------------------------------------------------------------
-- One row per student: rank, name, score, correct, then team (with teams),
-- real_name (generated names; private to the host) and, per question N,
-- "qN answer", "qN correct", "qN points", "qN time". See the header.

-- What a student answered, as text (a slider's number as a number).
local function answer_cell(q, a)
  if a.choices then
    local labels = {}
    for i, c in ipairs(a.choices) do labels[i] = q.choices[c] end
    return table.concat(labels, ", ")
  elseif a.choice then
    return q.choices[a.choice]
  elseif a.order then
    local labels = {}
    for i, n in ipairs(a.order) do labels[i] = q.items[n] end
    return table.concat(labels, " > ")
  elseif a.texts then
    return table.concat(a.texts, ", ")
  elseif a.value then
    return a.value
  end
  return a.text or ""
end

-- What goes in a student's log at the reveal of question `number`.
local function log_entry(q, a)
  local scored = q.type ~= "poll" and q.type ~= "cloud"
  if not a then
    return { answer = "", correct = scored and "no" or "", points = 0, time = "" }
  end
  return {
    answer = answer_cell(q, a),
    correct = scored and (a.right and "yes" or "no") or "",
    points = a.right and a.points or 0,
    time = a.ms and string.format("%.1f", a.ms / 1000) or "",
  }
end

local function results_table(state)
  rerank(state)
  local columns = { "rank", "name", "score", "correct" }
  -- Points a backend awarded (event `award`), part of `score` already.
  if state.awarded then columns[#columns + 1] = "bonus" end
  if state.teams then columns[#columns + 1] = "team" end
  local private
  for _, id in ipairs(state.order) do
    if state.players[id].real_name then private = { "real_name" } end
  end
  if private then columns[#columns + 1] = "real_name" end
  local fields = { "answer", "correct", "points", "time" }
  for n = 1, #state.questions do
    for _, f in ipairs(fields) do columns[#columns + 1] = "q" .. n .. " " .. f end
  end
  local rows = {}
  for i, r in ipairs(state.ranking) do
    local p = state.players[r.id]
    local row = { rank = r.rank, name = r.name, score = r.score, correct = r.correct }
    if state.awarded then row.bonus = p.bonus or 0 end
    if state.teams then row.team = p.team and state.teams[p.team] or "" end
    if private then row.real_name = p.real_name or "" end
    for n = 1, #state.questions do
      local entry = p.log and p.log[n] or {}
      for _, f in ipairs(fields) do
        local v = entry[f]
        if v == nil then v = "" end
        row["q" .. n .. " " .. f] = v
      end
    end
    rows[i] = row
  end
  local results = {
    columns = columns,
    private = private,
    rows = rows,
    title = state.title,
    questions = #state.questions,
    scored = state.revealed,
  }
  if state.teams then
    local teams = {}
    for i, t in ipairs(state.team_ranking) do
      teams[i] = { rank = t.rank, team = t.name, score = t.score, members = t.members }
    end
    results.teams = teams
  end
  return results
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
    if p and a.right then
      p.score = p.score + a.points
      p.correct = p.correct + 1
    end
  end
  for _, id in ipairs(state.order) do
    local p = state.players[id]
    p.log = p.log or {}
    p.log[state.current] = log_entry(q, state.answers[id])
  end
  ctx.report(results_table(state))
  ctx.broadcast("reveal", reveal_data(state, q))
  -- A webhook for the school's systems (a gradebook that records each
  -- question): how many answered and how many were right.
  local answered, right = 0, 0
  for _, a in pairs(state.answers) do
    answered = answered + 1
    if a.right then right = right + 1 end
  end
  ctx.emit("quiz.revealed", { number = state.current, text = q.text, answered = answered, correct = right })
  -- Each student hears how they did (custom clients play a sound on it);
  -- a poll or a cloud has nothing to tell.
  if q.type == "poll" or q.type == "cloud" then return end
  for _, id in ipairs(state.order) do
    if not state.players[id].left then
      local a = state.answers[id]
      ctx.send(id, "result", {
        correct = a ~= nil and a.right == true,
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
  state.words, state.word_index, state.top = {}, {}, {}
  local results = results_table(state)
  ctx.log("quiz finished:", #results.rows, "players,", state.revealed, "questions scored")
  ctx.finish(results)
end

-- After a reveal (or a skip): the next question, or the podium after the last.
local function advance(state, ctx)
  if state.current < #state.questions then
    begin_question(state, ctx, state.current + 1)
  else
    finish_quiz(state, ctx)
  end
end

-- Answers -----------------------------------------------------------------------
-- Each type reads its own shape of `data` into an answer record, or refuses it
-- with what to send instead. A record says what was picked and, worked out
-- now while the time left is known, whether it is right and its points:
--   choice, truefalse, poll  {choice = 2}
--   choice with a list       {choices = {1, 3}}
--   type                     {text = "Paris", key = "paris"}  (key: folded)
--   slider                   {value = 42}
--   order                    {order = {2, 4, 1, 3}}  (item numbers, 1 = first in the right order)
--   cloud                    {words = {"paris"}, texts = {"Paris"}, done = false}
-- plus right (true/false; nil for a poll or a cloud) and points.

-- Text a student typed: trimmed, at most `max` characters, or nil and why.
local function typed(data, max, what)
  local text = type(data) == "table" and given(data.text)
  if type(text) ~= "string" then return nil, "type " .. what .. " ({text = \"...\"})" end
  local length = utf8.len(text)
  if not length then return nil, "that text is not valid UTF-8" end
  if length > max * 4 then return nil, "that is too long: at most " .. max .. " characters" end
  text = tidy(text)
  if text == "" then return nil, "type " .. what .. " first" end
  if utf8.len(text) > max then return nil, "that is too long: at most " .. max .. " characters" end
  return text
end

local READ = {}

READ.choice = function(q, data)
  local n = #q.choices
  if not q.multi then
    local choice = to_int(type(data) == "table" and given(data.choice) or nil)
    if not choice or choice < 1 or choice > n then
      return nil, "pick one of the answers, 1 to " .. n
    end
    return { choice = choice }
  end
  local list = type(data) == "table" and given(data.choices)
  if type(list) ~= "table" then
    return nil, "tick one or more answers and press Submit ({choices = {1, 3}})"
  end
  local picked, seen = {}, {}
  for _, v in ipairs(list) do
    local c = to_int(v)
    if not c or c < 1 or c > n then return nil, "pick answers from 1 to " .. n .. ", got " .. shown(v) end
    if seen[c] then return nil, "answer " .. c .. " is ticked twice" end
    seen[c] = true
    picked[#picked + 1] = c
  end
  if #picked == 0 then return nil, "tick at least one answer" end
  table.sort(picked)
  return { choices = picked }
end
READ.truefalse = READ.choice
READ.poll = READ.choice

READ.type = function(q, data)
  local text, why = typed(data, MAX_TYPED, "your answer")
  if not text then return nil, why end
  return { text = text, key = fold(text) }
end

READ.slider = function(q, data)
  local value = type(data) == "table" and given(data.value)
  local range = number_text(q.min) .. " to " .. number_text(q.max)
  if type(value) ~= "number" or value ~= value then
    return nil, "pick a number from " .. range .. " ({value = n})"
  end
  if value < q.min or value > q.max then
    return nil, "pick a number from " .. range .. ", got " .. number_text(value)
  end
  return { value = value }
end

-- `order` in the data is positions in the list as shown (`shown`, the
-- shuffle this student got); the record keeps the items' own numbers.
READ.order = function(q, data, shown)
  local n = #q.items
  local list = type(data) == "table" and given(data.order)
  local how = "put all " .. n .. " items in order: {order = {3, 1, 2, ...}}, the places of the items as shown, in your order"
  if type(list) ~= "table" or #list ~= n then return nil, how end
  local order, seen = {}, {}
  for i, v in ipairs(list) do
    local k = to_int(v)
    if not k or k < 1 or k > n or seen[k] then return nil, how end
    seen[k] = true
    order[i] = shown[k]
  end
  return { order = order }
end

-- A cloud answer grows word by word: `mine` is the record so far.
READ.cloud = function(q, data, shown, mine)
  local text, why = typed(data, MAX_WORD, "a word")
  if not text then return nil, why end
  local key = fold(text)
  local record = mine or { words = {}, texts = {} }
  for _, k in ipairs(record.words) do
    if k == key then return nil, "you already sent '" .. text .. "'" end
  end
  local words, texts = {}, {}
  for i, k in ipairs(record.words) do words[i], texts[i] = k, record.texts[i] end
  words[#words + 1], texts[#texts + 1] = key, text
  return { words = words, texts = texts, new = key, done = #words >= q.words }
end

-- Whether an answer is right, and how close (1 = exactly; a slider's
-- closeness falls evenly to 0 at `tolerance` away). nil for poll and cloud.
local function judge(q, a)
  if q.type == "poll" or q.type == "cloud" then return nil, 0 end
  if q.type == "choice" and q.multi then
    if #a.choices ~= #q.answer then return false, 0 end
    for i, c in ipairs(q.answer) do
      if a.choices[i] ~= c then return false, 0 end
    end
    return true, 1
  elseif q.type == "choice" or q.type == "truefalse" then
    return a.choice == q.answer, a.choice == q.answer and 1 or 0
  elseif q.type == "type" then
    for _, key in ipairs(q.keys) do
      if a.key == key then return true, 1 end
    end
    return false, 0
  elseif q.type == "slider" then
    local distance = math.abs(a.value - q.answer)
    if distance == 0 then return true, 1 end
    if distance >= q.tolerance then return false, 0 end
    return true, (q.tolerance - distance) / q.tolerance
  elseif q.type == "order" then
    for i, item in ipairs(a.order) do
      if item ~= i then return false, 0 end
    end
    return true, 1
  end
end

-- Judges the answer `a`, given at `now` to a question that started at
-- `started_at` and closes at `ends_at`, and sets its right, points and ms.
-- `mine` is the answer so far (a cloud's earlier words).
local function score(q, a, now, started_at, ends_at, mine)
  local right, closeness = judge(q, a)
  a.right = right
  -- (a cloud's time is that of its first word)
  a.ms = mine and mine.ms or (now - started_at)
  a.points = 0
  if right then
    local time_left = math.max(0, math.min(q.time_ms, ends_at - now))
    local speed = math.floor(500 + 500 * time_left / q.time_ms)
    -- (the small amount added keeps 700 from coming out as 699.9999)
    a.points = math.floor(speed * q.points * closeness + 1e-9)
  end
end

-- Adds a new answer (or a cloud's new word) to the tallies `t`.
local function count_answer(t, q, a)
  if q.type == "cloud" then
    count_word(t, a.new, a.texts[#a.texts], 1)
    resort_words(t)
    a.new = nil
  else
    tally(t, q, a, 1)
  end
end

local function answer(state, ctx, player, data)
  if player.role == "host" then return false, "the host does not answer questions" end
  if state.phase == "lobby" then return false, "the quiz has not started yet" end
  if state.phase == "reveal" then return false, "time is up for this question" end
  if state.phase ~= "question" then return false, "the quiz is over" end
  local q = state.questions[state.current]
  local mine = state.answers[player.id]
  if mine and mine.done ~= false then
    if q.type == "cloud" then return false, "you already sent " .. plural(q.words, "word", "words") end
    return false, "you already answered this question"
  end
  local a, why = READ[q.type](q, data, state.shown, mine)
  if not a then return false, why end
  local now = ctx.now()
  if now > state.ends_at then return false, "time is up for this question" end

  local known = state.players[player.id] ~= nil
  if not known then  -- (a member the game never saw join)
    add_player(state, player)
    recount(state)
  end
  score(q, a, now, state.started_at or now, state.ends_at, mine)
  count_answer(state, q, a)
  state.answers[player.id] = a
  if not mine then state.answered = state.answered + 1 end
  if everyone_answered(state, ctx) then
    reveal(state, ctx)  -- (every screen changes)
  elseif known then
    -- Only the student's own screen and the host's changed: the other
    -- students' views are not run again (a 30-student class answers
    -- with 2 view calls instead of 31).
    ctx.redraw({ player.id, "host" })
  end
end

-- Self-paced (homework) ----------------------------------------------------------
-- With params.pace = "self" the quiz is "open" from the start until its
-- deadline (or the host's Close), then at the "podium". Each student goes
-- through the questions on their own; their record keeps where they are:
--   step        "ready" (not started) | "question" | "reveal" | "done"
--   at          the number of their question (0 before the first)
--   started_at, ends_at, shown   their question's clock and order shuffle
--   answers     question number -> what they answered (see Answers); that
--               of `at` is their answer so far to the question on screen
--   timer_id, turn   their question's timer; `turn` goes up at every step,
--               so a timer from an earlier step is known as stale
--   seat        a number of their own, which their timers carry (a student
--               who comes back has a new id but the same seat)
-- A student's points count as soon as their question is over: nobody else
-- is shown that question's answer at the same time. state.tallies[n] holds
-- the class's answers to question n (see Tallies) and how many have done it
-- (`done`) and got it right (`right`), for the host's progress chart.

local function new_tally(q)
  local t = { counts = {}, words = {}, word_index = {}, top = {}, done = 0, right = 0 }
  for c = 1, #(q.choices or {}) do t.counts[c] = 0 end
  return t
end

local function record_of_seat(state, seat)
  for _, id in ipairs(state.order) do
    local p = state.players[id]
    if p.seat == seat then return p end
  end
end

local function self_question(state, ctx, p, number)
  local q = state.questions[number]
  p.step, p.at, p.turn = "question", number, p.turn + 1
  p.shown = q.type == "order" and shuffled(ctx, #q.items) or nil
  p.started_at = ctx.now()
  p.ends_at = p.started_at + q.time_ms
  p.timer_id = ctx.after(q.time_ms, "time_up", { seat = p.seat, turn = p.turn })
  ctx.send(p.id, "question", {
    number = number, count = #state.questions, ends_at = p.ends_at, type = q.type,
  })
end

-- The question is over for `p` (they answered, or their time ran out): it
-- is scored and logged. `closing`: the deadline came; the results follow.
local function self_reveal(state, ctx, p, closing)
  if p.timer_id then
    ctx.cancel(p.timer_id)
    p.timer_id = nil
  end
  local q, a = state.questions[p.at], p.answers[p.at]
  p.step, p.turn = "reveal", p.turn + 1
  if a and a.right then
    p.score = p.score + a.points
    p.correct = p.correct + 1
  end
  p.log[p.at] = log_entry(q, a)
  local t = state.tallies[p.at]
  t.done = t.done + 1
  if a and a.right then t.right = t.right + 1 end
  state.revealed = math.max(state.revealed, p.at)
  if closing then return end
  ctx.report(results_table(state))
  if q.type ~= "poll" and q.type ~= "cloud" and not p.left then
    ctx.send(p.id, "result", { correct = a ~= nil and a.right == true, points = a and a.points or 0 })
  end
end

-- next: a student starts, or moves on once they have seen how they did.
local function self_next(state, ctx, player)
  if state.phase == "podium" then return false, "the quiz is over" end
  if player.role == "host" then
    return false, "students move on by themselves in a self-paced quiz; Close ends it for everyone"
  end
  local p = state.players[player.id]
  if not p then return false, "join the quiz first" end
  if p.step == "question" then return false, "answer the question first, or let its time run out" end
  if p.step == "done" then return false, "you have done every question" end
  if p.at < #state.questions then
    self_question(state, ctx, p, p.at + 1)
  else
    p.step = "done"
  end
  ctx.redraw({ player.id, "host" })  -- (where one student is: theirs and the host's)
end

local function self_answer(state, ctx, player, data)
  if player.role == "host" then return false, "the host does not answer questions" end
  if state.phase == "podium" then return false, "the quiz is over" end
  local p = state.players[player.id]
  if not p then return false, "join the quiz first" end
  if p.step == "ready" then return false, "press Start first" end
  if p.step == "done" then return false, "you have done every question" end
  local q, mine = state.questions[p.at], p.answers[p.at]
  if p.step == "reveal" then
    if mine then return false, "you already answered this question: press Next" end
    return false, "time is up for this question: press Next"
  end
  local a, why = READ[q.type](q, data, p.shown, mine)
  if not a then return false, why end
  local now = ctx.now()
  if now > p.ends_at then return false, "time is up for this question" end
  score(q, a, now, p.started_at, p.ends_at, mine)
  count_answer(state.tallies[p.at], q, a)
  p.answers[p.at] = a
  if a.done ~= false then
    self_reveal(state, ctx, p)  -- (scores and charts others may see change)
  else
    ctx.redraw({ player.id, "host" })  -- (a word of a cloud, more to come)
  end
end

-- A student's own timer ran out.
local function self_time_up(state, ctx, data)
  local p = record_of_seat(state, data.seat)
  if not p or p.turn ~= data.turn or p.step ~= "question" then return end
  p.timer_id = nil  -- it has fired; nothing left to cancel
  self_reveal(state, ctx, p)
end

-- A removed student's answers leave the tallies and the progress chart.
local function self_forget(state, ctx, p)
  if p.timer_id then ctx.cancel(p.timer_id) end
  for n, a in pairs(p.answers) do tally(state.tallies[n], state.questions[n], a, -1) end
  for n in pairs(p.log) do
    local t = state.tallies[n]
    t.done = t.done - 1
    local a = p.answers[n]
    if a and a.right then t.right = t.right - 1 end
  end
end

-- The deadline came, or the host closed the homework: questions still open
-- are scored as they stand (unanswered: no points), and the podium follows.
local function self_close(state, ctx)
  for _, id in ipairs(state.order) do
    local p = state.players[id]
    if p.step == "question" then self_reveal(state, ctx, p, true) end
  end
  finish_quiz(state, ctx)
end

-- Host controls -----------------------------------------------------------------

-- Host controls, shared by the `action` and `event` handlers. Returns nothing
-- on success, or false and a reason.
local function host_command(state, ctx, name)
  local phase = state.phase
  if phase == "podium" then return false, "the quiz is over" end
  if state.pace == "self" then
    if name == "close" then return self_close(state, ctx) end
    if name == "start" or name == "next" or name == "skip" then
      return false, "this quiz is self-paced: students start and move on by themselves; Close ends it for everyone"
    end
    return false, "unknown command '" .. tostring(name) .. "'"
  end
  if name == "close" then
    return false, "close is for self-paced quizzes; here, press Next until the podium"
  end
  if name == "start" then
    if phase ~= "lobby" then return false, "the quiz has already started" end
    if state.present == 0 then
      return false, "nobody has joined yet: wait for at least one player"
    end
    ctx.log("quiz started with", state.present, "players")
    if state.teams then
      -- Those who did not pick a team (team_choice) are balanced in now.
      for _, id in ipairs(state.order) do
        local p = state.players[id]
        if not p.team then p.team = smallest_team(state) end
      end
    end
    state.lobby_teams = nil
    ctx.report(results_table(state))
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

-- The id `data.player` names (kick, rename), or nil.
local function named_id(data)
  local id = type(data) == "table" and given(data.player)
  if type(id) ~= "string" and type(id) ~= "number" then return nil end
  return tostring(id)
end

local function no_player(id)
  return "there is no player '" .. id .. "' in this quiz"
end

-- A backend's grades added to the scores (event `award`, see `event`):
-- {points = {["Ana"] = 200, ["pk3v9x2ma"] = -50}, reason = "Lab report"}.
-- Students are named by id, by the name everyone sees or by the name they
-- typed (any case); one unknown name or bad number and nothing changes.
local MAX_AWARD = 100000
local function award(state, ctx, data)
  if state.phase == "podium" then return false, "the quiz is over" end
  local points = type(data) == "table" and data.points
  if type(points) ~= "table" or next(points) == nil then
    return false, "say who gets how many points: {points = {[\"Ana\"] = 200}, reason = \"...\"}"
  end
  local reason = type(data.reason) == "string" and data.reason:sub(1, 100) or nil
  local by_name = {}
  for _, id in ipairs(state.order) do
    local p = state.players[id]
    by_name[p.name:lower()] = p
    by_name[p.typed or p.name:lower()] = p
  end
  -- In the order of the names, so that the same call always does the same.
  local names = {}
  for who in pairs(points) do names[#names + 1] = tostring(who) end
  table.sort(names)
  local awarded = {}
  for _, who in ipairs(names) do
    local n = points[who]
    local p = state.players[who] or by_name[who:lower()]
    if not p or n == nil then return false, "there is no student '" .. who .. "' in this quiz" end
    if math.type(n) ~= "integer" or n < -MAX_AWARD or n > MAX_AWARD then
      return false, "points for '" .. who .. "' must be a whole number from " .. -MAX_AWARD .. " to " .. MAX_AWARD
    end
    awarded[#awarded + 1] = { player = p, points = n }
  end
  for _, a in ipairs(awarded) do
    local p = a.player
    p.score = p.score + a.points
    p.bonus = (p.bonus or 0) + a.points
    if not p.left then ctx.send(p.id, "award", { points = a.points, reason = reason, score = p.score }) end
  end
  state.awarded = true
  rerank(state)
  if state.pace == "self" then ctx.report(results_table(state)) end
end

local function kick(state, ctx, data)
  local id = named_id(data)
  if not id then return false, "say who to remove: {player = id}" end
  if id == state.host then return false, "the host cannot be removed" end
  local record = state.players[id]
  -- (in a self-paced quiz, one who has left may be removed too: the host
  -- sees them in the list, and they may come back)
  if not record or (record.left and state.pace ~= "self") then return false, no_player(id) end
  ctx.kick(id, "the host removed you from the quiz")
  -- Recess keeps them out under the name they typed (which is not the one
  -- everyone sees when names are generated) until the host lets them back
  -- in: the button says the name the host knows them by.
  state.removed = state.removed or {}
  table.insert(state.removed, { name = record.real_name or record.name, shown = record.name })
  -- A removed student leaves no trace: not on the board, not in the results.
  local a = state.answers[id]
  if a then
    tally(state, state.questions[state.current], a, -1)
    state.answers[id] = nil
  end
  if state.pace == "self" then self_forget(state, ctx, record) end
  remove_player(state, id)
  recount(state)
  if state.phase ~= "lobby" then rerank(state) end
  if state.pace == "self" then
    ctx.report(results_table(state))
  elseif state.phase == "question" and everyone_answered(state, ctx) then
    reveal(state, ctx)
  end
end

-- rename {player, name}: the host gives a student another name (through
-- ctx.rename, which refuses a taken or blocked name with its reason).
local function rename(state, ctx, data)
  local id = named_id(data)
  if not id then return false, "say who to rename: {player = id, name = \"...\"}" end
  local record = state.players[id]
  if not record or record.left then return false, no_player(id) end
  if type(data.name) ~= "string" then return false, "say the new name: {player = id, name = \"...\"}" end
  local ok, new_name = ctx.rename(id, data.name)
  if not ok then return false, new_name end
  record.name = new_name
  if state.phase ~= "lobby" then rerank(state) end
end

-- team {team = 2}: a student picks a team in the lobby (params.team_choice).
-- Refused when that team already has more players than the smallest team
-- (not counting the one moving), so teams never differ by more than 1.
local function pick_team(state, ctx, player, data)
  if player.role == "host" then return false, "the host is not on a team" end
  if not state.teams or not state.team_choice then return false, "this quiz has no teams to pick" end
  if state.phase ~= "lobby" then return false, "teams are picked in the lobby, before the start" end
  local record = state.players[player.id]
  if not record then return false, "join the quiz first" end
  local t = to_int(type(data) == "table" and given(data.team) or nil)
  if not t or t < 1 or t > #state.teams then
    return false, "pick a team, 1 to " .. #state.teams
  end
  if record.team == t then return end
  local sizes = team_sizes(state, player.id)
  local smallest = 1
  for u = 2, #sizes do
    if sizes[u] < sizes[smallest] then smallest = u end
  end
  if sizes[t] > sizes[smallest] then
    return false, state.teams[t] .. " has " .. plural(sizes[t], "player", "players") .. " and "
      .. state.teams[smallest] .. " " .. sizes[smallest] .. ": pick a smaller team (teams may differ by at most 1)"
  end
  record.team = t
end

-- readmit {name}: someone the host removed may join again.
local function readmit(state, ctx, data)
  local name = type(data) == "table" and data.name
  for i, removed in ipairs(state.removed or {}) do
    if removed.name == name or removed.shown == name then
      table.remove(state.removed, i)
      ctx.readmit(removed.name)
      return
    end
  end
  return false, "nobody called '" .. tostring(name) .. "' was removed"
end

-- The host's buttons, with one "let back in" per removed student.
local function with_readmit(state, buttons)
  for _, removed in ipairs(state.removed or {}) do
    buttons[#buttons + 1] = {
      label = "Let " .. removed.shown .. " back in", action = "readmit", data = { name = removed.name },
    }
  end
  return buttons
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

-- With teams: the teams by score, the viewer's own team highlighted.
local function team_board(state, viewer_id)
  local me = viewer_id and state.players[viewer_id]
  local board = {}
  for i, t in ipairs(state.team_ranking or {}) do
    board[i] = { rank = t.rank, name = t.name, score = t.score,
                 highlight = (me and me.team == t.team) or nil }
  end
  if #board == 0 then return nil end
  return board
end

local function team_podium(state)
  local top = {}
  for i = 1, math.min(3, #(state.team_ranking or {})) do
    local t = state.team_ranking[i]
    top[i] = { rank = t.rank, name = t.name, score = t.score }
  end
  if #top == 0 then return nil end
  return top
end

-- "Red is 1st of 3 teams" for a student's status line.
local function team_line(state, record)
  if not (state.teams and record and record.team and state.team_position) then return nil end
  local pos = state.team_position[record.team]
  if not pos then return nil end
  return state.teams[record.team] .. " is " .. ordinal(state.team_ranking[pos].rank)
    .. " of " .. #state.teams .. " teams"
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
      if state.phase == "lobby" then
        detail = state.teams and (p.team and state.teams[p.team] or "no team yet") or nil
      elseif state.phase == "question" then
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

-- Whether choice `c` is a right one / one the answer `a` picked.
local function right_choice(q, c)
  if q.multi then
    for _, x in ipairs(q.answer) do
      if x == c then return true end
    end
    return false
  end
  return q.type ~= "poll" and c == q.answer
end

local function picked(a, c)
  if not a then return false end
  if a.choices then
    for _, x in ipairs(a.choices) do
      if x == c then return true end
    end
  end
  return a.choice == c
end

-- `n` of `total` as a share: "40%" (the bar already shows the count).
local function share(n, total)
  if total == 0 then return "0%" end
  return (n * 100 + total // 2) // total .. "%"
end

-- A poll's votes as a bar chart (the viewer's own vote marked), each bar's
-- detail its share of the votes.
local function vote_bars(state, q, mine)
  local bars, total = {}, 0
  for c = 1, #q.choices do total = total + state.counts[c] end
  for c, label in ipairs(q.choices) do
    local n = state.counts[c]
    bars[c] = { label = label, value = n, detail = share(n, total),
                style = picked(mine, c) and "selected" or nil }
  end
  return bars
end

local function accepted(q, key)
  for _, k in ipairs(q.keys) do
    if k == key then return true end
  end
  return false
end

-- A typed question's most given answers (for the host), styled once the
-- answer may be shown.
local function typed_bars(state, q, show_answer, revealing)
  local bars, total = {}, 0
  for _, w in ipairs(state.words) do total = total + w.count end
  for i = 1, math.min(10, #state.top) do
    local w = state.top[i]
    local style
    if show_answer and accepted(q, w.key) then
      style = "correct"
    elseif revealing then
      style = "wrong"
    end
    bars[i] = { label = w.text, value = w.count, detail = share(w.count, total), style = style }
  end
  if #bars == 0 then return nil end
  return bars
end

local function word_cloud(state)
  local cloud = {}
  for i, w in ipairs(state.top) do cloud[i] = { text = w.text, count = w.count } end
  if #cloud == 0 then return nil end
  return cloud
end

local function slider_view(q, fields)
  local slider = { min = q.min, max = q.max, step = q.step, unit = q.unit }
  for k, v in pairs(fields) do slider[k] = v end
  return slider
end

-- Where the slider starts: the middle of the range, on a step.
local function slider_start(q)
  return q.min + math.floor((q.max - q.min) / q.step / 2) * q.step
end

-- Items in the order of `numbers` (item numbers), styled by `style(i, n)`.
local function order_items(q, numbers, style)
  local items = {}
  for i, n in ipairs(numbers) do
    items[i] = { label = q.items[n], style = style and style(i, n) or nil }
  end
  return items
end

local function in_order(q)
  local list = {}
  for i = 1, #q.items do list[i] = i end
  return list
end

local function correct_style() return "correct" end

-- The answer part of the host's screen during a question and its reveal.
local function host_answers(view, state, q, show_answer, revealing)
  local kind = q.type
  if kind == "choice" or kind == "truefalse" then
    local choices = {}
    for c, label in ipairs(q.choices) do
      choices[c] = {
        label = label,
        detail = count_detail(state.counts[c]),
        style = (show_answer and right_choice(q, c)) and "correct" or nil,
      }
    end
    view.choices = choices
  elseif kind == "poll" then
    view.bars = vote_bars(state, q, nil)
  elseif kind == "type" then
    view.bars = typed_bars(state, q, show_answer, revealing)
  elseif kind == "slider" then
    view.slider = slider_view(q, { answer = show_answer and q.answer or nil })
  elseif kind == "order" then
    if show_answer then
      view.order = { items = order_items(q, in_order(q), correct_style) }
    else
      view.order = { items = order_items(q, state.shown) }
    end
  elseif kind == "cloud" then
    view.cloud = word_cloud(state)
  end
end

-- How many of those in the room got it right (or, for a poll or a cloud,
-- answered), as the host's status line at the reveal.
local function reveal_status(state, q)
  local n = 0
  for id, a in pairs(state.answers) do
    local p = state.players[id]
    if p and not p.left and (a.right or q.type == "poll" or q.type == "cloud") then n = n + 1 end
  end
  local of = n .. " of " .. plural(state.present, "player", "players")
  if q.type == "poll" then return of .. " voted" end
  if q.type == "cloud" then return of .. " sent words" end
  return of .. " got it right"
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
      rename = "rename",
      buttons = with_readmit(state, {
        { label = "Start", action = "start", style = present == 0 and "disabled" or nil },
      }),
    }
  end

  if state.phase == "podium" then
    local view = {
      phase = "podium",
      title = state.title .. ": final results",
      podium = podium(state),
      leaderboard = leaderboard(state, nil),
      status = "The quiz is over. The results can be downloaded as a spreadsheet.",
    }
    if state.teams then
      -- The team podium; the students' board below it.
      view.podium = team_podium(state)
      local top = podium(state)
      if top then
        local names = {}
        for i, r in ipairs(top) do names[i] = r.name .. " " .. r.score end
        view.status = "Top players: " .. table.concat(names, ", ") .. ". " .. view.status
      end
    end
    return view
  end

  local q = state.questions[state.current]
  local revealing = state.phase == "reveal"
  local show_answer = revealing or state.host_sees_answer
  local view = {
    phase = state.phase,
    title = question_title(state),
    text = q.text,
    image = q.image,
    players = roster(state),
    kick = "kick",
    rename = "rename",
  }
  host_answers(view, state, q, show_answer, revealing)
  if revealing then
    view.status = reveal_status(state, q)
    -- With teams, the board at a reveal is the teams'.
    view.leaderboard = state.teams and team_board(state, nil) or leaderboard(state, nil)
    local last = state.current == #state.questions
    view.buttons = with_readmit(state, { { label = last and "Show podium" or "Next question", action = "next" } })
  else
    view.status = state.answered .. " of " .. present .. " answered"
    if q.type == "type" and show_answer then
      view.status = "Accepted: " .. table.concat(q.answer, " / ") .. ". " .. view.status
    end
    view.timer = { ends_at = state.ends_at, label = "Time left" }
    view.buttons = with_readmit(state, {
      { label = "Reveal answer", action = "next" },
      { label = "Skip question", action = "skip" },
    })
  end
  return view
end

-- A student's screen while the question is open: what they may do, or what
-- they did (how many others answered is on the host's screen only: with it
-- here, every answer would change every student's screen). `shown` is their
-- order question's shuffle. Nothing here depends on the right answer.
local function student_question(view, q, mine, shown)
  local kind = q.type
  if kind == "choice" or kind == "truefalse" or kind == "poll" then
    local choices = {}
    for c, label in ipairs(q.choices) do
      if mine then
        choices[c] = { label = label, style = picked(mine, c) and "selected" or "disabled" }
      elseif q.multi then
        -- Toggles: the page sends the ticked ones with the Submit of
        -- `select`; a client without `select` sends this one alone.
        choices[c] = { label = label, action = "answer", data = { choices = { c } } }
      else
        choices[c] = { label = label, action = "answer", data = { choice = c } }
      end
    end
    view.choices = choices
    if q.multi and not mine then
      view.select = { action = "answer", min = 1, max = #q.choices, label = "Submit" }
    end
  elseif kind == "type" then
    if not mine then
      view.input = { action = "answer", placeholder = "Type your answer", max = MAX_TYPED }
    end
  elseif kind == "slider" then
    if mine then
      view.slider = slider_view(q, { value = mine.value })
    else
      view.slider = slider_view(q, { action = "answer", value = slider_start(q), label = "Submit" })
    end
  elseif kind == "order" then
    if mine then
      view.order = { items = order_items(q, mine.order) }
    else
      view.order = { action = "answer", items = order_items(q, shown), label = "Submit" }
    end
  elseif kind == "cloud" then
    local left = q.words - (mine and #mine.words or 0)
    if left > 0 then
      view.input = {
        action = "answer",
        placeholder = left == q.words and (q.words == 1 and "Type a word" or "Type up to " .. q.words .. " words, one at a time")
          or "Another word (" .. left .. " more)",
        max = MAX_WORD,
      }
    end
  end
  if not mine then
    view.status = nil
  elseif kind == "type" then
    view.status = "You answered: " .. mine.text .. "."
  elseif kind == "cloud" then
    view.status = "You sent " .. and_list(mine.texts) .. "."
  else
    view.status = "Answer saved."
  end
end

-- A student's screen at the reveal: the answer and how they did, with the
-- class's answers from the tallies `t` (see Tallies).
local function student_reveal(view, t, q, mine)
  local kind = q.type
  if kind == "choice" or kind == "truefalse" then
    local choices = {}
    for c, label in ipairs(q.choices) do
      local style = "disabled"
      if right_choice(q, c) then
        style = "correct"
      elseif picked(mine, c) then
        style = "wrong"
      end
      choices[c] = { label = label, style = style, detail = count_detail(t.counts[c]) }
    end
    view.choices = choices
  elseif kind == "poll" then
    view.bars = vote_bars(t, q, mine)
  elseif kind == "slider" then
    view.slider = slider_view(q, { value = mine and mine.value or nil, answer = q.answer })
  elseif kind == "order" then
    if mine then
      view.order = { items = order_items(q, mine.order, function(i, n)
        return n == i and "correct" or "wrong"
      end) }
    else
      view.order = { items = order_items(q, in_order(q), correct_style) }
    end
  elseif kind == "cloud" then
    view.cloud = word_cloud(t)
  end
end

-- How the student did: `asked` is false for one who arrived during this
-- reveal (and so was never asked).
local function result_banner(q, mine, asked)
  if q.type == "poll" or q.type == "cloud" then return nil end
  local right_answer = answer_text(q)
  if mine and mine.right then
    local points = plural(mine.points, "point", "points")
    if q.type == "slider" and mine.value ~= q.answer then
      return { text = "Close! +" .. points .. ": the answer was " .. right_answer, style = "correct" }
    end
    return { text = "Correct! +" .. points, style = "correct" }
  elseif mine then
    return { text = "Not quite: the answer was " .. right_answer, style = "wrong" }
  elseif asked then
    return { text = "No answer this time: it was " .. right_answer, style = "wrong" }
  end
end

local function player_view(state, player)
  local me = state.players[player.id]
  local score = me and me.score or nil

  if state.phase == "lobby" then
    local view = {
      phase = "lobby",
      title = state.title,
      text = "You're in, " .. player.name .. "! Watch the main screen: the quiz starts soon.",
    }  -- (how many have joined is on the host's screen, not on every phone)
    if state.teams and me then
      if me.team then
        view.text = view.text .. " You are on team " .. state.teams[me.team] .. "."
      else
        view.text = view.text .. " Pick your team."
      end
      if state.team_choice then
        local sizes, choices = team_sizes(state), {}
        for t, name in ipairs(state.teams) do
          choices[t] = { label = name, detail = plural(sizes[t], "player", "players"),
                         action = "team", data = { team = t },
                         style = me.team == t and "selected" or nil }
        end
        view.choices = choices
      end
    end
    return view
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
    if state.teams then
      -- The team podium; the students' board (the viewer's row marked) below.
      view.podium = team_podium(state)
      view.status = team_line(state, me)
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
    student_question(view, q, mine, state.shown)
    view.timer = { ends_at = state.ends_at, label = "Time left" }
    return view
  end

  student_reveal(view, state, q, mine)
  view.banner = result_banner(q, mine, me ~= nil and (me.joined or 0) < state.round)
  view.leaderboard = leaderboard(state, player.id)
  local pos = state.position[player.id]
  if pos then
    view.status = "You are " .. ordinal(state.ranking[pos].rank) .. " of " .. #state.ranking
  end
  if state.teams then
    view.leaderboard = team_board(state, player.id)
    local line = team_line(state, me)
    if line then view.status = (view.status and view.status .. ". " or "") .. line end
  end
  return view
end

-- Self-paced views ---------------------------------------------------------------

-- `text` cut to `n` characters, with "…" when it was longer.
local function cut(text, n)
  if utf8.len(text) <= n then return text end
  return text:sub(1, utf8.offset(text, n) - 1) .. "…"
end

-- Where a student is, for the host's list: "question 3 of 10 · 1450 pts".
local function progress_detail(state, p)
  local detail
  if p.step == "ready" then
    detail = "not started"
  elseif p.step == "done" then
    detail = "finished · " .. p.correct .. " right · " .. p.score .. " pts"
  else
    detail = "question " .. p.at .. " of " .. #state.questions .. " · " .. p.score .. " pts"
  end
  if p.left then detail = detail .. " · away" end
  return detail
end

-- The host's screen while the homework is open: everyone who joined (those
-- away too) with where they are, how far the class has got with each
-- question, and the leaderboard so far.
local function self_host_view(state)
  local list, ready, done = {}, 0, 0
  for _, id in ipairs(state.order) do
    local p = state.players[id]
    list[#list + 1] = { id = id, name = p.name, detail = progress_detail(state, p) }
    if p.step == "ready" then ready = ready + 1 elseif p.step == "done" then done = done + 1 end
  end
  local progress = {}
  for n, q in ipairs(state.questions) do
    local t = state.tallies[n]
    local scored = q.type ~= "poll" and q.type ~= "cloud"
    progress[n] = {
      label = n .. ". " .. cut(q.text, 40),
      value = t.done,
      detail = scored and ("done, " .. t.right .. " right") or "done",
    }
  end
  local playing = #list - ready - done
  return {
    phase = "open",
    title = state.title,
    text = "Homework: students join with the code shown on this screen, from here or from home, "
      .. "and each answers at their own pace until it closes.",
    timer = { ends_at = state.closes_at, label = "Closes in" },
    status = plural(#list, "student", "students") .. ": " .. done .. " finished, " .. playing
      .. " playing, " .. ready .. " not started",
    players = #list > 0 and list or nil,
    kick = "kick",
    rename = "rename",
    bars = progress,
    leaderboard = leaderboard(state, nil),
    buttons = with_readmit(state, { { label = "Close now and show results", action = "close" } }),
  }
end

-- A student's screen while the homework is open: their own step of it.
local function self_player_view(state, player)
  local me = state.players[player.id]
  local count = #state.questions
  local closes = { ends_at = state.closes_at, label = "Closes in" }
  if not me then
    return { phase = "open", title = state.title, text = "This quiz is homework.", timer = closes }
  end
  if me.step == "ready" then
    return {
      phase = "ready",
      title = state.title,
      text = "Hi " .. player.name .. "! This quiz is homework: " .. plural(count, "question", "questions")
        .. ", each with its own timer. You can stop after any question and come back to this page"
        .. " to go on, until it closes.",
      timer = closes,
      status = team_line(state, me),
      buttons = { { label = "Start", action = "next" } },
    }
  end
  if me.step == "done" then
    local pos = state.position[player.id]
    local status = pos and ("You are " .. ordinal(state.ranking[pos].rank) .. " of " .. #state.ranking .. " so far") or nil
    local line = team_line(state, me)
    if line then status = (status and status .. ". " or "") .. line end
    return {
      phase = "done",
      title = state.title,
      banner = { text = "All done! " .. me.correct .. " of " .. count .. " right, "
        .. plural(me.score, "point", "points") .. ".", style = "correct" },
      text = "Your teacher gets your answers. The final results are shown here when the quiz closes.",
      score = me.score,
      timer = closes,
      leaderboard = leaderboard(state, player.id),
      status = status,
    }
  end
  local q = state.questions[me.at]
  local view = {
    phase = me.step,
    title = "Question " .. me.at .. " of " .. count,
    text = q.text,
    image = q.image,
    score = me.score,
  }
  local mine = me.answers[me.at]
  if me.step == "question" then
    student_question(view, q, mine, me.shown)
    view.timer = { ends_at = me.ends_at, label = "Time left" }
    return view
  end
  student_reveal(view, state.tallies[me.at], q, mine)
  view.banner = result_banner(q, mine, true)
  view.status = me.correct .. " of " .. me.at .. " right so far"
  view.buttons = { { label = me.at == count and "See how you did" or "Next question", action = "next" } }
  return view
end

-- The game --------------------------------------------------------------------

return {
  title = TITLE,
  max_players = 200,

  -- games/NAME.quiz.csv and .xlsx: see SPREADSHEETS above.
  sheet = read_sheet,

  -- What the host page offers to set before the quiz starts (each one a
  -- param, see Params above; what the host leaves alone is not sent).
  settings = {
    { key = "pace", label = "How it is played", type = "choice", default = "host", choices = {
      { value = "host", label = "Live: I move the class on, question by question" },
      { value = "self", label = "Homework: each student at their own pace, until a deadline" },
    } },
    { key = "deadline", label = "Homework closes after (hours)", type = "number", default = DEFAULT_DEADLINE,
      min = 0.5, max = MAX_DEADLINE, step = 0.5, show_if = { key = "pace", value = "self" } },
    { key = "time_limit", label = "Seconds per question", type = "number", min = 1, max = MAX_TIME,
      hint = "Empty: each question's own time (20 s unless it says)." },
    { key = "shuffle", label = "Shuffle the questions", type = "checkbox", default = false },
    { key = "teams", label = "Teams", type = "number", min = 2, max = MAX_TEAMS, step = 1,
      hint = "Empty: everyone plays for themselves." },
    { key = "host_sees_answer", label = "Show the answer on my screen during each question", type = "checkbox",
      default = true, show_if = { key = "pace", value = "host" },
      hint = "Untick it when your screen is on the projector." },
  },

  init = function(ctx, params)
    if type(params) ~= "table" then params = {} end
    -- Rows of a spreadsheet in the params: read as the file would be; the
    -- other params win, as a host's own params win over a file's.
    if given(params.sheet) ~= nil then
      local from, row, why = read_sheet(params.sheet)
      if not from then
        local file = type(params.sheet) == "table" and type(params.sheet.file) == "string"
          and params.sheet.file or "the spreadsheet"
        error(file .. (row and ":" .. row or "") .. ": " .. why, 0)
      end
      for k, v in pairs(params) do
        if k ~= "sheet" then from[k] = v end
      end
      params = from
    end
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
    -- teams = N (2 to 8, named Red, Blue, ...) or a list of names.
    local teams
    local raw_teams = given(params.teams)
    if raw_teams ~= nil then
      local wrong = "params.teams must be a number of teams, 2 to " .. MAX_TEAMS
        .. ", or a list of 2 to " .. MAX_TEAMS .. " team names"
      if type(raw_teams) == "table" then
        teams = {}
        local seen = {}
        for i, name in ipairs(raw_teams) do
          if type(name) ~= "string" and type(name) ~= "number" then error(wrong .. ": team " .. i .. " is not text", 0) end
          name = tidy(name)
          if name == "" then error(wrong .. ": team " .. i .. " has no name", 0) end
          if seen[fold(name)] then error(wrong .. ": the name '" .. name .. "' is given twice", 0) end
          seen[fold(name)] = true
          teams[i] = name
        end
      else
        local n = to_int(raw_teams)
        if not n then error(wrong .. ", got " .. shown(raw_teams), 0) end
        teams = {}
        for i = 1, math.max(0, math.min(n, MAX_TEAMS + 1)) do teams[i] = TEAM_NAMES[i] or ("Team " .. i) end
      end
      if #teams < 2 or #teams > MAX_TEAMS then error(wrong .. ", got " .. #teams, 0) end
    end
    local title = given(params.title)
    if type(title) ~= "string" or title == "" then
      title = given(params.questions) and "Quiz" or TITLE
    end
    -- pace = "self": homework, open until the deadline (see Self-paced).
    local pace = given(params.pace) or "host"
    if pace ~= "host" and pace ~= "self" then
      error("params.pace must be \"host\" (the host moves everyone on) or \"self\" (each student at their own pace), got " .. shown(pace), 0)
    end
    local deadline = given(params.deadline)
    if pace == "host" and deadline ~= nil then
      error("params.deadline is for a self-paced quiz: give pace = \"self\" too", 0)
    end
    if deadline ~= nil and (type(deadline) ~= "number" or deadline <= 0 or deadline > MAX_DEADLINE) then
      error("params.deadline must be a number of hours from now, above 0 and at most " .. MAX_DEADLINE
        .. " (a week), got " .. shown(deadline), 0)
    end
    if pace == "self" and teams and params.team_choice == true then
      error("params.team_choice needs a lobby, and a self-paced quiz has none: students go into the smallest team", 0)
    end
    local state = {
      version = 3,
      pace = pace,
      title = title,
      questions = questions,            -- copied in: editing the file changes new sessions
      allow_late_join = params.allow_late_join ~= false,
      teams = teams,                    -- team names, or nil (see Teams)
      team_choice = teams ~= nil and params.team_choice == true,
      host_sees_answer = params.host_sees_answer ~= false,
      phase = "lobby",                  -- "lobby" | "question" | "reveal" | "podium"; "open" (self-paced)
      current = 0,                      -- number of the question on screen
      round = 0,                        -- bumped at every phase change (stale timers)
      revealed = 0,                     -- questions scored so far
      players = {},                     -- id -> {id, name, score, correct, joined, left?}
      order = {},                       -- ids in join order
      answers = {},                     -- id -> answer record (see Answers) for the open question
      counts = {},                      -- answers per choice for the open question
      words = {}, word_index = {}, top = {},  -- typed answers and cloud words (see Tallies)
      answered = 0,
      present = 0,                      -- students in the room (see recount())
      ranking = {},                     -- see rerank()
      position = {},                    -- id -> index in ranking
      -- host, timer_id, ends_at, shown (an order question's
      -- shuffle) are set as the game goes
    }
    if pace == "self" then
      -- No lobby: students start when they come, until the deadline.
      state.phase = "open"
      state.seats = 0
      state.tallies = {}
      for n, q in ipairs(questions) do state.tallies[n] = new_tally(q) end
      local ms = math.floor((deadline or DEFAULT_DEADLINE) * 3600000)
      state.closes_at = ctx.now() + ms
      state.timer_id = ctx.after(ms, "deadline")
    end
    return state
  end,

  join = function(state, ctx, player)
    if player.role == "host" then
      state.host = player.id
      return
    end
    -- A bot (a backend service) watches: it sees what a student who is not
    -- on the board sees, and is neither counted nor ranked.
    if player.role == "bot" then return end
    if state.players[player.id] then return end
    if state.phase == "podium" then return false, "this quiz is over" end

    -- Someone who left and comes back under the name they typed gets their
    -- seat back, under the name the others knew them by (one the host gave
    -- them, or the one generated for them), when it is still free.
    local wanted = name_key(player)
    for i, id in ipairs(state.order) do
      local p = state.players[id]
      if p.left and (p.typed == wanted or (not player.real_name and p.name:lower() == wanted)) then
        state.players[id] = nil
        p.id, p.left = player.id, nil
        p.real_name = player.real_name or p.real_name
        if p.name ~= player.name then
          local ok, name = ctx.rename(player.id, p.name)
          if not ok then p.name = player.name end
        end
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

    if state.phase ~= "lobby" and not state.allow_late_join and state.pace ~= "self" then
      return false, "this quiz has already started; you can join the next one"
    end
    add_player(state, player)
    recount(state)
    if state.phase ~= "lobby" then rerank(state) end
    if state.pace == "self" then ctx.report(results_table(state)) end
    if state.phase == "lobby" and not state.team_choice then
      -- A student's lobby screen shows nobody else (with team_choice it
      -- shows the teams' sizes): only the host's list grows.
      ctx.redraw({ player.id, "host" })
    end
  end,

  leave = function(state, ctx, player)
    local record = state.players[player.id]
    if not record then return end
    if state.phase == "lobby" then
      if record.team then
        -- Back in the lobby, they get the same team.
        state.lobby_teams = state.lobby_teams or {}
        state.lobby_teams[name_key(player)] = record.team
      end
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
    if player.role == "bot" and (name == "answer" or name == "team" or name == "next") then
      return false, "bots watch the quiz; they do not answer"
    end
    if state.pace == "self" then
      -- Students answer and move on by themselves (see Self-paced).
      if name == "answer" then return self_answer(state, ctx, player, data) end
      if name == "next" and player.role ~= "host" then return self_next(state, ctx, player) end
    end
    if name == "answer" then
      return answer(state, ctx, player, data)
    end
    if name == "team" then
      return pick_team(state, ctx, player, data)
    end
    local what = ({
      start = "start the quiz",
      next = "move the quiz on",
      skip = "skip a question",
      close = "close the quiz",
      kick = "remove players",
      rename = "rename players",
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
    if name == "rename" then return rename(state, ctx, data) end
    return host_command(state, ctx, name)
  end,

  timer = function(state, ctx, name, data)
    if name == "deadline" then
      if state.phase == "open" then
        state.timer_id = nil
        self_close(state, ctx)
      end
      return
    end
    if name == "time_up" and type(data) == "table" and data.seat then
      return self_time_up(state, ctx, data)
    end
    -- Stale: the host revealed, skipped or moved on since this timer started.
    if name ~= "time_up" or type(data) ~= "table" or data.round ~= state.round then return end
    if state.phase ~= "question" then return end
    state.timer_id = nil  -- it has fired; nothing left to cancel
    reveal(state, ctx)
  end,

  -- A backend (or a classroom clicker bridge) can drive the quiz over REST:
  -- POST /api/sessions/{id}/events {"name": "next"}
  event = function(state, ctx, name, data)
    if name == "start" or name == "next" or name == "skip" or name == "close" then
      return host_command(state, ctx, name)
    end
    if name == "kick" then return kick(state, ctx, data) end
    -- A grading service adds points (a lab report, homework marked elsewhere):
    -- POST /api/sessions/{id}/events {"name": "award", "data": {"points": {"Ana": 200}}}
    if name == "award" then return award(state, ctx, data) end
    return false, "unknown event '" .. tostring(name) .. "'; expected start, next, skip, close, kick or award"
  end,

  view = function(state, player)
    if state.phase == "open" then
      if player.role == "host" then return self_host_view(state) end
      return self_player_view(state, player)
    end
    if player.role == "host" then return host_view(state) end
    return player_view(state, player)
  end,

  -- Sessions already running when a new version of this file is saved keep
  -- their state; fill in anything an older version did not keep.
  migrate = function(state)
    if (state.version or 1) < 2 then
      -- Version 1 had only choice questions, answers {choice, points}.
      for _, q in ipairs(state.questions or {}) do
        q.type = q.type or "choice"
        q.points = q.points or 1
      end
      local q = state.questions and state.questions[state.current]
      for _, a in pairs(state.answers or {}) do
        if a.right == nil and q then a.right = a.choice == q.answer end
      end
    end
    -- Version 3 added self-paced quizzes, and remembers removed students
    -- by the name to let back in and the name shown.
    state.pace = state.pace or "host"
    for i, removed in ipairs(state.removed or {}) do
      if type(removed) == "string" then state.removed[i] = { name = removed, shown = removed } end
    end
    state.version = 3
    state.answers = state.answers or {}
    state.counts = state.counts or {}
    state.words = state.words or {}
    state.word_index = state.word_index or {}
    state.top = state.top or {}
    state.revealed = state.revealed or 0
    recount(state)
    state.ranking = state.ranking or {}
    state.position = state.position or {}
    state.allow_late_join = state.allow_late_join ~= false
    state.host_sees_answer = state.host_sees_answer ~= false
    for _, p in pairs(state.players or {}) do p.log = p.log or {} end
    if state.teams and not state.team_ranking then rerank(state) end
    return state
  end,
}
