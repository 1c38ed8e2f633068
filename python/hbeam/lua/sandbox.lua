-- hbeam Lua sandbox: the trusted half of every LuaVM (vm.py is the other half).
--
-- Runs once per VM, before any untrusted code, while the full standard library is still in
-- place. It keeps what the host needs (debug hooks, raw pcall, the real load, the codec) in
-- locals of this chunk, strips the global environment down to a deterministic subset with no
-- access to files, processes, bytecode or the debug library, and returns the `host` table of
-- entry points vm.py calls. Nothing reachable from the globals leads back to these locals.
--
-- Limits: every entry point that runs untrusted code installs a count hook on the running
-- thread (and on every coroutine created meanwhile) that charges STEP instructions to a
-- per-call budget and raises once it is spent; pcall/xpcall/coroutine.resume re-raise
-- instruction-limit and memory errors, so user code cannot swallow them.

local STEP, MAX_DEPTH, CHUNK, codec = ...

local G = _G
local type, next, select, tostring, error, rawget, rawset, rawlen, setmetatable, getmetatable =
    type, next, select, tostring, error, rawget, rawset, rawlen, setmetatable, getmetatable
local raw_pcall, raw_xpcall, raw_load = pcall, xpcall, load
local sethook, getinfo, traceback = debug.sethook, debug.getinfo, debug.traceback
local co_create, co_resume = coroutine.create, coroutine.resume
local unpack, pack, concat, table_move = table.unpack, table.pack, table.concat, table.move
local string_len, string_sub, string_byte, string_rep, string_find =
    string.len, string.sub, string.byte, string.rep, string.find
local math_tointeger, math_type, math_floor = math.tointeger, math.type, math.floor
local gc = collectgarbage
local os_date, os_difftime = os.date, os.difftime
local decode, decode_one, encode_packed, encode_append, codec_reset =
  codec.decode, codec.decode_one, codec.encode_packed, codec.encode_append, codec.reset

local MAXINT = math.maxinteger
local MEMERR = "not enough memory" -- the message Lua gives allocation failures (LUA_ERRMEM)
local LIMIT_MSG = "instruction limit exceeded"

-- limits ---------------------------------------------------------------------------------

local budget = 50000000
local memory_limit = 256 * 1024 * 1024
local remaining, exhausted, memfail = 0, false, false
local TRUSTED = {} -- functions of this chunk the hook never interrupts (they clear it)

local function hook()
  remaining = remaining - STEP
  if remaining < 0 then
    local info = getinfo(2, "f")
    if info and TRUSTED[info.func] then
      return
    end
    exhausted = true
    error(LIMIT_MSG, 0)
  end
end

-- Lua reports a failed allocation as MEMERR; lauxlib's string buffers (string.rep,
-- table.concat, gsub...) as a plain error ending in this text
local BUFERR = "not enough memory for buffer allocation"

local function is_memory_error(e)
  if e == MEMERR then
    return true
  end
  if type(e) ~= "string" then
    return false
  end
  local at = string_find(e, BUFERR, 1, true)
  return at ~= nil and at + #BUFERR - 1 == #e
end

local function sticky(ok, ...)
  if not ok then
    if exhausted then
      error(LIMIT_MSG, 0)
    end
    if is_memory_error((...)) then
      memfail = true
      error(MEMERR, 0)
    end
  end
  return ok, ...
end

local function memory_error()
  memfail = true
  error(MEMERR, 0)
end

-- determinism: clock and random numbers come from the host (the message being handled) ----

local clock_raw = 0 -- the message timestamp as given (converted when asked for)

local function clock_ms()
  if clock_raw == nil then
    return 0
  end
  return math_tointeger(tonumber(clock_raw)) or 0
end

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function field(t, k, default)
  local v = rawget(t, k)
  if v == nil then
    if default == nil then
      error("field '" .. k .. "' missing in date table", 3)
    end
    return default
  end
  local i = math_tointeger(v)
  if i == nil then
    error("field '" .. k .. "' is not an integer", 3)
  end
  return i
end

local sandbox_os = {}

-- os.time() is the timestamp of the message being handled, in milliseconds (as aos does);
-- os.time(t) converts a date table as UTC, in seconds (standard Lua, minus the local zone).
function sandbox_os.time(t)
  if t == nil then
    return clock_ms()
  end
  if type(t) ~= "table" then
    error("bad argument #1 to 'time' (table expected, got " .. type(t) .. ")", 2)
  end
  local year, month = field(t, "year"), field(t, "month")
  local day = field(t, "day")
  local hour, min, sec = field(t, "hour", 12), field(t, "min", 0), field(t, "sec", 0)
  year = year + (month - 1) // 12
  month = (month - 1) % 12 + 1
  return days_from_civil(year, month, 1) * 86400 + (day - 1) * 86400 + hour * 3600 + min * 60 + sec
end

function sandbox_os.clock()
  return 0.0
end

-- os.date always formats in UTC; the default time is the current message's.
function sandbox_os.date(format, t)
  if format == nil then
    format = "%c"
  elseif type(format) ~= "string" then
    error("bad argument #1 to 'date' (string expected, got " .. type(format) .. ")", 2)
  end
  if string_sub(format, 1, 1) ~= "!" then
    format = "!" .. format
  end
  if t == nil then
    t = clock_ms() // 1000
  end
  return os_date(format, t)
end

sandbox_os.difftime = os_difftime

local function unavailable(name)
  return function()
    error(name .. " is not available in the hbeam sandbox", 2)
  end
end

for _, name in next, { "execute", "exit", "getenv", "remove", "rename", "tmpname", "setlocale" } do
  sandbox_os[name] = unavailable("os." .. name)
end

local function blocked_library(libname)
  return setmetatable({}, {
    __index = function(_, k)
      error(libname .. "." .. tostring(k) .. " is not available in the hbeam sandbox", 2)
    end,
    __newindex = function()
      error(libname .. " is not available in the hbeam sandbox", 2)
    end,
    __metatable = false,
  })
end

-- xorshift64* over Lua 5.3 integers (they wrap, and >> is a logical shift)
local rng_state, rng_pending = 88172645463325252, nil

local function fnv1a(s)
  local h = 0xcbf29ce484222325
  local n = string_len(s)
  if n > 256 then
    n = 256
  end
  for i = 1, n do
    h = (h ~ string_byte(s, i)) * 0x100000001b3
  end
  if h == 0 then
    h = 1
  end
  return h
end

local seed_a, seed_b -- the message a lazy seed comes from (rng_pending == true)

local function rng_next()
  if rng_pending ~= nil then
    if rng_pending == true then
      rng_pending = tostring(seed_a) .. ":" .. tostring(seed_b)
    end
    rng_state = fnv1a(rng_pending)
    rng_pending = nil
  end
  local x = rng_state
  x = x ~ (x >> 12)
  x = x ~ (x << 25)
  x = x ~ (x >> 27)
  rng_state = x
  return x * 0x2545F4914F6CDD1D
end

local function checkint(v, argn)
  local i = math_tointeger(v)
  if i == nil then
    error("bad argument #" .. argn .. " to 'random' (number has no integer representation)", 3)
  end
  return i
end

local function random(m, n)
  local r = rng_next()
  if m == nil then
    return (r >> 11) * (1.0 / 9007199254740992.0)
  end
  local low, up
  if n == nil then
    low, up = 1, checkint(m, 1)
  else
    low, up = checkint(m, 1), checkint(n, 2)
  end
  if low > up then
    error("bad argument #" .. (n == nil and 1 or 2) .. " to 'random' (interval is empty)", 2)
  end
  local range = up - low
  if range < 0 or range == MAXINT then
    error("bad argument to 'random' (interval too large)", 2)
  end
  return low + (r >> 1) % (range + 1)
end

local function randomseed(x)
  rng_pending = nil
  rng_state = fnv1a(tostring(x))
end

-- the sandboxed library ---------------------------------------------------------------------

local MODULES = {} -- name -> source, registered by the host
local LOADED = {
  string = string,
  table = table,
  math = math,
  utf8 = utf8,
  coroutine = coroutine,
  _G = G,
}
local FORBIDDEN = { os = true, io = true, debug = true, package = true, ffi = true, python = true, jit = true }

local function require(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'require' (string expected, got " .. type(name) .. ")", 2)
  end
  local m = LOADED[name]
  if m ~= nil then
    return m
  end
  if FORBIDDEN[name] then
    error("module '" .. name .. "' is not available in the hbeam sandbox", 2)
  end
  local source = MODULES[name]
  if source == nil then
    error("module '" .. name .. "' not found (only modules registered with the VM can be required)", 2)
  end
  local f, err = raw_load(source, "=" .. name, "t", G)
  if not f then
    error(err, 0)
  end
  local result = f(name)
  if result == nil then
    result = LOADED[name] or true
  end
  LOADED[name] = result
  return result
end

local function safe_load(chunk, chunkname, mode, ...)
  if mode == "b" then
    return nil, "binary chunks are not allowed in the hbeam sandbox"
  end
  if select("#", ...) > 0 then
    return raw_load(chunk, chunkname, "t", (...))
  end
  return raw_load(chunk, chunkname, "t")
end

local function safe_rep(s, n, sep)
  local ts = type(s)
  if type(n) == "number" and n >= 1 and (ts == "string" or ts == "number") then
    local lsep = 0
    if sep ~= nil then
      local tsep = type(sep)
      if tsep == "string" or tsep == "number" then
        lsep = string_len(sep)
      end
    end
    local total = n * string_len(s) + (n - 1) * lsep
    if total == 0 then
      return "" -- string.rep("", 1e15) would spin in C, out of the hook's reach
    end
    if total > memory_limit then
      memory_error()
    end
  end
  return string_rep(s, n, sep)
end

local GC_OPTIONS = { collect = true, count = true, step = true, isrunning = true }

local function safe_collectgarbage(opt, arg)
  if opt == nil then
    opt = "collect"
  end
  if not GC_OPTIONS[opt] then
    error("collectgarbage('" .. tostring(opt) .. "') is not allowed in the hbeam sandbox", 2)
  end
  return gc(opt, arg)
end

local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed in the hbeam sandbox", 2)
  end
  return setmetatable(t, mt)
end

local function hooked(co)
  sethook(co, hook, "", STEP)
  return co
end

local function create(f)
  return hooked(co_create(f))
end

local function wrap_result(ok, ...)
  if ok then
    return ...
  end
  if exhausted then
    error(LIMIT_MSG, 0)
  end
  local e = ...
  if is_memory_error(e) then
    memory_error()
  end
  error(e, 0)
end

local function wrap(f)
  local co = create(f)
  return function(...)
    return wrap_result(co_resume(co, ...))
  end
end

local output, output_n = {}, 0

local function print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    parts[i] = tostring((select(i, ...)))
  end
  output_n = output_n + 1
  output[output_n] = concat(parts, "\t")
end

G.print = print
G.require = require
G.load = safe_load
G.loadstring = function(s, chunkname)
  return safe_load(s, chunkname, "t")
end
G.dofile = unavailable("dofile")
G.loadfile = unavailable("loadfile")
G.collectgarbage = safe_collectgarbage
G.setmetatable = safe_setmetatable
G.pcall = function(f, ...)
  return sticky(raw_pcall(f, ...))
end
G.xpcall = function(f, handler, ...)
  return sticky(raw_xpcall(f, handler, ...))
end
G.os = sandbox_os
G.io = blocked_library("io")
G.debug = nil
G.package = nil
G.python = nil
G.unpack = G.unpack or unpack
string.dump = nil
string.rep = safe_rep
math.random = random
math.randomseed = randomseed
coroutine.create = create
coroutine.wrap = wrap
coroutine.resume = function(co, ...)
  return sticky(co_resume(co, ...))
end

-- entry points -------------------------------------------------------------------------------

local raw_mode = false -- results: false = encode, true = raw Lua values, "discard" = none
local last_values -- values of the last call, kept for the UTF-8-safe re-encode
local last_buf, last_len = nil, 0

local utf8_len, transcode = utf8.len, codec.transcode

local function text(s)
  if utf8_len(s) then
    return s
  end
  return transcode(s)
end

local function error_parts(err)
  if type(err) == "string" then
    err = text(err)
    local at = string_find(err, "\nstack traceback:\n", 1, true)
    if at then
      return string_sub(err, 1, at - 1), string_sub(err, at + 18)
    end
    return err, ""
  elseif math_type(err) ~= nil or type(err) == "boolean" then
    return tostring(err), ""
  elseif err == nil then
    return "nil", ""
  end
  -- never call __tostring here: it would run user code outside the hook
  return "(error object is a " .. type(err) .. " value)", ""
end

local function reply(b, len)
  last_buf, last_len = b, len
  if len <= CHUNK then
    return true, len, unpack(b, 1, len)
  end
  return true, len, unpack(b, 1, CHUNK)
end

local function encoded(check_utf8)
  local ok, b, len = raw_pcall(encode_packed, check_utf8, last_values)
  if ok then
    return reply(b, len)
  end
  last_values = nil
  if is_memory_error(b) then
    return false, "memory", MEMERR, ""
  end
  return false, "convert", error_parts(b)
end

-- kind, message, traceback of a call that failed or hit a limit (`ok`, `err`: what the
-- protected call returned)
local function failure(ok, err)
  if exhausted then
    return "instructions", LIMIT_MSG, ""
  end
  if ok then -- a caught memory error
    err = MEMERR
  end
  if memfail or err == MEMERR then
    return "memory", MEMERR, ""
  end
  local message, trace = error_parts(err)
  if is_memory_error(message) then -- e.g. re-raised through the traceback handler
    return "memory", MEMERR, ""
  end
  return "error", message, trace
end

local function finish(ok, ...)
  sethook()
  if ok and not exhausted and not memfail then
    if raw_mode then
      if raw_mode == "discard" then
        return true, 0
      end
      return true, -1, ...
    end
    last_values = pack(...)
    return encoded(false)
  end
  last_values = nil
  return false, failure(ok, (...))
end

local EMPTY = {}

local staged -- flat arguments too long for one call arrive in pieces (host.stage)

local function start(f, nargs, nflat, ...)
  exhausted, memfail = false, false
  local args = EMPTY
  if nflat < 0 then
    local a = staged
    staged = nil
    args = decode(a, nargs)
  elseif nargs > 0 then
    args = decode({ ... }, nargs)
  end
  remaining = budget
  sethook(hook, "", STEP)
  return finish(raw_xpcall(f, traceback, unpack(args, 1, nargs)))
end

TRUSTED[start] = true
TRUSTED[finish] = true

local host = {}

-- Call function value `f` with `nargs` values decoded from the flat sequence `...`.
function host.run(f, nargs, nflat, ...)
  raw_mode = false
  return start(f, nargs, nflat, ...)
end

-- Call `f(nflat, ...)` with the flat wire values undecoded (a trusted runtime entry that
-- reads them directly, e.g. aos's handle, saves building the intermediate tables).
function host.run_flat(f, nflat, ...)
  raw_mode = false
  exhausted, memfail = false, false
  remaining = budget
  sethook(hook, "", STEP)
  return finish(raw_xpcall(f, traceback, nflat, ...))
end
TRUSTED[host.run_flat] = true

local function packed(f, ...)
  return pack(f(...))
end

-- Call the trusted entry `f` once per message of a batch, each call with the whole
-- instruction budget, as run_flat would call it: the flat values are n_1..n_k, then the k
-- messages' wire values back to back, and call i is f(n_i, <its n_i values>). The result
-- is one encoded sequence holding, per call, the number of its results followed by them
-- (or -1 followed by the convert error's text when they cannot be converted). A call that
-- fails or hits a limit ends the batch: "stop", kind, message, traceback follow instead of
-- its results, and the calls after it are not made.
function host.run_batch(f, k, nflat, ...)
  raw_mode = false
  last_values = nil
  local a = { ... }
  local off, total, b = k + 1, 0, nil
  local stop_kind, stop_message, stop_trace
  for i = 1, k do
    local n = a[i]
    exhausted, memfail = false, false
    remaining = budget
    sethook(hook, "", STEP)
    local ok, r = raw_xpcall(packed, traceback, f, n, unpack(a, off, off + n - 1))
    sethook()
    off = off + n
    if not ok or exhausted or memfail then
      stop_kind, stop_message, stop_trace = failure(ok, r)
      break
    end
    local t = { n = r.n + 1, r.n }
    table_move(r, 1, r.n, 2, t)
    local encoded_ok, buffer, len = raw_pcall(encode_append, total, t)
    if encoded_ok then
      b, total = buffer, len
    elseif is_memory_error(buffer) then
      stop_kind, stop_message, stop_trace = "memory", MEMERR, ""
      break
    else
      local message = error_parts(buffer)
      b, total = encode_append(total, pack(-1, message))
    end
  end
  if stop_kind ~= nil then
    b, total = encode_append(total, pack("stop", stop_kind, stop_message, stop_trace))
  end
  if b == nil then
    return true, 0
  end
  return reply(b, total)
end
TRUSTED[host.run_batch] = true
TRUSTED[packed] = true

-- Same, but the results are returned as raw Lua values (used for trusted runtime entries).
function host.run_raw(f, nargs, nflat, ...)
  raw_mode = true
  return start(f, nargs, nflat, ...)
end

-- Call the global function `name`.
function host.call(name, nargs, nflat, ...)
  raw_mode = false
  local f = rawget(G, name)
  if type(f) ~= "function" then
    return false, "undefined", text("Lua function '" .. tostring(name) .. "' is not defined"), ""
  end
  return start(f, nargs, nflat, ...)
end

-- Load text chunk `source` named `name` into the global environment and run it. `mode`:
-- "encode" (results converted), "discard" (results dropped), "trusted" (the chunk also
-- receives the runtime API as its first argument and its results come back raw: how
-- aos.lua hands its entry points to aos.py).
function host.exec(source, name, mode, nargs, nflat, ...)
  local f, err = raw_load(source, "=" .. name, "t", G)
  if not f then
    return false, "syntax", text(err), ""
  end
  if mode == "discard" then
    raw_mode = "discard"
    return start(f, nargs, nflat, ...)
  end
  if mode == "trusted" then
    raw_mode = true
    local api = host.runtime
    return start(function(...)
      return f(api, ...)
    end, nargs, nflat, ...)
  end
  raw_mode = false
  return start(f, nargs, nflat, ...)
end

-- Append `count` flat argument values at positions offset+1.. of the staging buffer; a call
-- with nflat = -1 then takes its arguments from there.
function host.stage(offset, count, ...)
  if offset == 0 then
    staged = {}
  end
  table_move({ ... }, 1, count, offset + 1, staged)
end

-- Values [i, j] of the last encoded result (results longer than CHUNK come in pieces).
function host.fetch(i, j)
  return unpack(last_buf, i, j)
end

-- Re-encode the last result with strings that are not UTF-8 marked as bytes.
function host.refetch_safe()
  if last_values == nil then
    return false, "convert", "no result to re-encode", ""
  end
  return encoded(true)
end

-- Forget the last result and shrink the codec buffer (after a large result).
function host.release()
  last_values, last_buf, last_len = nil, nil, 0
  codec_reset()
end

function host.configure(instructions, memory)
  budget = instructions
  memory_limit = memory
end

function host.register_module(name, source)
  MODULES[name] = source
  LOADED[name] = nil
end

function host.take_output()
  local text = concat(output, "\n", 1, output_n)
  output, output_n = {}, 0
  return text
end

function host.set_clock(ms, seed)
  clock_raw = ms
  rng_pending = seed
end

-- What trusted runtime chunks (aos.lua) get besides the globals.
host.runtime = {
  -- set os.time() (milliseconds) and seed math.random lazily from tostring(a)..":"..tostring(b)
  set_clock = function(ms, a, b)
    clock_raw = ms
    seed_a, seed_b, rng_pending = a, b, true
  end,
  -- plain pcall: catches everything; the sandbox still reports a limit error afterwards
  raw_pcall = raw_pcall,
  -- raise the memory-limit error (for a runtime that caught one with raw_pcall)
  memory_error = memory_error,
  is_memory_error = is_memory_error,
  -- call f(...) catching errors like pcall, but never instruction-limit or memory errors
  pcall = G.pcall,
  traceback = traceback,
  -- decode_one(a, i) -> value, next index: one value of a flat wire sequence (convert.lua)
  decode_one = decode_one,
  raw_print = print,
}

return host
