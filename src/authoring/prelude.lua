-- The test API that is written in Lua: `test` and `expect`. Loaded into each
-- test file's state before the file runs; `tests` is where `test` records.
local tests = ...

local function show(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "string" then
    return string.format("%q", v):gsub("\\\n", "\\n")
  elseif v == null then
    return "null"
  elseif t ~= "table" then
    return tostring(v)
  elseif depth > 2 then
    return "{…}"
  end
  local parts, n = {}, #v
  for i = 1, n do
    parts[#parts + 1] = show(v[i], depth + 1)
  end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or ("[" .. show(k) .. "]")
    parts[#parts + 1] = key .. " = " .. show(v[k], depth + 1)
  end
  local text = "{" .. table.concat(parts, ", ") .. "}"
  if #text > 300 then text = text:sub(1, 297) .. "…}" end
  return text
end

local function equal(a, b, depth)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or depth > 64 then return false end
  for k, v in pairs(a) do
    if not equal(v, b[k], depth + 1) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- Raised at the line of the test that called the matcher.
local function fail(message)
  error(message, 4)
end

function test(name, fn)
  if type(name) ~= "string" then
    error("test: argument 1 (name) must be a string, got " .. type(name), 2)
  end
  if type(fn) ~= "function" then
    error("test: argument 2 (the test) must be a function, got " .. type(fn), 2)
  end
  tests[#tests + 1] = { name = name, fn = fn }
end

function expect(actual)
  local e = {}
  -- `expect(x).to_be(y)`; `expect(x):to_be(y)` works too.
  local function matcher(check)
    return function(...)
      local first, second = ...
      if first == e then
        check(second) -- not a tail call: `fail` counts this frame
      else
        check(first)
      end
    end
  end
  e.to_be = matcher(function(expected)
    if actual ~= expected then fail("expected " .. show(expected) .. ", got " .. show(actual)) end
  end)
  e.to_equal = matcher(function(expected)
    if not equal(actual, expected, 0) then
      fail("expected " .. show(expected) .. ", got " .. show(actual))
    end
  end)
  e.to_contain = matcher(function(item)
    if type(actual) == "string" and type(item) == "string" then
      if not actual:find(item, 1, true) then
        fail("expected " .. show(actual) .. " to contain " .. show(item))
      end
      return
    end
    if type(actual) ~= "table" then
      fail("expected a string or a list to look in, got " .. show(actual))
    end
    for _, v in ipairs(actual) do
      if equal(v, item, 0) then return end
    end
    fail("expected " .. show(actual) .. " to contain " .. show(item))
  end)
  e.to_be_nil = matcher(function()
    if actual ~= nil then fail("expected nil, got " .. show(actual)) end
  end)
  e.to_be_truthy = matcher(function()
    if not actual then fail("expected a true value, got " .. show(actual)) end
  end)
  e.to_be_falsy = matcher(function()
    if actual then fail("expected false or nil, got " .. show(actual)) end
  end)
  e.to_be_at_least = matcher(function(n)
    if type(actual) ~= "number" or actual < n then
      fail("expected at least " .. show(n) .. ", got " .. show(actual))
    end
  end)
  e.to_be_at_most = matcher(function(n)
    if type(actual) ~= "number" or actual > n then
      fail("expected at most " .. show(n) .. ", got " .. show(actual))
    end
  end)
  return e
end

return show
