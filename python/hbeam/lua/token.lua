-- hbeam token blueprint (written for hbeam; behaviour follows the classic aos token).
--
-- Handlers: Info, Balance, Balances, Transfer, Mint, Burn, Total-Supply.
-- Balances and TotalSupply hold amounts as decimal strings of any size (the initial supply
-- is 10000 * 10^12 held by the process itself). Quantities are whole numbers given as
-- strings (or integers); Transfer debits msg.From, credits msg.Recipient, and notifies both
-- (Debit-Notice / Credit-Notice) unless msg.Cast is set; an overdraft changes nothing and
-- answers Transfer-Error "Insufficient Balance!". Mint is for the process owner (or the
-- process itself).
--
-- Cache patching: on load the whole ledger, and after every change only the balances that
-- changed, are sent as `Send({device = "patch@1.0", cache = {balances = ..., totalsupply = ...}})`
-- so patch@1.0 keeps /now/cache/balances current.

local json = require("json")

local type, next, tostring, tonumber, error = type, next, tostring, tonumber, error
local string_format, string_find, string_match, string_sub, string_byte =
  string.format, string.find, string.match, string.sub, string.byte
local table_concat = table.concat
local math_tointeger = math.tointeger

Denomination = Denomination or 12
Balances = Balances or { [ao.id] = "10000000000000000" }
TotalSupply = TotalSupply or "10000000000000000"
Name = Name or "Points Coin"
Ticker = Ticker or "PNTS"
Logo = Logo or "SBCCXwwecBlDqRLUjb8dYABExTJXLieawf7m2aBJ-KY"

-- whole numbers as decimal strings --------------------------------------------------------

-- canonical decimal text of a whole, non-negative quantity, or nil
local function amount(q)
  local t = type(q)
  if t == "number" then
    local i = math_tointeger(q)
    if i == nil or i < 0 then
      return nil
    end
    return string_format("%d", i)
  elseif t ~= "string" then
    return nil
  end
  return string_match(q, "^0*(%d+)$")
end

local function cmp(a, b)
  local la, lb = #a, #b
  if la ~= lb then
    return la < lb and -1 or 1
  end
  if a == b then
    return 0
  end
  return a < b and -1 or 1
end

local BASE, WIDTH = 1000000000, 9

local function limbs(s)
  local t, n = {}, 0
  for i = #s, 1, -WIDTH do
    local j = i - WIDTH + 1
    if j < 1 then
      j = 1
    end
    n = n + 1
    t[n] = tonumber(string_sub(s, j, i))
  end
  return t, n
end

local function text(t, n)
  while n > 1 and t[n] == 0 do
    n = n - 1
  end
  local parts = { string_format("%d", t[n]) }
  for i = n - 1, 1, -1 do
    parts[#parts + 1] = string_format("%09d", t[i])
  end
  return table_concat(parts)
end

-- below 19 digits both operands and the sum fit a Lua 5.3 integer
local function add(a, b)
  if #a < 19 and #b < 19 then
    return string_format("%d", tonumber(a) + tonumber(b))
  end
  local x, nx = limbs(a)
  local y, ny = limbs(b)
  local n = nx > ny and nx or ny
  local carry = 0
  for i = 1, n do
    local s = (x[i] or 0) + (y[i] or 0) + carry
    if s >= BASE then
      x[i], carry = s - BASE, 1
    else
      x[i], carry = s, 0
    end
  end
  if carry > 0 then
    n = n + 1
    x[n] = carry
  end
  return text(x, n)
end

-- a - b for a >= b
local function sub(a, b)
  if #a < 19 then
    return string_format("%d", tonumber(a) - tonumber(b))
  end
  local x, nx = limbs(a)
  local y = limbs(b)
  local borrow = 0
  for i = 1, nx do
    local s = x[i] - (y[i] or 0) - borrow
    if s < 0 then
      x[i], borrow = s + BASE, 1
    else
      x[i], borrow = s, 0
    end
  end
  return text(x, nx)
end

local function quantity(msg)
  local q = amount(msg.Quantity)
  if q == nil then
    error("Quantity is required and must be a whole number given as a string!", 0)
  end
  if q == "0" then
    error("Quantity must be greater than 0!", 0)
  end
  return q
end

local function patch(balances, supply)
  Send({ device = "patch@1.0", cache = { balances = balances, totalsupply = supply } })
end

-- tag name -> starts with "X-" (memo of the first 4096 names seen)
local X_TAG, x_tags = {}, 0

-- handlers ----------------------------------------------------------------------------

local hasMatchingTag = Handlers.utils.hasMatchingTag

Handlers.add("Info", hasMatchingTag("Action", "Info"), function(msg)
  msg.reply({
    Name = Name,
    Ticker = Ticker,
    Logo = Logo,
    Denomination = tostring(Denomination),
    ["Total-Supply"] = TotalSupply,
  })
end)

Handlers.add("Balance", hasMatchingTag("Action", "Balance"), function(msg)
  local account = msg.Tags.Recipient or msg.Tags.Target or msg.From
  local balance = Balances[account] or "0"
  msg.reply({ Balance = balance, Ticker = Ticker, Account = account, Data = balance })
end)

Handlers.add("Balances", hasMatchingTag("Action", "Balances"), function(msg)
  msg.reply({ Data = json.encode(Balances) })
end)

Handlers.add("Total-Supply", hasMatchingTag("Action", "Total-Supply"), function(msg)
  msg.reply({ Action = "Total-Supply", Data = TotalSupply, Ticker = Ticker })
end)

Handlers.add("Transfer", hasMatchingTag("Action", "Transfer"), function(msg)
  local recipient = msg.Recipient
  if type(recipient) ~= "string" or recipient == "" then
    error("Recipient is required!", 0)
  end
  local qty = quantity(msg)
  local from = msg.From
  local balance = Balances[from] or "0"
  if cmp(qty, balance) > 0 then
    msg.reply({ Action = "Transfer-Error", ["Message-Id"] = msg.Id, Error = "Insufficient Balance!" })
    return
  end
  Balances[from] = sub(balance, qty)
  Balances[recipient] = add(Balances[recipient] or "0", qty)
  if not msg.Cast then
    local debit = {
      Action = "Debit-Notice",
      Recipient = recipient,
      Quantity = qty,
      Data = "You transferred " .. qty .. " to " .. recipient,
    }
    local credit = {
      Target = recipient,
      Action = "Credit-Notice",
      Sender = from,
      Quantity = qty,
      Data = "You received " .. qty .. " from " .. from,
    }
    -- forward the sender's X- tags to both parties
    for k, v in next, msg.Tags do
      local x = X_TAG[k]
      if x == nil then
        x = string_byte(k, 1) == 88 and string_byte(k, 2) == 45
        if x_tags < 4096 then
          X_TAG[k] = x
          x_tags = x_tags + 1
        end
      end
      if x then
        debit[k] = v
        credit[k] = v
      end
    end
    msg.reply(debit)
    Send(credit)
  end
  patch({ [from] = Balances[from], [recipient] = Balances[recipient] })
end)

Handlers.add("Mint", hasMatchingTag("Action", "Mint"), function(msg)
  local qty = quantity(msg)
  local from = msg.From
  if from ~= Owner and from ~= ao.id then
    msg.reply({
      Action = "Mint-Error",
      ["Message-Id"] = msg.Id,
      Error = "Only the process owner can mint new " .. Ticker .. " tokens!",
    })
    return
  end
  Balances[from] = add(Balances[from] or "0", qty)
  TotalSupply = add(TotalSupply, qty)
  msg.reply({ Data = "Successfully minted " .. qty })
  patch({ [from] = Balances[from] }, TotalSupply)
end)

Handlers.add("Burn", hasMatchingTag("Action", "Burn"), function(msg)
  local qty = quantity(msg)
  local from = msg.From
  local balance = Balances[from] or "0"
  if cmp(qty, balance) > 0 then
    error("Quantity must be less than or equal to the current balance!", 0)
  end
  Balances[from] = sub(balance, qty)
  TotalSupply = sub(TotalSupply, qty)
  msg.reply({ Data = "Successfully burned " .. qty })
  patch({ [from] = Balances[from] }, TotalSupply)
end)

patch(Balances, TotalSupply)
