--[[
chat.lua: a chat room for the class.

The classic room-chat protocol, mapped onto the Lua game API:
  SUBSCRIBE     = joining the session     -> everyone gets event `joined` {name}
  UNSUBSCRIBE   = leaving the session     -> everyone gets event `left` {name}
  SEND_MESSAGE  = action `send` {text}    -> everyone gets event `message` {from, text, at}

Everyone's screen shows the last 50 messages, who is in the room and a text
field. The host can also remove someone (`kick` {player = id}), rename
someone (`rename` {player = id, name = "..."}) and wipe the log (`clear`). A backend can post an announcement over REST:
  POST /api/sessions/{id}/events {"name": "announce", "data": {"text": "..."}}

Params (optional): title (the room's heading, default "Class chat").
]]

local MAX_MESSAGES = 50   -- the log keeps this many; older ones drop off
local MAX_LENGTH = 500    -- characters per message

-- Every view shows the same text field; one table serves them all.
local INPUT = { action = "send", placeholder = "Type a message…", max = MAX_LENGTH }
local HOST_BUTTONS = { { label = "Clear chat", action = "clear" } }

-- Checks what someone typed: returns the text to post, or nil and a reason.
local function clean_text(text)
  if type(text) ~= "string" then
    return nil, "send your message as {text = \"...\"}"
  end
  -- Refuse far-too-long input before looking at it any closer.
  if #text > MAX_LENGTH * 4 then
    return nil, "messages can be at most " .. MAX_LENGTH .. " characters"
  end
  -- Trim spaces and blank lines at both ends (two linear scans).
  local first = text:find("%S")
  if not first then
    return nil, "type something first: empty messages are not sent"
  end
  text = text:match("^.*%S", first)
  local length = utf8.len(text) or #text
  if length > MAX_LENGTH then
    return nil, "messages can be at most " .. MAX_LENGTH
      .. " characters (yours has " .. length .. ")"
  end
  return text
end

-- Adds a message to the log (keeping only the last MAX_MESSAGES) and tells
-- everyone. The same table is the log entry, the event and, through the
-- view, what every screen draws.
local function post(state, ctx, from, text)
  local message = { from = from, text = text, at = ctx.now() }
  local log = state.messages
  log[#log + 1] = message
  while #log > MAX_MESSAGES do
    table.remove(log, 1)
  end
  ctx.broadcast("message", message)
end

-- state.members is the list every view shows: {id, name, detail?} in the
-- order people arrived.
local function find_member(state, id)
  for i, member in ipairs(state.members) do
    if member.id == id then return i, member end
  end
end

local function remove_member(state, id)
  local i, member = find_member(state, id)
  if i then table.remove(state.members, i) end
  return member
end

return {
  title = "Class chat",
  max_players = 200,

  init = function(ctx, params)
    local title = type(params) == "table" and params.title
    return {
      title = type(title) == "string" and title ~= "" and title or "Class chat",
      messages = {},  -- {from, text, at}, oldest first, at most MAX_MESSAGES
      members = {},   -- {id, name, detail?}
    }
  end,

  -- SUBSCRIBE
  join = function(state, ctx, player)
    if find_member(state, player.id) then return end
    state.members[#state.members + 1] = {
      id = player.id,
      name = player.name,
      -- The list shows who is the host and who is a bot (a backend service).
      detail = player.role ~= "player" and player.role or nil,
    }
    ctx.broadcast("joined", { name = player.name })
  end,

  -- UNSUBSCRIBE. Does nothing for someone already removed by a kick.
  leave = function(state, ctx, player)
    if remove_member(state, player.id) then
      ctx.broadcast("left", { name = player.name })
    end
  end,

  action = function(state, ctx, player, name, data)
    if name == "send" then  -- SEND_MESSAGE
      local text, why = clean_text(type(data) == "table" and data.text or nil)
      if not text then return false, why end
      post(state, ctx, player.name, text)
      return
    end

    local host_only = { kick = "remove people", rename = "rename people", clear = "clear the chat" }
    if not host_only[name] then
      return false, "unknown action '" .. tostring(name) .. "'; use send"
    end
    if player.role ~= "host" then
      return false, "only the host can " .. host_only[name]
    end

    if name == "clear" then
      state.messages = {}
      ctx.broadcast("cleared", { by = player.name })
      return
    end

    if name == "rename" then  -- rename {player = id, name = "..."}
      local id = type(data) == "table" and data.player
      if type(id) ~= "string" then return false, "say who to rename: {player = id, name = \"...\"}" end
      local _, member = find_member(state, id)
      if not member then return false, "there is nobody with id '" .. id .. "' in the chat" end
      if type(data.name) ~= "string" then return false, "say the new name: {player = id, name = \"...\"}" end
      -- The engine checks the name (length, characters, the blocked list,
      -- nobody else has it) and says why it refuses.
      local ok, new_name = ctx.rename(id, data.name)
      if not ok then return false, new_name end
      ctx.broadcast("renamed", { from = member.name, name = new_name })
      member.name = new_name
      return
    end

    -- kick {player = id}
    local id = type(data) == "table" and data.player
    if type(id) ~= "string" then return false, "say who to remove: {player = id}" end
    if id == player.id then return false, "the host cannot remove themselves" end
    local _, member = find_member(state, id)
    if not member then return false, "there is nobody with id '" .. id .. "' in the chat" end
    ctx.kick(id, "the host removed you from the chat")
    remove_member(state, id)
    ctx.broadcast("left", { name = member.name, kicked = true })
  end,

  -- A backend posts announcements: {"name": "announce", "data": {"text": "...", "from"?: "..."}}
  event = function(state, ctx, name, data)
    if name ~= "announce" then
      return false, "unknown event '" .. tostring(name) .. "'; expected announce"
    end
    local text, why = clean_text(type(data) == "table" and data.text or nil)
    if not text then return false, why end
    local from = type(data.from) == "string" and data.from ~= "" and data.from or "Announcement"
    post(state, ctx, from, text)
  end,

  -- Everyone sees the same room; only the host gets the controls. The log and
  -- member list are handed over as they are, not copied for each viewer.
  view = function(state, player)
    local is_host = player.role == "host"
    local empty = #state.messages == 0
    return {
      title = state.title,
      messages = not empty and state.messages or nil,
      text = empty and "No messages yet. Say hello!" or nil,
      players = #state.members > 0 and state.members or nil,
      kick = is_host and "kick" or nil,
      rename = is_host and "rename" or nil,
      status = #state.members .. (#state.members == 1 and " person" or " people") .. " here",
      input = INPUT,
      buttons = is_host and HOST_BUTTONS or nil,
    }
  end,
}
