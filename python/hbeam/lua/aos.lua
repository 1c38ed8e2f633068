-- hbeam aos: an aos-compatible process runtime, written for hbeam (not derived from aos).
--
-- It gives Lua process code the classic aos surface: `Handlers` (add, append, prepend,
-- before, after, remove, once, evaluate, utils), `Send`/`ao.send`, `Spawn`/`ao.spawn`,
-- `Assign`, `ao.id`, `ao.env`, `ao.authorities`, `ao.outbox`, `ao.isTrusted`, `Inbox`,
-- `Owner`, `print` collected as the message's Output, and `Eval` of Lua code by the
-- process owner. Messages arrive as AO messages (lower-case keys as the scheduler delivers
-- them) and are presented classic-style: Title-Case fields (msg.Action, msg.Quantity,
-- msg.From, msg.Id, msg.Data...), `msg.Tags` as a name -> value map, `msg.reply(t)`.
-- Outgoing messages are AO messages again: their fields and tags become lower-case
-- top-level keys, table values stay nested tables (so
-- `Send({device = "patch@1.0", cache = {balances = Balances}})` reaches patch@1.0).
--
-- Loaded by aos.py as a trusted runtime chunk: it receives the sandbox's runtime API and
-- returns the entry points aos.py calls (boot, load, handle, handle_flat, set_env, peek).
-- It needs the `json` module (json.lua) registered with the VM.

local api = ...

local type, next, tostring, tonumber, select, error, rawget, setmetatable =
  type, next, tostring, tonumber, select, error, rawget, setmetatable
local string_lower, string_upper, string_gsub, string_find, string_format, string_byte =
  string.lower, string.upper, string.gsub, string.find, string.format, string.byte
local table_concat, table_sort, table_remove, table_insert =
  table.concat, table.sort, table.remove, table.insert
local math_tointeger = math.tointeger
local load = load
local pcall = api.pcall
local raw_pcall = api.raw_pcall
local set_clock = api.set_clock
local json = require("json")

local MAX_INBOX = 10000
local CACHE_LIMIT = 4096

-- key spelling --------------------------------------------------------------------------

local TITLE, title_n = {}, 0
local LOWER, lower_n = {}, 0

local function title(k)
  local t = TITLE[k]
  if t then
    return t
  end
  t = string_gsub(k, "^%l", string_upper)
  t = string_gsub(t, "%-%l", string_upper)
  if title_n < CACHE_LIMIT then
    TITLE[k] = t
    title_n = title_n + 1
  end
  return t
end

local function lower(k)
  local l = LOWER[k]
  if l then
    return l
  end
  l = string_lower(k)
  if lower_n < CACHE_LIMIT then
    LOWER[k] = l
    lower_n = lower_n + 1
  end
  return l
end

-- message fields that are not tags
local ENVELOPE = {
  Id = true, From = true, Owner = true, Target = true, Anchor = true, Data = true,
  Timestamp = true, ["Block-Height"] = true, Signature = true, Commitments = true,
  Slot = true, Epoch = true, Nonce = true, ["Hash-Chain"] = true, Path = true,
  Tags = true, Module = true,
}

-- pretty printing (print and Eval results) ------------------------------------------------

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    return ta < tb
  end
  if ta == "number" or ta == "string" then
    return a < b
  end
  return tostring(a) < tostring(b)
end

local function stringify(v, depth, seen)
  local tv = type(v)
  if tv == "string" then
    return depth == 0 and v or string_format("%q", v)
  elseif tv ~= "table" then
    return tostring(v)
  end
  if seen[v] or depth > 20 then
    return "{...}"
  end
  seen[v] = true
  local keys, n = {}, 0
  for k in next, v do
    n = n + 1
    keys[n] = k
  end
  local parts = {}
  if n > 0 and #v == n then
    for i = 1, n do
      parts[i] = stringify(v[i], depth + 1, seen)
    end
  else
    table_sort(keys, key_order)
    for i = 1, n do
      local k = keys[i]
      local ks = (type(k) == "string" and string_find(k, "^[%a_][%w_]*$")) and k
        or ("[" .. stringify(k, depth + 1, seen) .. "]")
      parts[i] = ks .. " = " .. stringify(v[k], depth + 1, seen)
    end
  end
  seen[v] = nil
  if n == 0 then
    return "{}"
  end
  return "{ " .. table_concat(parts, ", ") .. " }"
end

local logs, logs_n = {}, 0

local function aos_print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    parts[i] = stringify((select(i, ...)), 0, {})
  end
  logs_n = logs_n + 1
  logs[logs_n] = table_concat(parts, "\t")
end

print = aos_print

-- ao ------------------------------------------------------------------------------------

ao = ao or {}
ao._version = "hbeam-aos/1"
ao.id = ao.id or ""
ao.env = ao.env or { Process = { Id = "", Owner = "", Tags = {} } }
ao.authorities = ao.authorities or {}
ao.reference = ao.reference or 0
ao.outbox = { Messages = {}, Spawns = {}, Assignments = {}, Output = {} }

local function lift_tags(m, tags)
  if rawget(tags, 1) ~= nil then
    for i = 1, #tags do
      local tag = tags[i]
      if type(tag) == "table" and type(tag.name) == "string" then
        m[lower(tag.name)] = tag.value
      end
    end
  else
    for k, v in next, tags do
      if type(k) == "string" then
        m[lower(k)] = v
      end
    end
  end
end

-- an AO message from an aos-style table: lower-case keys, Tags lifted
local function outgoing(t)
  local m = {}
  for k, v in next, t do
    if k == "Tags" and type(v) == "table" then
      lift_tags(m, v)
    else
      m[LOWER[k] or lower(k)] = v
    end
  end
  return m
end

function ao.send(msg)
  if type(msg) ~= "table" then
    error("Send expects a table (the message), got " .. type(msg), 2)
  end
  local m = outgoing(msg)
  if m.device ~= "patch@1.0" then
    local ref = ao.reference + 1
    ao.reference = ref
    if m.reference == nil then
      m.reference = string_format("%d", ref)
    end
  end
  local out = ao.outbox.Messages
  out[#out + 1] = m
  return m
end

function ao.spawn(module, msg)
  if msg == nil then
    msg = {}
  elseif type(msg) ~= "table" then
    error("Spawn expects (module, table), got " .. type(msg), 2)
  end
  local s = outgoing(msg)
  s.module = module
  local ref = ao.reference + 1
  ao.reference = ref
  s.reference = string_format("%d", ref)
  local spawns = ao.outbox.Spawns
  spawns[#spawns + 1] = s
  return s
end

function ao.assign(assignment)
  if type(assignment) ~= "table" then
    error("Assign expects a table {Processes = {...}, Message = id}", 2)
  end
  local a = ao.outbox.Assignments
  a[#a + 1] = { processes = assignment.Processes, message = assignment.Message }
end

function ao.isTrusted(msg)
  local from, owner = msg.From, msg.Owner
  if from ~= nil and from == owner then
    return true
  end
  local auth = ao.authorities
  for i = 1, #auth do
    local a = auth[i]
    if from == a or owner == a then
      return true
    end
  end
  return false
end

function ao.clearOutbox()
  ao.outbox = { Messages = {}, Spawns = {}, Assignments = {}, Output = {} }
end

Send = function(msg)
  return ao.send(msg)
end

Spawn = function(module, msg)
  return ao.spawn(module, msg)
end

Assign = function(assignment)
  return ao.assign(assignment)
end

Inbox = Inbox or {}
Colors = Colors or { red = "", green = "", blue = "", gray = "", reset = "" }
Prompt = Prompt or function()
  return "aos> "
end

-- messages ------------------------------------------------------------------------------

local function reply(msg, r)
  if type(r) == "string" then
    r = { Data = r }
  elseif type(r) ~= "table" then
    error("msg.reply expects a table or a string, got " .. type(r), 2)
  end
  r.Target = msg["Reply-To"] or msg.From
  local ref = msg["X-Reference"] or msg.Reference
  if ref ~= nil then
    r["X-Reference"] = ref
  end
  if msg["X-Origin"] ~= nil then
    r["X-Origin"] = msg["X-Origin"]
  end
  return ao.send(r)
end

local function finish_msg(msg, tags)
  msg.Tags = tags
  if msg.From == nil then
    msg.From = tags["From-Process"] or msg.Owner
  end
  if msg.Owner == nil then
    msg.Owner = msg.From
  end
  if tags["Content-Type"] == "application/json" and type(msg.Data) == "string" then
    local ok, decoded = pcall(json.decode, msg.Data)
    if ok then
      msg.Data = decoded
    end
  end
  msg.reply = function(r)
    return reply(msg, r)
  end
  return msg
end

-- the message straight from a flat wire map of scalars (keys block ks+1.., values vs+1..)
local function normalize_flat(a, ks, vs, n)
  local msg, tags = {}, {}
  for o = 1, n do
    local k = a[ks + o]
    local tk = TITLE[k] or title(k)
    local v = a[vs + o]
    msg[tk] = v
    if not ENVELOPE[tk] then
      tags[tk] = v
    end
  end
  return finish_msg(msg, tags)
end

local function normalize(raw)
  local msg, tags = {}, {}
  for k, v in next, raw do
    local tk = TITLE[k] or title(k)
    if tk == "Tags" then
      if type(v) == "table" then
        local lifted = {}
        lift_tags(lifted, v)
        for lk, lv in next, lifted do
          local ltk = title(lk)
          tags[ltk] = lv
          if msg[ltk] == nil then
            msg[ltk] = lv
          end
        end
      end
    else
      msg[tk] = v
      if not ENVELOPE[tk] then
        tags[tk] = v
      end
    end
  end
  return finish_msg(msg, tags)
end

-- Handlers ------------------------------------------------------------------------------

Handlers = Handlers or { list = {} }
Handlers._version = "hbeam-1"
Handlers.list = Handlers.list or {}
local utils = {}
Handlers.utils = utils

function utils.matchesPattern(pattern, value, msg)
  if pattern == "_" then
    return value ~= nil
  end
  local tp = type(pattern)
  if tp == "function" then
    return pattern(value, msg) and true or false
  elseif tp == "string" then
    if type(value) ~= "string" then
      return value ~= nil and tostring(value) == pattern
    end
    if string_find(pattern, "[%^%$%(%)%%%.%[%]%*%+%-%?]") then
      return string_find(value, pattern) ~= nil
    end
    return value == pattern
  elseif tp == "table" then
    for i = 1, #pattern do
      if utils.matchesPattern(pattern[i], value, msg) then
        return true
      end
    end
    return false
  end
  return value == pattern
end

function utils.matchesSpec(msg, spec)
  local ts = type(spec)
  if ts == "function" then
    return spec(msg)
  elseif ts == "table" then
    for key, pattern in next, spec do
      local value = msg[key]
      if value == nil then
        value = msg.Tags[key]
      end
      if value == nil or not utils.matchesPattern(pattern, value, msg) then
        return false
      end
    end
    return true
  elseif ts == "string" then
    return msg.Action == spec
  end
  return false
end

-- matchers made by hasMatchingTag: fn -> {name, value}, so evaluate can compare the tag
-- directly instead of calling the matcher (the common case: one per handler)
local TAG_MATCHERS = setmetatable({}, { __mode = "k" })

function utils.hasMatchingTag(name, value)
  local fn = function(msg)
    return msg.Tags[name] == value
  end
  TAG_MATCHERS[fn] = { name, value }
  return fn
end

function utils.hasMatchingTagOf(name, values)
  return function(msg)
    local v = msg.Tags[name]
    for i = 1, #values do
      if v == values[i] then
        return true
      end
    end
    return false
  end
end

function utils.hasMatchingData(value)
  return function(msg)
    return msg.Data == value
  end
end

function utils.reply(input)
  return function(msg)
    if type(input) == "table" then
      local r = {}
      for k, v in next, input do
        r[k] = v
      end
      return msg.reply(r)
    end
    return msg.reply({ Data = input })
  end
end

function utils.continue(fn)
  return function(msg)
    local result = fn(msg)
    if result == -1 or result == true or result == "break" then
      return 1
    end
    return result
  end
end

local function find(name)
  local list = Handlers.list
  for i = 1, #list do
    if list[i].name == name then
      return i
    end
  end
  return nil
end

local function entry(name, pattern, handle, maxRuns)
  if type(name) ~= "string" then
    error("Handlers: the handler name must be a string, got " .. type(name), 3)
  end
  if handle == nil and type(pattern) == "function" then
    -- Handlers.add(name, handle): the name is the Action to match
    pattern, handle = name, pattern
  end
  local th = type(handle)
  local mt = th == "table" and getmetatable(handle)
  if th ~= "function" and not (mt and mt.__call) then
    error("Handlers: the handle of '" .. name .. "' must be a function, got " .. th, 3)
  end
  if maxRuns ~= nil and maxRuns ~= "inf" and math_tointeger(maxRuns) == nil then
    error("Handlers: maxRuns of '" .. name .. "' must be an integer", 3)
  end
  local tag = TAG_MATCHERS[pattern]
  return {
    name = name,
    pattern = pattern,
    handle = handle,
    maxRuns = maxRuns ~= "inf" and maxRuns or nil,
    tag_name = tag and tag[1],
    tag_value = tag and tag[2],
  }
end

function Handlers.add(name, pattern, handle, maxRuns)
  local e = entry(name, pattern, handle, maxRuns)
  local list = Handlers.list
  local i = find(name)
  if i then
    list[i] = e
  else
    list[#list + 1] = e
  end
  return #list
end

Handlers.append = Handlers.add

function Handlers.prepend(name, pattern, handle, maxRuns)
  local e = entry(name, pattern, handle, maxRuns)
  local i = find(name)
  if i then
    Handlers.list[i] = e
  else
    table_insert(Handlers.list, 1, e)
  end
  return #Handlers.list
end

local function relative(target, offset)
  return {
    add = function(name, pattern, handle, maxRuns)
      local e = entry(name, pattern, handle, maxRuns)
      local old = find(name)
      if old then
        table_remove(Handlers.list, old)
      end
      local at = find(target)
      if at == nil then
        error("Handlers: no handler named '" .. tostring(target) .. "'", 2)
      end
      table_insert(Handlers.list, at + offset, e)
      return #Handlers.list
    end,
  }
end

function Handlers.before(name)
  return relative(name, 0)
end

function Handlers.after(name)
  return relative(name, 1)
end

function Handlers.remove(name)
  local i = find(name)
  if i then
    table_remove(Handlers.list, i)
  end
  return #Handlers.list
end

local once_n = 0

function Handlers.once(name, pattern, handle)
  if type(name) ~= "string" then
    name, pattern, handle = nil, name, pattern
  end
  if name == nil then
    once_n = once_n + 1
    name = "_once_" .. once_n
  end
  return Handlers.prepend(name, pattern, handle, 1)
end

local function match_value(m, name)
  local tm = type(m)
  if tm == "number" then
    return m
  elseif m == true then
    return -1
  elseif m == false or m == nil then
    return 0
  elseif tm == "string" then
    if m == "continue" then
      return 1
    elseif m == "break" then
      return -1
    end
    return 0
  end
  error("Handlers: the pattern of '" .. tostring(name) .. "' returned a " .. tm
    .. " (it must return a boolean, a number or a string)", 0)
end

local function ran(o)
  local max = o.maxRuns
  if max ~= nil then
    max = max - 1
    o.maxRuns = max
    if max <= 0 then
      local list = Handlers.list
      for i = 1, #list do
        if list[i] == o then
          table_remove(list, i)
          break
        end
      end
    end
  end
end

local matchesSpec = utils.matchesSpec

function Handlers.evaluate(msg, env)
  local handled = false
  local list = Handlers.list
  local tags = msg.Tags
  local i = 1
  while true do
    local o = list[i]
    if o == nil then
      break
    end
    local tag_name = o.tag_name
    if tag_name ~= nil and tags[tag_name] ~= o.tag_value then
      i = i + 1 -- the common case: a tag handler for another Action
    elseif o.name ~= "_default" then
      local match
      if tag_name ~= nil then
        match = true
      else
        local pattern = o.pattern
        if type(pattern) == "function" then
          match = pattern(msg)
        else
          match = matchesSpec(msg, pattern)
        end
      end
      if match == true then
        match = -1
      elseif not match then
        match = 0
      elseif type(match) ~= "number" then
        match = match_value(match, o.name)
      end
      if match ~= 0 then
        o.handle(msg, env)
        ran(o)
        if match < 0 then
          return true
        end
        -- a removed handler shifted the list: stay at the same index
        if list[i] == o then
          i = i + 1
        end
      else
        i = i + 1
      end
    else
      i = i + 1
    end
  end
  local d = find("_default")
  if d then
    local o = list[d]
    o.handle(msg, env)
    handled = true
  end
  return handled
end

-- the built-in handlers: owner-only Eval first, the Inbox default last

local function eval_handler(msg)
  local code = msg.Data
  if type(code) ~= "string" then
    error("Eval: Data must be Lua code, got " .. type(code), 0)
  end
  local f = load("return " .. code, "=aos", "t")
  if not f then
    local err
    f, err = load(code, "=aos", "t")
    if not f then
      error(err, 0)
    end
  end
  local results = table.pack(f())
  if results.n > 0 and results[1] ~= nil then
    aos_print(results[1])
  end
end

-- Inbox entries keep msg.reply without holding a function value (Inbox stays plain data)
local INBOX_MT = {
  __index = function(t, k)
    if k == "reply" then
      return function(r)
        return reply(t, r)
      end
    end
  end,
}

local function default_handler(msg)
  if #Inbox >= MAX_INBOX then
    table_remove(Inbox, 1)
  end
  local kept = {}
  for k, v in next, msg do
    if k ~= "reply" then
      kept[k] = v
    end
  end
  Inbox[#Inbox + 1] = setmetatable(kept, INBOX_MT)
  local action = msg.Action
  aos_print("New Message From " .. tostring(msg.From)
    .. (action ~= nil and (": Action = " .. tostring(action)) or ""))
end

if not find("_eval") then
  Handlers.prepend("_eval", function(msg)
    return msg.Action == "Eval" and Owner ~= nil and msg.From == Owner
  end, eval_handler)
end
if not find("_default") then
  Handlers.add("_default", function()
    return -1
  end, default_handler)
end

-- entry points --------------------------------------------------------------------------

local function begin()
  local outbox = ao.outbox
  if outbox.Messages[1] ~= nil then
    outbox.Messages = {}
  end
  if outbox.Spawns[1] ~= nil then
    outbox.Spawns = {}
  end
  if outbox.Assignments[1] ~= nil then
    outbox.Assignments = {}
  end
  if logs_n > 0 then
    logs, logs_n = {}, 0
  end
end

local function error_text(err)
  if type(err) == "string" then
    return err
  elseif type(err) == "table" then
    return "(error object is a table value)"
  end
  return tostring(err)
end

-- the call's results: messages, spawns, output text, error text, assignments (nil = none)
local function result(err)
  local outbox = ao.outbox
  local messages, spawns, assignments, output
  if err ~= nil then
    err = error_text(err)
    aos_print(err)
  else
    messages = outbox.Messages
    if messages[1] == nil then
      messages = nil
    end
    spawns = outbox.Spawns
    if spawns[1] == nil then
      spawns = nil
    end
    assignments = outbox.Assignments
    if assignments[1] == nil then
      assignments = nil
    end
  end
  if logs_n > 0 then
    output = table_concat(logs, "\n", 1, logs_n)
  end
  -- trailing nils are left out (fewer values to convert in the common case)
  if assignments ~= nil then
    return messages, spawns, output, err, assignments
  elseif err ~= nil then
    return messages, spawns, output, err
  elseif output ~= nil then
    return messages, spawns, output
  elseif spawns ~= nil then
    return messages, spawns
  end
  return messages
end

local entries = {}

-- Set ao.id, ao.env.Process, Owner and ao.authorities from the process definition.
function entries.boot(def, id, owner, authorities)
  local tags = {}
  for k, v in next, def do
    local tk = title(k)
    if tk == "Tags" and type(v) == "table" then
      local lifted = {}
      lift_tags(lifted, v)
      for lk, lv in next, lifted do
        tags[title(lk)] = lv
      end
    elseif not ENVELOPE[tk] then
      tags[tk] = v
    end
  end
  ao.id = id
  Owner = owner
  ao.authorities = authorities or {}
  ao.env = { Process = { Id = id, Owner = owner, Tags = tags } }
  if type(tags.Name) == "string" then
    Name = tags.Name
  end
end

-- Run module source in the process (as aos's `.load` does); the messages it sends.
function entries.load(source, name)
  begin()
  local f, err = load(source, "=" .. name, "t")
  if not f then
    error(err, 0)
  end
  f()
  return result(nil)
end

function entries.set_env(env)
  for k, v in next, env do
    ao.env[title(k)] = v
  end
end

local FMAP = 1
local decode_one = api.decode_one

local function evaluate(msg)
  local ts = msg.Timestamp
  set_clock(ts, msg.Id, ts)
  if not ao.isTrusted(msg) then
    aos_print("Message is not trusted.")
    return result(nil)
  end
  -- a raw pcall is enough: the sandbox reports limit errors even if they were caught
  local ok, err = raw_pcall(Handlers.evaluate, msg, ao.env)
  if not ok then
    if api.is_memory_error(err) then
      api.memory_error() -- a memory error is the call's, not the handler's
    end
    return result(err)
  end
  return result(nil)
end

function entries.handle(raw, env)
  begin()
  if env ~= nil then
    entries.set_env(env)
  end
  return evaluate(normalize(raw))
end

-- handle() reading the flat wire values itself: (message[, env]) as encoded by convert.py
function entries.handle_flat(nflat, ...)
  begin()
  local a = { ... }
  local msg, i
  local code = a[2]
  if a[1] == nil and code & 7 == FMAP then
    local n = code >> 3
    msg = normalize_flat(a, 2, 2 + n, n)
    i = 3 + 2 * n
  else
    local raw
    raw, i = decode_one(a, 1)
    msg = normalize(raw)
  end
  if i <= nflat then
    entries.set_env((decode_one(a, i)))
  end
  return evaluate(msg)
end

function entries.peek(name)
  return rawget(_G, name)
end

return entries
