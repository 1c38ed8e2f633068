-- hbeam json: a small JSON encoder/decoder for sandboxed Lua (written for hbeam).
--
-- json.encode(value): tables whose keys are exactly 1..n become arrays, the empty table
-- "[]", other tables objects with their keys sorted (so output is deterministic); integers
-- print as integers, floats with 14 significant digits; NaN and infinities as null.
-- json.decode(text): objects -> tables, arrays -> 1-based tables, null -> nil, numbers
-- without '.'/exponent -> integers when they fit.

local type, next, tostring, tonumber, error, rawget, rawlen =
  type, next, tostring, tonumber, error, rawget, rawlen
local string_format, string_byte, string_sub, string_find, string_gsub =
  string.format, string.byte, string.sub, string.find, string.gsub
local table_concat, table_sort = table.concat, table.sort
local math_type, math_tointeger, math_huge = math.type, math.tointeger, math.huge
local utf8_char = utf8.char

local json = {}

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_char(c)
  return ESCAPES[c] or string_format("\\u%04x", string_byte(c))
end

local function encode_string(s)
  return '"' .. string_gsub(s, '[%c"\\]', escape_char) .. '"'
end

local encode_value

local function encode_table(t, depth, out, n)
  if depth > 100 then
    error("json.encode: nesting too deep (or a cycle)", 0)
  end
  local count = 0
  for _ in next, t do
    count = count + 1
  end
  if count == 0 then
    n = n + 1
    out[n] = "[]"
    return n
  end
  if rawlen(t) == count then
    local ok = true
    for i = 1, count do
      if rawget(t, i) == nil then
        ok = false
        break
      end
    end
    if ok then
      n = n + 1
      out[n] = "["
      for i = 1, count do
        if i > 1 then
          n = n + 1
          out[n] = ","
        end
        n = encode_value(rawget(t, i), depth + 1, out, n)
      end
      n = n + 1
      out[n] = "]"
      return n
    end
  end
  local keys, k_n = {}, 0
  for k in next, t do
    local tk = type(k)
    if tk == "number" then
      k = math_type(k) == "integer" and string_format("%d", k) or tostring(k)
    elseif tk ~= "string" then
      error("json.encode: cannot encode a key of type " .. tk, 0)
    end
    k_n = k_n + 1
    keys[k_n] = k
  end
  table_sort(keys)
  n = n + 1
  out[n] = "{"
  for i = 1, k_n do
    local k = keys[i]
    local v = rawget(t, k)
    if v == nil then
      v = rawget(t, tonumber(k))
    end
    if i > 1 then
      n = n + 1
      out[n] = ","
    end
    n = n + 1
    out[n] = encode_string(k) .. ":"
    n = encode_value(v, depth + 1, out, n)
  end
  n = n + 1
  out[n] = "}"
  return n
end

encode_value = function(v, depth, out, n)
  local tv = type(v)
  local text
  if tv == "string" then
    text = encode_string(v)
  elseif tv == "number" then
    if math_type(v) == "integer" then
      text = string_format("%d", v)
    elseif v ~= v or v == math_huge or v == -math_huge then
      text = "null"
    else
      text = string_format("%.14g", v)
    end
  elseif tv == "boolean" then
    text = v and "true" or "false"
  elseif tv == "nil" then
    text = "null"
  elseif tv == "table" then
    return encode_table(v, depth, out, n)
  else
    error("json.encode: cannot encode a value of type " .. tv, 0)
  end
  n = n + 1
  out[n] = text
  return n
end

function json.encode(value)
  local out = {}
  local n = encode_value(value, 0, out, 0)
  return table_concat(out, "", 1, n)
end

-- decoding ---------------------------------------------------------------------------

local decode_value

local function decode_error(s, i, what)
  error(string_format("json.decode: %s at position %d", what, i), 0)
end

local function skip(s, i)
  local _, e = string_find(s, "^[ \n\r\t]*", i)
  return e + 1
end

local UNESCAPES = {
  b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/",
}

local function decode_string(s, i)
  local parts, n = {}, 0
  local j = i + 1
  while true do
    local a, b = string_find(s, '["\\]', j)
    if not a then
      decode_error(s, i, "unterminated string")
    end
    n = n + 1
    parts[n] = string_sub(s, j, a - 1)
    if string_sub(s, a, a) == '"' then
      return table_concat(parts, "", 1, n), b + 1
    end
    local c = string_sub(s, a + 1, a + 1)
    local simple = UNESCAPES[c]
    if simple then
      n = n + 1
      parts[n] = simple
      j = a + 2
    elseif c == "u" then
      local hex = string_sub(s, a + 2, a + 5)
      local code = tonumber(hex, 16)
      if not code or #hex ~= 4 then
        decode_error(s, a, "invalid unicode escape")
      end
      j = a + 6
      if code >= 0xD800 and code <= 0xDBFF and string_sub(s, j, j + 1) == "\\u" then
        local low = tonumber(string_sub(s, j + 2, j + 5), 16)
        if low and low >= 0xDC00 and low <= 0xDFFF then
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
          j = j + 6
        end
      end
      n = n + 1
      parts[n] = utf8_char(code)
    else
      decode_error(s, a, "invalid escape")
    end
  end
end

local function decode_number(s, i)
  local a, b = string_find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if not a then
    decode_error(s, i, "invalid number")
  end
  local text = string_sub(s, a, b)
  local v
  if string_find(text, "[%.eE]") then
    v = tonumber(text)
  else
    v = math_tointeger(tonumber(text)) or tonumber(text)
  end
  if v == nil then
    decode_error(s, i, "invalid number")
  end
  return v, b + 1
end

decode_value = function(s, i, depth)
  if depth > 200 then
    decode_error(s, i, "nesting too deep")
  end
  i = skip(s, i)
  local c = string_sub(s, i, i)
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if string_sub(s, i, i) == "}" then
      return t, i + 1
    end
    while true do
      i = skip(s, i)
      if string_sub(s, i, i) ~= '"' then
        decode_error(s, i, "expected a string key")
      end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if string_sub(s, i, i) ~= ":" then
        decode_error(s, i, "expected ':'")
      end
      local v
      v, i = decode_value(s, i + 1, depth + 1)
      t[k] = v
      i = skip(s, i)
      c = string_sub(s, i, i)
      if c == "}" then
        return t, i + 1
      elseif c ~= "," then
        decode_error(s, i, "expected ',' or '}'")
      end
      i = i + 1
    end
  elseif c == "[" then
    local t, n = {}, 0
    i = skip(s, i + 1)
    if string_sub(s, i, i) == "]" then
      return t, i + 1
    end
    while true do
      local v
      v, i = decode_value(s, i, depth + 1)
      n = n + 1
      t[n] = v
      i = skip(s, i)
      c = string_sub(s, i, i)
      if c == "]" then
        return t, i + 1
      elseif c ~= "," then
        decode_error(s, i, "expected ',' or ']'")
      end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif c == "-" or string_find(c, "^%d") then
    return decode_number(s, i)
  elseif string_sub(s, i, i + 3) == "true" then
    return true, i + 4
  elseif string_sub(s, i, i + 4) == "false" then
    return false, i + 5
  elseif string_sub(s, i, i + 3) == "null" then
    return nil, i + 4
  end
  decode_error(s, i, "unexpected character '" .. c .. "'")
end

function json.decode(text)
  if type(text) ~= "string" then
    error("json.decode: expected a string, got " .. type(text), 2)
  end
  local v, i = decode_value(text, 1, 0)
  i = skip(text, i)
  if i <= #text then
    decode_error(text, i, "trailing characters")
  end
  return v
end

return json
