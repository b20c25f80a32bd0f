-- Tests of chat.lua: the rules as docs/lua-api.md §16 states them.
-- Run them with `recess test games` (or `recess test games/chat_test.lua`).

local function room(...)
  local s = session("chat")
  local people = {}
  for i, name in ipairs({ ... }) do
    local p, why = s:join(name)
    expect(why).to_be_nil()
    people[i] = p
  end
  return s, table.unpack(people)
end

local function send(s, p, text)
  local ok, why = s:act(p, "send", { text = text })
  expect(why).to_be_nil()
  expect(ok).to_be(true)
end

local function refused(s, p, name, data, reason)
  local ok, why = s:act(p, name, data)
  expect(ok).to_be(false)
  expect(why).to_be(reason)
end

-- The names in the data of every event `name` that `p` received.
local function names(s, p, name)
  local list = {}
  for _, e in ipairs(s:events(p, name)) do list[#list + 1] = e.data.name end
  return list
end

-- The data of every event `name` that `p` received.
local function datas(s, p, name)
  local list = {}
  for _, e in ipairs(s:events(p, name)) do list[#list + 1] = e.data end
  return list
end

local function texts(view)
  local list = {}
  for i, m in ipairs(view.messages or {}) do list[i] = m.text end
  return list
end

test("joining and leaving are announced to the room", function()
  local s, ana, ben = room("Ana", "Ben")
  expect(names(s, s.host, "joined")).to_equal({ "Ana", "Ben" })
  expect(names(s, ana, "joined")).to_equal({ "Ben" })  -- her own came with her welcome
  s:leave(ben)
  expect(datas(s, ana, "left")).to_equal({ { name = "Ben" } })
  expect(names(s, s.host, "left")).to_equal({ "Ben" })
  local view = s:view(ana)
  expect(view.status).to_be("2 people here")
  expect(view.players).to_equal({
    { id = s.host.id, name = "Host", detail = "host" },
    { id = ana.id, name = "Ana" },
  })
end)

test("a message reaches everyone with its sender and time", function()
  local s, ana, ben = room("Ana", "Ben")
  s:advance(1500)
  send(s, ana, "hello")
  local message = { from = "Ana", text = "hello", at = s:now() }
  for _, p in ipairs({ s.host, ana, ben }) do
    local events = s:events(p, "message")
    expect(#events).to_be(1)
    expect(events[1].data).to_equal(message)
    expect(s:view(p).messages).to_equal({ message })
  end
end)

test("messages are trimmed", function()
  local s, ana = room("Ana")
  send(s, ana, "  \n\t hello there \n  ")
  expect(texts(s:view(ana))).to_equal({ "hello there" })
  expect(datas(s, ana, "message")[1].text).to_be("hello there")
end)

test("empty messages are refused", function()
  local s, ana = room("Ana")
  for _, text in ipairs({ "", "   ", "\n\t \n" }) do
    refused(s, ana, "send", { text = text }, "type something first: empty messages are not sent")
  end
  refused(s, ana, "send", nil, 'send your message as {text = "..."}')
  refused(s, ana, "send", { text = 42 }, 'send your message as {text = "..."}')
  expect(#s:events(ana, "message")).to_be(0)
  expect(s:view(ana).text).to_be("No messages yet. Say hello!")
end)

test("a message may have 500 characters, not 501", function()
  local s, ana = room("Ana")
  send(s, ana, ("a"):rep(500))
  send(s, ana, ("é"):rep(500))          -- characters, not bytes
  send(s, ana, "  " .. ("b"):rep(500) .. "  ")  -- counted after trimming
  refused(s, ana, "send", { text = ("a"):rep(501) },
    "messages can be at most 500 characters (yours has 501)")
  refused(s, ana, "send", { text = ("a"):rep(5000) }, "messages can be at most 500 characters")
  expect(#s:view(ana).messages).to_be(3)
end)

test("the view has only the last 50 messages", function()
  local s, ana = room("Ana")
  for i = 1, 60 do send(s, ana, "message " .. i) end
  local list = texts(s:view(ana))
  expect(#list).to_be(50)
  expect(list[1]).to_be("message 11")
  expect(list[50]).to_be("message 60")
  -- Someone who arrives later gets the same 50.
  local ben = s:join("Ben")
  expect(texts(s:view(ben))).to_equal(list)
end)

test("only the host can remove someone, and the room hears of it", function()
  local s, ana, ben = room("Ana", "Ben")
  refused(s, ana, "kick", { player = ben.id }, "only the host can remove people")
  expect(s:view(s.host).kick).to_be("kick")
  expect(s:view(ana).kick).to_be_nil()
  local ok = s:act(s.host, "kick", { player = ben.id })
  expect(ok).to_be(true)
  expect(datas(s, ana, "left")).to_equal({ { name = "Ben", kicked = true } })
  expect(s:view(ana).status).to_be("2 people here")
  for _, p in ipairs(s:players()) do expect(p.id == ben.id).to_be(false) end
  -- They cannot come straight back under that name.
  local again = s:join("Ben")
  expect(again).to_be_nil()
end)

test("kick is refused for the host themselves and for nobody", function()
  local s, ana = room("Ana")
  refused(s, s.host, "kick", { player = s.host.id }, "the host cannot remove themselves")
  refused(s, s.host, "kick", { player = "nobody" }, "there is nobody with id 'nobody' in the chat")
  refused(s, s.host, "kick", {}, "say who to remove: {player = id}")
end)

test("the host renames someone, and everyone sees the new name", function()
  local s, ana, ben = room("Ana", "Ben")
  refused(s, ana, "rename", { player = ben.id, name = "Bo" }, "only the host can rename people")
  expect(s:view(s.host).rename).to_be("rename")
  expect(s:view(ana).rename).to_be_nil()
  expect(s:act(s.host, "rename", { player = ben.id, name = "  Benjamin " })).to_be(true)
  expect(datas(s, ana, "renamed")).to_equal({ { from = "Ben", name = "Benjamin" } })
  expect(s:view(ana).players[3]).to_equal({ id = ben.id, name = "Benjamin" })
  send(s, ben, "hi")
  expect(s:view(ana).messages[1].from).to_be("Benjamin")
  local names_now = {}
  for _, p in ipairs(s:players()) do names_now[p.id] = p.name end
  expect(names_now[ben.id]).to_be("Benjamin")
end)

test("a rename must be a name nobody else has and that the list allows", function()
  local s, ana, ben = room("Ana", "Ben")
  refused(s, s.host, "rename", { player = ben.id, name = "ANA" },
    "the name \"ANA\" is already taken in this game")
  refused(s, s.host, "rename", { player = ben.id, name = "sh1t" }, "please choose another name")
  refused(s, s.host, "rename", { player = ben.id, name = "   " }, "please enter a name")
  refused(s, s.host, "rename", { player = "nobody", name = "Bo" },
    "there is nobody with id 'nobody' in the chat")
  refused(s, s.host, "rename", { player = ben.id }, "say the new name: {player = id, name = \"...\"}")
  expect(s:view(ana).players[3].name).to_be("Ben")
end)

test("only the host can clear the chat", function()
  local s, ana = room("Ana")
  send(s, ana, "one")
  send(s, ana, "two")
  refused(s, ana, "clear", nil, "only the host can clear the chat")
  expect(#s:view(ana).messages).to_be(2)
  expect(s:view(ana).buttons).to_be_nil()
  expect(s:view(s.host).buttons).to_equal({ { label = "Clear chat", action = "clear" } })
  expect(s:act(s.host, "clear")).to_be(true)
  expect(s:view(ana).messages).to_be_nil()
  expect(s:view(ana).text).to_be("No messages yet. Say hello!")
  expect(datas(s, ana, "cleared")).to_equal({ { by = "Host" } })
end)

test("a backend can announce, with or without a sender", function()
  local s, ana = room("Ana")
  expect(s:event("announce", { text = "  Fire drill at 10:30 " })).to_be(true)
  expect(s:event("announce", { text = "Lunch is ready", from = "Kitchen" })).to_be(true)
  local view = s:view(ana)
  expect(view.messages[1].from).to_be("Announcement")
  expect(view.messages[1].text).to_be("Fire drill at 10:30")
  expect(view.messages[2].from).to_be("Kitchen")
  expect(#s:events(ana, "message")).to_be(2)
  local ok, why = s:event("announce", { text = "" })
  expect(ok).to_be(false)
  expect(why).to_be("type something first: empty messages are not sent")
  ok, why = s:event("shout", { text = "hi" })
  expect(ok).to_be(false)
  expect(why).to_be("unknown event 'shout'; expected announce")
end)

test("unknown actions are refused", function()
  local s, ana = room("Ana")
  refused(s, ana, "dance", nil, "unknown action 'dance'; use send")
end)

test("every view has the text field", function()
  local s, ana = room("Ana")
  local input = { action = "send", placeholder = "Type a message…", max = 500 }
  expect(s:view(ana).input).to_equal(input)
  expect(s:view(s.host).input).to_equal(input)
  expect(s:view(ana).title).to_be("Class chat")
  local named = session("chat", { title = "Room 12" })
  expect(named:view(named.host).title).to_be("Room 12")
end)

test("a bot chats like anyone and the member list marks it", function()
  local s, ana = room("Ana")
  local bot, why = s:join("Helper", { role = "bot" })
  expect(why).to_be_nil()
  send(s, bot, "Hello, I answer questions.")
  expect(texts(s:view(ana))).to_equal({ "Hello, I answer questions." })
  local details = {}
  for _, m in ipairs(s:view(ana).players) do details[m.name] = m.detail or "" end
  expect(details).to_equal({ Host = "host", Ana = "", Helper = "bot" })
end)
