--[[
bench.lua: the game of the load tool (examples/loadgen.rs), not one for a class.

Players join without a word to anyone. The host asks numbered questions
(action `ask`, or the REST event `ask`); everyone gets the event `question`
{n} and each player may answer once (action `answer`). The host's view counts
the answers; a player's view only shows the question number, so while answers
come in, a view pass sends one patch: the host's.

The fanout scenarios do not use the rules at all: they push events with
POST /api/sessions/{id}/broadcast, which runs no Lua.
]]

local function ask(state, ctx)
  state.question = state.question + 1
  state.answers = 0
  state.answered = {}
  ctx.broadcast("question", { n = state.question })
end

return {
  title = "Load-test bench",

  init = function(ctx, params)
    return { question = 0, answers = 0, answered = {} }
  end,

  join = function(state, ctx, player) end,

  leave = function(state, ctx, player)
    state.answered[player.id] = nil
  end,

  action = function(state, ctx, player, name, data)
    if name == "ask" then
      if player.role ~= "host" then return false, "only the host asks" end
      ask(state, ctx)
      return
    end
    if name == "answer" then
      if state.question == 0 then return false, "no question yet" end
      if state.answered[player.id] then return false, "you already answered" end
      state.answered[player.id] = true
      state.answers = state.answers + 1
      return
    end
    return false, "unknown action " .. tostring(name)
  end,

  event = function(state, ctx, name, data)
    if name ~= "ask" then return false, "unknown event " .. tostring(name) end
    ask(state, ctx)
  end,

  view = function(state, player)
    if player.role == "host" then
      return { question = state.question, answers = state.answers }
    end
    return { question = state.question }
  end,
}
