---@meta _

-- Editor support for Recess games: what the Lua extension of VS Code
-- (LuaLS, "sumneko.lua") needs to complete and check a game file and its
-- tests. It describes the Lua game API of docs/lua-api.md: the game table
-- (§3, §6, §7), players (§4), `ctx` (§8), `null` (§9), the screen
-- vocabulary (§10-11), the sandbox's globals (§13) and the API of
-- `recess test` (§15).
--
-- This file is never run: Recess skips the `types/` folder (it has no
-- init.lua), and games/.luarc.json points the editor at it.
-- tests/editor_types.rs checks it against the engine (the `ctx` functions,
-- the globals and the test API a real run installs, the view keys and fields
-- of src/script/vocabulary.rs) and against docs/lua-api.md, so a change on
-- either side that is not made here fails the build.
--
-- To have a game file checked, put `---@type Game` on the line before its
-- `return {`; the handlers' parameters then get their types.

---------------------------------------------------------------------------
-- The sandbox's globals (docs §13)
--
-- games/.luarc.json turns off the editor's own list of Lua's basic
-- functions ("basic") and the libraries a game does not have (io, os,
-- debug, coroutine, package), so that only what a game really has is
-- declared here: a call to `load`, `dofile`, `os.time` or `io.open` is
-- flagged as an undefined global. `string`, `table`, `math` and `utf8` come
-- from the editor (`string.dump` and `math.randomseed` are missing in a
-- game; the editor does not know that).
---------------------------------------------------------------------------

--- Recess adds `string.fold`: the form two typed answers are compared in
--- (accents removed, lowercased, spaces trimmed and collapsed):
--- `("  São Paulo "):fold() == "sao paulo"`.
--- It is both `string.fold(s)` and the method `s:fold()`.
---@class stringlib
---@field fold fun(s: string|number): string
---@class string
---@field fold fun(s: string|number): string

--- The table of globals. A game sets no globals: keep everything `local`.
---@type table<string, any>
_G = {}

--- The Lua version: `"Lua 5.4"`.
---@type string
_VERSION = "Lua 5.4"

--- Raises an error with `message` if `v` is false or nil; otherwise returns all its arguments.
---@generic T
---@param v? T
---@param message? any
---@param ... any
---@return T
---@return any ...
function assert(v, message, ...) end

--- Raises an error. Raise a string: the caller and the hosts get it as `file:line: message`.
---@param message any
---@param level? integer 1 (default): where `error` was called; 2: the caller of that function; 0: no position.
function error(message, level) end

--- The metatable of `object` (or its `__metatable` field), or nil.
---@param object any
---@return table?
function getmetatable(object) end

--- Iterates over the list part of `t`: `for i, v in ipairs(t) do ... end`.
---@generic V
---@param t V[]
---@return fun(t: V[], i: integer): integer, V
---@return V[]
---@return integer
function ipairs(t) end

--- The next key and value of `t` after `index` (the first with nil), or nil at the end.
---@generic K, V
---@param t table<K, V>
---@param index? K
---@return K?
---@return V?
function next(t, index) end

--- Iterates over every key and value of `t`, in no stable order: `for k, v in pairs(t) do ... end`.
--- Build what is shown on screen from a list, not from `pairs`.
---@generic K, V
---@param t table<K, V>
---@return fun(t: table<K, V>, k?: K): K, V
---@return table<K, V>
---@return nil
function pairs(t) end

--- Calls `f(...)` and catches its error: returns true and f's results, or false and the error.
--- A handler over its CPU budget is stopped all the same.
---@param f function
---@param ... any
---@return boolean ok
---@return any ...
function pcall(f, ...) end

--- In a game, the same as `ctx.log`: writes to the server log. In a test file, writes under the test's line.
---@param ... any
function print(...) end

--- Whether `a` and `b` are the same value, without `__eq`.
---@param a any
---@param b any
---@return boolean
function rawequal(a, b) end

--- `t[k]` without `__index`.
---@param t table
---@param k any
---@return any
function rawget(t, k) end

--- The length of a table or string, without `__len`.
---@param v table|string
---@return integer
function rawlen(v) end

--- `t[k] = v` without `__newindex`; returns `t`.
---@generic T: table
---@param t T
---@param k any
---@param v any
---@return T
function rawset(t, k, v) end

--- Loads a helper module of a folder game: `require("questions")` runs `games/NAME/questions.lua`
--- once and returns what it returns. Only the game's own folder is searched.
---@param name string
---@return any
function require(name) end

--- With a number `n`: the arguments from the n-th on (negative: from the end). With `"#"`: how many arguments there are.
---@param n integer|"#"
---@param ... any
---@return any
function select(n, ...) end

--- Sets the metatable of `t` and returns `t`. A metatable with `__gc` is refused. Metatables are not part of a saved state.
---@generic T: table
---@param t T
---@param metatable? table
---@return T
function setmetatable(t, metatable) end

--- `e` as a number (in `base` 2 to 36 when given), or nil when it is not one.
---@param e any
---@param base? integer
---@return number?
function tonumber(e, base) end

--- `v` as a string.
---@param v any
---@return string
function tostring(v) end

---@alias LuaType
---| "nil"
---| "number"
---| "string"
---| "boolean"
---| "table"
---| "function"
---| "thread"
---| "userdata"

--- The type of `v` as a string. `null` is a `"userdata"`.
---@param v any
---@return LuaType
function type(v) end

--- Does nothing in a game: write to the log with `ctx.log`.
---@deprecated it does nothing in a game; use ctx.log
---@param message string
---@param ... string
function warn(message, ...) end

--- Like `pcall`, with `msgh` called on the error first.
---@param f function
---@param msgh function
---@param ... any
---@return boolean ok
---@return any ...
function xpcall(f, msgh, ...) end

---------------------------------------------------------------------------
-- `null` (docs §9)
---------------------------------------------------------------------------

--- JSON's `null`, as it arrives in params and in data from clients and
--- backends. It is not `nil`, and it is truthy: check `v == null`, or
--- better the type you expect. Put it in a view or a message for a JSON
--- `null` on the wire.
---@class Null

--- JSON's `null` (docs §9): not `nil`, and truthy. Compare with `v == null`.
---@type Null
null = nil

---------------------------------------------------------------------------
-- Players (docs §4)
---------------------------------------------------------------------------

---@alias Role
---| "host" # the teacher who started the session (a member too)
---| "player" # a student
---| "bot" # a backend service that joined with an API key: not counted as a player

--- A member of the session, as a handler gets them.
---@class (exact) Player
---@field id string Short and random ("pk3v9x2ma"), unique in the session, stable while they are in it. Key your tables by it.
---@field name string The name everyone sees, unique in the session: the nickname they typed, a generated one (`"Brave Otter"`) in a session with generated names, or the one `ctx.rename` gave.
---@field real_name? string Only in a session with generated names: the name they typed. Keep it out of views; a results column in `private` is the place for it.
---@field role Role `"host"`, `"player"` or `"bot"`: check it for anything only the teacher may do.

--- A member as `ctx.players()` lists them.
---@class (exact) Member: Player
---@field connected boolean False while their connection is down (they keep their seat).

---------------------------------------------------------------------------
-- The game table (docs §3, §6, §7)
---------------------------------------------------------------------------

--- A game's state: plain data only (tables with string keys or lists,
--- strings, numbers, booleans). Describe your own with `---@class`.
---@alias State table

--- What `join`, `action` and `event` return: nothing when all is well,
--- `false, "reason"` to refuse (the reason goes to whoever asked), or a new
--- state table that replaces the old one.
---@alias Outcome State|false|nil

--- The table a game file returns (docs §3). Put `---@type Game` on the line
--- before `return {`.
---@class (exact) Game
---@field title string Shown in the host's game list and `GET /api/games`.
---@field max_players? integer The session refuses joins beyond this many players (`session_full`).
---@field init fun(ctx: Ctx, params: any): State A session starts. `params` came from the host (or is nil): check it. Return the new state; an error means no session.
---@field view fun(state: State, player: Player): View What this person sees now, in the screen vocabulary. Only read `state`; give each person only what they may see.
---@field join? fun(state: State, ctx: Ctx, player: Player): Outcome, string? Someone joined (the host too). `return false, "reason"` turns them away.
---@field leave? fun(state: State, ctx: Ctx, player: Player): State? Someone left on purpose (not a dropped connection). Cannot refuse.
---@field action? fun(state: State, ctx: Ctx, player: Player, name: string, data: any): Outcome, string? Someone pressed something: `name` is the action, `data` what came with it (check it). `return false, "reason"` refuses.
---@field timer? fun(state: State, ctx: Ctx, name: string, data: any): State? A timer set with `ctx.after(ms, name, data)` fired. Check that it still matters.
---@field event? fun(state: State, ctx: Ctx, name: string, data: any): Outcome, string? A backend posted an event over REST. `return false, "reason"` refuses.
---@field migrate? fun(state: State): State? A running session switches to a newly saved version of the file: bring the old state up to date (in place, or return a new one).
---@field settings? Setting[] What the host page offers to set before a session starts (at most 20), each a param of `init`.
---@field sheet? fun(sheet: Sheet): table?, integer?, string? Reads a spreadsheet saved as `NAME.THISGAME.csv` or `.xlsx` into the params its sessions start with. Return the params, or `nil, row, "message"` for a problem in the file.

--- One thing the host page offers to set before a session starts (docs §3, "Settings"): it becomes `params[key]`.
---@class Setting
---@field key string The param it sets: `"time_limit"` (lowercase letters, digits, _).
---@field label string What the form says (at most 80 characters).
---@field type "checkbox"|"number"|"choice"|"text" A tick box (true/false), a number field, one of `choices`, or a line of text.
---@field hint? string A line under the field.
---@field default? any What the game does when the host leaves it alone; the form starts there and sends only a change.
---@field min? number A number setting's lowest value.
---@field max? number A number setting's highest value.
---@field step? number A number setting's step.
---@field choices? { value: string|number, label: string }[] A choice setting's options (2 to 20).
---@field show_if? { key: string, value: any } Shown and sent only while that checkbox or choice setting has this value.

--- A spreadsheet, as the game table's `sheet` function gets it (docs §2).
---@class Sheet
---@field file string The file's name in the games folder: `"capitals.quiz.csv"`.
---@field rows SheetRow[] Every non-blank row of the file (the first worksheet of an xlsx), in order.

--- One row of a spreadsheet.
---@class SheetRow
---@field row integer Its number in the file (1 = the first row), for messages.
---@field cells string[] Its cells as trimmed text (`""` when empty; numbers as written: `"20"`).

---------------------------------------------------------------------------
-- `ctx`: what a handler can do (docs §8)
---------------------------------------------------------------------------

--- What a handler can do. Only valid during the call that got it: never
--- keep it in state or in a variable for later. What a call queues takes
--- effect when the call succeeds, and is dropped if it raises an error.
-- Not `(exact)`: the editor would then not count the functions below as
-- part of it. A misspelled `ctx.brodcast` is flagged all the same.
---@class Ctx
local Ctx = {}

--- Sends an `event` frame to every member.
---@param name string The event's name.
---@param data? any Plain data, at most 64 KiB of JSON.
function Ctx.broadcast(name, data) end

--- Sends an `event` frame to one member.
---@param player_id string `player.id` of who gets it.
---@param name string The event's name.
---@param data? any Plain data, at most 64 KiB of JSON.
function Ctx.send(player_id, name, data) end

--- Sends a webhook `name` with `data` to the backends the node posts to (`--webhook`); nothing without one. Delivered at least once, in order, after the call's changes are stored.
---@param name string The webhook's `event` (not starting with `session.`).
---@param data? any Plain data, at most 64 KiB of JSON.
function Ctx.emit(name, data) end

--- Starts a timer: after `ms` milliseconds the game's `timer(state, ctx, name, data)` runs. Returns its id, for `ctx.cancel`.
---@param ms number Milliseconds, from 0 to a week.
---@param name string Given to `timer` as `name`.
---@param data? any Given to `timer` as `data` (carry a round number to tell a stale timer).
---@return integer id
function Ctx.after(ms, name, data) end

--- Cancels a timer from `ctx.after` that has not fired yet; does nothing for one that already fired, was cancelled, or nil.
---@param id integer?
function Ctx.cancel(id) end

--- The current time: whole milliseconds since 1970 (Unix time), for deadlines and a view's `timer`.
---@return integer ms
function Ctx.now() end

--- A random number, as `math.random` (the same per-session generator): `()` a float in [0, 1), `(n)` an integer from 1 to n, `(m, n)` from m to n.
---@overload fun(): number
---@overload fun(n: integer): integer
---@param m integer
---@param n integer
---@return integer
function Ctx.random(m, n) end

--- The members of the session right now, host included. Read it, do not change it or keep it in state.
---@return Member[]
function Ctx.players() end

--- Removes a member: they get an `error` frame (`kicked`) with `reason`, and cannot join again under that name until `ctx.readmit`.
---@param player_id string `player.id` of who to remove.
---@param reason? string What they are told.
function Ctx.kick(player_id, reason) end

--- Renames a player: checked like a name typed at join (length, characters, the blocked list) and unlike every other member's; then everyone sees it (views, `ctx.players`, later handlers) and the player gets a `renamed` frame. Applied when the handler returns, like a kick.
---@param player_id string `player.id` of who to rename.
---@param new_name string The new name.
---@return boolean ok
---@return string name_or_reason The name as shown (trimmed, NFC) when `ok`, else why not.
function Ctx.rename(player_id, new_name) end

--- Sets the results so far without ending the game: `GET /api/sessions/{id}/results` serves them (`"final": false`) until `ctx.finish`.
---@param results? Results
function Ctx.report(results) end

--- Says whose screens this call changed, so only their `view` runs again (the others keep theirs). Without it every view is redrawn; `{}` redraws nobody. `recess test` fails a call that left out a screen that changed.
---@param who string|string[] A player id, a role (`"host"`, `"player"`, `"bot"`), or a list of them.
function Ctx.redraw(who) end

--- Lets someone removed with `ctx.kick` join again under `name`.
---@param name string The name they had.
function Ctx.readmit(name) end

--- Ends the game: every member gets an `ended` frame with `results`, which stay available at `GET /api/sessions/{id}/results`.
---@param results? Results
function Ctx.finish(results) end

--- Writes its arguments (tables as JSON) to the server log, tagged with the session. At most 50 lines per call.
---@param ... any
function Ctx.log(...) end

--- What `ctx.finish` takes (docs §12); other fields are kept too.
---@class Results
---@field columns? string[] The spreadsheet's columns, in order.
---@field rows? table[] One table per line, with a value for every column, sorted as the teacher should read them.
---@field private? string[] Columns only the host (its `ended` frame, REST with its token) and backends (REST with the API key) get, such as `real_name`.

---------------------------------------------------------------------------
-- The screen vocabulary (docs §10-11)
---------------------------------------------------------------------------

---@alias Style
---| "selected" # the viewer's pick
---| "correct" # green
---| "wrong" # red
---| "disabled" # greyed, not pressable

--- What one person sees: what `view(state, player)` returns. The page draws
--- the keys present, in this order. A key for a custom screen (`phase`) is
--- allowed by Recess; declare it with `---@class MyView: View` to keep the
--- editor quiet about it.
---@class (exact) View
---@field title? string The heading.
---@field image? string A picture under the heading: `http(s)://`, a path on this server, or `data:image/…`.
---@field image_alt? string With `image`: what the picture shows, for screen readers.
---@field text? string A paragraph: the question, an instruction.
---@field banner? View.Banner A big feedback line: "Correct! +875 points".
---@field timer? View.Timer A countdown.
---@field status? string A small line: "12 of 30 answered".
---@field choices? View.Button[] Big answer buttons.
---@field select? View.Select With `choices`: the choices become toggles; a Submit button sends the picks.
---@field slider? View.Slider A number picked on a range, with a Submit button.
---@field order? View.Order A list the viewer puts in order (up/down buttons), with a Submit button.
---@field input? View.Input A text field with a Send button.
---@field bars? View.Bar[] A horizontal bar chart (poll results, answer counts).
---@field cloud? View.Word[] A word cloud: words sized by how often they were given.
---@field messages? View.Message[] A chat log, oldest first.
---@field podium? View.Rank[] First, second and third place (up to 3).
---@field leaderboard? View.Rank[] A ranked table.
---@field score? number The viewer's own score, in a corner.
---@field players? View.Player[] A list of people (the host's lobby).
---@field kick? string With `players`: an action name; a remove button by each person sends it with `{player = id}`.
---@field rename? string With `players`: an action name; a rename button by each person asks for a new name and sends it with `{player = id, name = "..."}`.
---@field buttons? View.Button[] Small control buttons (Start, Next, Skip).

--- A button, in `choices` and `buttons`.
---@class (exact) View.Button
---@field label string The text on the button.
---@field action? string The action sent when it is pressed; without one it cannot be pressed.
---@field data? any The action's `data`.
---@field style? Style Absent for a normal button.
---@field detail? string A small second line ("7 answers").

--- With `choices`: the choice buttons (those with an `action`, not
--- `"selected"` or `"disabled"`) become toggles, and a Submit button sends
--- the action with `{choices = {1, 3}}`, the 1-based positions picked, in
--- ascending order. The choices' own `action` and `data` are not sent.
---@class (exact) View.Select
---@field action string The action sent by Submit.
---@field min? integer Fewest picks Submit accepts (default 1).
---@field max? integer Most picks Submit accepts (default: the number of choices).
---@field label? string The text on the Submit button (default "Submit").

--- A range input with the current number shown large; Submit sends the
--- action with `{value = n}`, a number. Without `action` it only shows `value`.
---@class (exact) View.Slider
---@field action? string The action sent by Submit; without it the slider is read-only.
---@field min number The lowest number.
---@field max number The highest number.
---@field step? number The steps between (default 1).
---@field value? number Where it starts; read-only, the number shown.
---@field unit? string Shown after the number ("kg", "%").
---@field label? string The text on the Submit button (default "Submit").
---@field answer? number The right number, marked on the scale (at the reveal).

--- A list the viewer rearranges with up/down buttons; Submit sends the
--- action with `{order = {3, 1, 2, 4}}`: 1-based indexes into `items`, in
--- the viewer's order. Without `action`, the list is shown as given.
---@class (exact) View.Order
---@field action? string The action sent by Submit; without it the list is read-only.
---@field items View.OrderItem[] The rows, in the order they start in.
---@field label? string The text on the Submit button (default "Submit").

--- A row of `order`.
---@class (exact) View.OrderItem
---@field label string The text of the row.
---@field style? Style `"correct"` green, `"wrong"` red (at the reveal).
---@field detail? string A small second line ("belongs 2nd").

--- A bar of `bars`; its length is its `value` over the largest value.
---@class (exact) View.Bar
---@field label string What the bar counts ("Paris").
---@field value number The number (printed by the bar).
---@field style? Style `"correct"` highlights it.
---@field detail? string A small note ("40%").

--- A word of `cloud`; the more often it was given, the bigger it is drawn.
---@class (exact) View.Word
---@field text string The word or phrase.
---@field count number How often it was given.

--- A text field; submitting sends the action with `{text = "what they typed"}`.
---@class (exact) View.Input
---@field action string The action sent.
---@field placeholder? string Shown while the field is empty.
---@field max? integer Longest text the page lets them type (check it again in `action`).
---@field label? string A caption.

--- A big feedback line.
---@class (exact) View.Banner
---@field text string The line.
---@field style? Style `"correct"` green, `"wrong"` red.

--- A countdown in whole seconds, with a bar.
---@class (exact) View.Timer
---@field ends_at integer When it reaches 0: ms since 1970, from `ctx.now()`.
---@field label? string A caption ("Time left").

--- A line of a chat log.
---@class (exact) View.Message
---@field from? string Who wrote it; without it, the line is a notice.
---@field text string The message.
---@field at? integer When: ms since 1970.

--- A row of `podium` or `leaderboard`.
---@class (exact) View.Rank
---@field name string
---@field score number
---@field rank? integer
---@field highlight? boolean Marks the viewer's own row.

--- A person in `players`.
---@class (exact) View.Player
---@field id string `player.id`, sent back by the `kick` button.
---@field name string
---@field detail? string A small note ("answered", "host").

---------------------------------------------------------------------------
-- `recess test`: game tests (docs §15), in NAME_test.lua files
---------------------------------------------------------------------------

--- A headless session of a game in a test: the real game, no network, a clock that only moves on `s:advance`.
---@class (exact) Session
---@field host Player The host who created it.
local Session = {}

--- Joins a student (or, with `{role = "bot"}`, a bot). Returns the player, or nil and the reason `join` refused them.
---@param name string The nickname.
---@param options? {role?: "player"|"bot"}
---@return Player player nil when refused.
---@return string? reason
function Session:join(name, options) end

--- Sends an action as `player`. Returns true, or false and the reason it was refused; a script error fails the test.
---@param player Player|string A player from `s:join` or `s.host`, or an id.
---@param name string The action's name.
---@param data? any The action's data.
---@return boolean accepted
---@return string? reason
function Session:act(player, name, data) end

--- Posts an event as a backend would. Returns true, or false and the reason it was refused.
---@param name string The event's name.
---@param data? any The event's data.
---@return boolean accepted
---@return string? reason
function Session:event(name, data) end

--- The member leaves on purpose (runs `leave`).
---@param player Player|string
function Session:leave(player) end

--- The member's connection drops (they keep their seat).
---@param player Player|string
function Session:disconnect(player) end

--- The member's connection comes back.
---@param player Player|string
function Session:reconnect(player) end

--- Moves the session's clock forward; timers that fall due run, in order.
---@param ms number Milliseconds, 0 or more.
function Session:advance(ms) end

--- The session's clock: ms since 1970, as `ctx.now()` sees it.
---@return integer ms
function Session:now() end

--- What `player` sees now.
---@param player Player|string
---@return View
function Session:view(player) end

--- The events `player` received, oldest first; only those called `name` when given.
---@param player Player|string
---@param name? string
---@return { name: string, data: any, seq: integer }[]
function Session:events(player, name) end

--- The webhooks the session made, oldest first (`session.created`, what `ctx.emit` sent, `session.ended`); only those called `name` when given.
---@param name? string
---@return { name: string, data: any }[]
function Session:emitted(name) end

--- The results of `ctx.finish`, or nil while the game runs.
---@return Results?
function Session:results() end

--- The results the host would download now: those of `ctx.finish`, or before the end those of the last `ctx.report`; nil when neither has run.
---@return Results?
function Session:report() end

--- The members now, host included.
---@return Member[]
function Session:players() end

--- What `expect(actual)` returns: one check on `actual`. A failed check fails the test at that line.
-- Not `(exact)`, like Ctx, so that its functions count.
---@class Expectation
local Expectation = {}

--- `actual == expected`.
---@param expected any
function Expectation.to_be(expected) end

--- Equal contents: tables compared key by key, deeply.
---@param expected any
function Expectation.to_equal(expected) end

--- A string containing `item`, or a list with an element equal to `item`.
---@param item any
function Expectation.to_contain(item) end

--- `actual == nil`.
function Expectation.to_be_nil() end

--- Neither false nor nil.
function Expectation.to_be_truthy() end

--- False or nil.
function Expectation.to_be_falsy() end

--- A number `>= n`.
---@param n number
function Expectation.to_be_at_least(n) end

--- A number `<= n`.
---@param n number
function Expectation.to_be_at_most(n) end

--- Starts a headless session of `game` (the name of a game beside the test file), as its host.
---@param game string
---@param params? any The session's params, as `init` gets them.
---@param options? {names?: "typed"|"generated"} `names = "generated"`: students are shown generated names and handlers get `player.real_name`, as when a host ticks "Students get generated names".
---@return Session
function session(game, params, options) end

--- Declares a test: `fn` runs with fresh sessions; an error or a failed `expect` fails it.
---@param name string
---@param fn fun()
function test(name, fn) end

--- Starts a check on `actual`: `expect(s:view(ana).title).to_be("Question 1 of 3")`.
---@param actual any
---@return Expectation
function expect(actual) end
