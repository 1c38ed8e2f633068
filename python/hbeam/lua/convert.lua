-- hbeam value codec, Lua half (the Python half is convert.py).
--
-- Values cross the lupa boundary as ONE flat sequence of scalars, because pushing a few
-- dozen strings and integers through one call is far cheaper than walking Lua tables from
-- Python one lupa call per entry. A table is a nil marker followed by one integer
-- code = n * 8 + kind (n = number of entries), then its contents:
--
--   nil, n*8+FMAP,   k1..kn, v1..vn     map whose values are all scalars (host -> Lua; the
--                                       host builds it with two list.extend calls)
--   nil, n*8+FPAIRS, k1, v1, ..., kn, vn map whose values are all scalars (Lua -> host; one
--                                       pass in Lua, one zip of two strided slices in Python)
--   nil, n*8+MAP,    (k, value)*n       any map
--   nil, n*8+FLIST,  v1..vn             list of scalars
--   nil, n*8+LIST,   value*n            any list
--   nil, NIL                            nil (in a list, or a top-level result)
--   nil, BYTES, s                       a string that is not UTF-8, each byte >= 128
--                                       re-encoded as the code point of the same number
--                                       (Lua -> host only)
--
-- Everything else (strings, integers, floats, booleans) is itself. Lua -> host map keys are
-- always strings: integers and floats become their decimal text, booleans "true"/"false".
-- A table whose keys are exactly 1..n becomes a list; the empty table an empty map.
--
-- Executed once per VM as a trusted chunk; returns the codec table. Locals only: user code
-- that later replaces globals cannot change how values are converted.

local MAX_DEPTH = ...

local type, next, rawget, rawlen, tostring, error =
  type, next, rawget, rawlen, tostring, error
local table_move, table_concat = table.move, table.concat
local string_format, string_gsub, string_byte = string.format, string.gsub, string.byte
local math_type = math.type
local utf8_len, utf8_char = utf8.len, utf8.char

local FMAP, MAP, FLIST, LIST, NIL, BYTES, FPAIRS = 1, 2, 3, 4, 5, 6, 7

-- host -> Lua ---------------------------------------------------------------------------

local function dec(a, i)
  local v = a[i]
  if v ~= nil then
    return v, i + 1
  end
  local code = a[i + 1]
  local kind, n = code & 7, code >> 3
  if kind == FMAP then
    local t = {}
    local ks = i + 1
    local vs = ks + n
    for o = 1, n do
      t[a[ks + o]] = a[vs + o]
    end
    return t, vs + n + 1
  elseif kind == MAP then
    local t = {}
    i = i + 2
    for _ = 1, n do
      local k = a[i]
      local x
      x, i = dec(a, i + 1)
      if x ~= nil then
        t[k] = x
      end
    end
    return t, i
  elseif kind == FLIST then
    local t = {}
    table_move(a, i + 2, i + 1 + n, 1, t)
    return t, i + 2 + n
  elseif kind == LIST then
    local t = {}
    i = i + 2
    for o = 1, n do
      local x
      x, i = dec(a, i)
      t[o] = x
    end
    return t, i
  elseif kind == NIL then
    return nil, i + 2
  end
  error("hbeam codec: malformed host value at position " .. tostring(i), 0)
end

-- Decode `count` top-level values from the flat sequence `a` (1-based).
local function decode(a, count)
  local out, i = {}, 1
  for o = 1, count do
    local x
    x, i = dec(a, i)
    out[o] = x
  end
  return out
end

-- Lua -> host ---------------------------------------------------------------------------

-- The buffer is reused from call to call (growing a fresh table costs a rehash per power
-- of two); only [1, bn] is meaningful, stale values beyond it are never read.
local buf, bn, safe = {}, 0, false
local path = {}

local transcode

local function path_text(depth)
  local parts = {}
  for d = 1, depth do
    local k = path[d]
    local tk = type(k)
    local part
    if tk == "string" then
      part = k
    elseif tk == "number" or tk == "boolean" then
      part = tostring(k)
    else
      part = "<" .. tk .. ">" -- never tostring(): a __tostring would run user code here
    end
    if not utf8_len(part) then
      part = transcode(part)
    end
    parts[d] = part
  end
  if depth > 8 then
    return table_concat(parts, "/", 1, 4) .. "/…/" .. table_concat(parts, "/", depth - 2, depth)
  end
  return table_concat(parts, "/")
end

local function fail(message, depth)
  -- "\0hbeam-convert:" tags the message so the host raises InvalidMessage, not LuaError.
  local where = depth > 0 and (" at key '" .. path_text(depth) .. "'") or " (a top-level result)"
  error("\0hbeam-convert:" .. message .. where, 0)
end

local function key_text(k, depth)
  local tk = type(k)
  if tk == "number" then
    if math_type(k) == "integer" then
      return string_format("%d", k)
    end
    return tostring(k)
  elseif tk == "boolean" then
    return tostring(k)
  elseif tk == "string" then
    -- only reached in safe mode, for a key that is not UTF-8
    fail("map key is not valid UTF-8", depth)
  end
  fail("unsupported map key type " .. tk, depth)
end

function transcode(s)
  return (string_gsub(s, "[\128-\255]", function(c)
    return utf8_char(string_byte(c))
  end))
end

local enc

-- a list: keys exactly 1..n (n = rawlen) and nothing else
local function enc_list(v, depth, n)
  local count = 0
  for _ in next, v do
    count = count + 1
  end
  if count ~= n then
    return false
  end
  local flat = true
  for o = 1, n do
    local x = rawget(v, o)
    if x == nil then
      return false
    end
    local tx = type(x)
    if tx == "string" then
      if safe and not utf8_len(x) then
        flat = false
      end
    elseif tx ~= "number" and tx ~= "boolean" then
      flat = false
    end
  end
  local p = bn
  buf[p + 1] = nil
  if flat then
    buf[p + 2] = n * 8 + FLIST
    table_move(v, 1, n, p + 3, buf)
    bn = p + 2 + n
    return true
  end
  buf[p + 2] = n * 8 + LIST
  bn = p + 2
  for o = 1, n do
    path[depth + 1] = o
    enc(rawget(v, o), depth + 1)
  end
  return true
end

local SCALAR_KEY, scalar_keys = {}, 0 -- map keys already seen to be scalars

local function enc_map(v, depth)
  local p = bn
  local b = buf
  b[p + 1] = nil
  -- optimistic single pass: all values scalar -> interleaved pairs (FPAIRS). Keys go out
  -- as they are; the host turns number/boolean keys into text (strings are the rule, and
  -- checking every key here would cost more than fixing the rare others there).
  local j = p + 2
  if safe then
    for k, x in next, v do
      local tx = type(x)
      if tx == "string" then
        if not utf8_len(x) then
          goto nested
        end
      elseif tx ~= "number" and tx ~= "boolean" then
        goto nested
      end
      if type(k) ~= "string" or not utf8_len(k) then
        path[depth + 1] = k
        k = key_text(k, depth + 1)
      end
      b[j + 1] = k
      b[j + 2] = x
      j = j + 2
    end
  else
    for k, x in next, v do
      local tx = type(x)
      if tx ~= "string" and tx ~= "number" and tx ~= "boolean" then
        goto nested
      end
      if SCALAR_KEY[k] == nil then -- keys repeat (message fields): check each one once
        local tk = type(k)
        if tk ~= "string" and tk ~= "number" and tk ~= "boolean" then
          goto nested -- unsupported key: the nested pass reports it
        end
        if scalar_keys < 8192 then
          SCALAR_KEY[k] = true
          scalar_keys = scalar_keys + 1
        end
      end
      b[j + 1] = k
      b[j + 2] = x
      j = j + 2
    end
  end
  b[p + 2] = ((j - p - 2) // 2) * 8 + FPAIRS
  bn = j
  do
    return
  end
  ::nested::
  bn = p + 2
  local count = 0
  for k, x in next, v do
    count = count + 1
    path[depth + 1] = k
    if type(k) ~= "string" or (safe and not utf8_len(k)) then
      k = key_text(k, depth + 1)
    end
    bn = bn + 1
    buf[bn] = k
    enc(x, depth + 1)
  end
  buf[p + 2] = count * 8 + MAP
end

enc = function(v, depth)
  local tv = type(v)
  if tv == "table" then
    if depth >= MAX_DEPTH then
      fail("nesting deeper than " .. MAX_DEPTH .. " levels (or a cycle)", depth)
    end
    local n = rawlen(v)
    if n > 0 and enc_list(v, depth, n) then
      return
    end
    return enc_map(v, depth)
  elseif tv == "string" then
    if safe and not utf8_len(v) then
      buf[bn + 1] = nil
      buf[bn + 2] = BYTES
      buf[bn + 3] = transcode(v)
      bn = bn + 3
      return
    end
    bn = bn + 1
    buf[bn] = v
    return
  elseif tv == "number" or tv == "boolean" then
    bn = bn + 1
    buf[bn] = v
    return
  elseif tv == "nil" then -- only as a top-level result: tables hold no nils
    buf[bn + 1] = nil
    buf[bn + 2] = NIL
    bn = bn + 2
    return
  end
  fail("Lua value of type " .. tv .. " cannot be converted", depth)
end

-- Encode the packed values t[1..t.n] into the shared buffer; returns buffer, length.
-- `check_utf8` = true re-encodes strings that are not UTF-8 as BYTES (the slow, safe pass
-- the host asks for only after lupa failed to decode the optimistic one).
local function encode_packed(check_utf8, t)
  bn, safe = 0, check_utf8
  for o = 1, t.n do
    enc(t[o], 0)
  end
  return buf, bn
end

-- Append the packed values t[1..t.n] to the shared buffer after position `at`, in safe
-- mode (strings that are not UTF-8 go out as BYTES); returns buffer, new length. On failure
-- it raises and the buffer beyond `at` is garbage: the caller keeps its own length.
local function encode_append(at, t)
  bn, safe = at, true
  for o = 1, t.n do
    enc(t[o], 0)
  end
  return buf, bn
end

-- Drop the shared buffer (after an unusually large result, so its memory can be freed).
local function reset()
  buf, bn = {}, 0
end

return {
  transcode = transcode,
  decode = decode,
  decode_one = dec,
  encode_packed = encode_packed,
  encode_append = encode_append,
  reset = reset,
}
