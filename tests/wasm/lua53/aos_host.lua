-- The aos host inside hbeam's wasm64 Lua module (run once by handle.c as the "main" chunk).
--
-- It plays the part aos.py + sandbox.lua play for lua@5.3a: gives aos.lua its runtime API
-- (pcall, set_clock...), `require` over the chunks embedded at build time (_HB_SOURCES:
-- json, aos), and `os.time`; then defines the global handle(msgJson, envJson) that
-- json-iface@1.0 calls.
--
-- Boot (first message): the environment's Process gives ao.id, Owner and the process tags;
-- if its tag On-Boot is "Data", the process's Data is loaded as a module (aos's own
-- convention), and the messages it sends go out before the first message's.
--
-- Messages: the aos message JSON ({Id, Owner, From, Tags = [{name, value}], Data...}) is
-- what aos.lua's handle takes (it Title-Cases keys and lifts Tags).  The outbox comes back
-- as json-iface Messages: Target and Data as fields, scalar values as Tags (text), table
-- values as nested JSON fields (so `cache = {balances = ...}` reaches patch@1.0 intact).
-- A handler error is the response's Error (state changes made before it stay, as in aos).

local sources = _HB_SOURCES
_HB_SOURCES = nil

local type, next, tostring, tonumber, pcall, error, load =
  type, next, tostring, tonumber, pcall, error, load
local table_sort = table.sort

local loaded = {}

function require(name)
  local v = loaded[name]
  if v ~= nil then
    return v
  end
  local src = sources[name]
  if src == nil then
    error("module '" .. tostring(name) .. "' not found", 2)
  end
  local f = assert(load(src, "=" .. name, "t"))
  v = f(name)
  if v == nil then
    v = true
  end
  loaded[name] = v
  return v
end

local json = require("json")

-- determinism: the clock is the message's timestamp (ms); random is seeded from the message
local clock = 0
os = {
  time = function(t)
    if t == nil then
      return clock
    end
    error("os.time(t) is not available in this module", 2)
  end,
  clock = function()
    return 0
  end,
}

local function seed_of(text)
  local h = 5381
  for i = 1, #text do
    h = (h * 33 + text:byte(i)) & 0x7fffffff
  end
  return h
end

local api = {
  pcall = pcall,
  raw_pcall = pcall,
  set_clock = function(ms, a, b)
    clock = math.tointeger(tonumber(ms)) or 0
    math.randomseed(seed_of(tostring(a) .. ":" .. tostring(b)))
  end,
  is_memory_error = function()
    return false
  end,
  memory_error = function()
    error("not enough memory", 0)
  end,
  traceback = function(m)
    return m
  end,
}

local aos = assert(load(sources.aos, "=aos.lua", "t"))(api)
sources = nil

-- outgoing: aos.lua's AO messages (lower-case keys) -> json-iface Messages ------------------

local function by_name(a, b)
  return a.name < b.name
end

local function wire(m)
  local out, tags = {}, {}
  for k, v in next, m do
    local tv = type(v)
    if k == "target" then
      out.Target = tostring(v)
    elseif k == "data" and tv == "string" then
      out.Data = v
    elseif tv == "table" then
      out[k] = v
    else
      tags[#tags + 1] = { name = k, value = tv == "string" and v or tostring(v) }
    end
  end
  table_sort(tags, by_name)
  out.Tags = tags
  return out
end

local function wire_all(list, into)
  if list ~= nil then
    for i = 1, #list do
      into[#into + 1] = wire(list[i])
    end
  end
  return into
end

-- boot -------------------------------------------------------------------------------------

local booted = false

local function tag_map(tags)
  local t = {}
  if type(tags) == "table" then
    for i = 1, #tags do
      local tag = tags[i]
      if type(tag) == "table" and type(tag.name) == "string" then
        t[tag.name:lower()] = tag.value
      end
    end
  end
  return t
end

local function authorities(value)
  local list = {}
  if type(value) == "string" then
    for part in value:gmatch("[^,]+") do
      part = part:gsub("^[%s\"']+", ""):gsub("[%s\"']+$", "")
      if part ~= "" then
        list[#list + 1] = part
      end
    end
  end
  return list
end

-- boot from the environment; returns the messages the boot module sent, or nil, error
local function boot(env_json)
  local env = json.decode(env_json)
  local p = type(env) == "table" and env.Process
  if type(p) ~= "table" then
    return nil, "the environment has no Process"
  end
  local tags = tag_map(p.Tags)
  aos.boot({ Tags = p.Tags }, p.Id, p.Owner, authorities(tags.authority))
  local sent = {}
  if tags["on-boot"] == "Data" and type(p.Data) == "string" and p.Data ~= "" then
    local ok, messages = pcall(aos.load, p.Data, "On-Boot")
    if not ok then
      return nil, "On-Boot: " .. tostring(messages)
    end
    wire_all(messages, sent)
  end
  booted = true
  return sent
end

-- handle -----------------------------------------------------------------------------------

local function answer(response)
  return json.encode({ ok = true, response = response })
end

function handle(msg_json, env_json)
  local sent = {}
  if not booted then
    local err
    sent, err = boot(env_json)
    if sent == nil then
      return json.encode({ ok = false, error = err })
    end
  end
  local raw = json.decode(msg_json)
  raw.PublicKey = nil
  local messages, spawns, output, err, assignments = aos.handle(raw)
  if err ~= nil and sent[1] == nil then
    return answer({ Error = err, Output = { data = output or err } })
  end
  local response = {
    Output = { data = output or "" },
    Messages = wire_all(messages, sent),
    Spawns = wire_all(spawns, {}),
  }
  if assignments ~= nil then
    response.Assignments = assignments
  end
  return answer(response)
end
