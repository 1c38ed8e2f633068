-- sum-kv.lua - Token metrics calculator
function sum(base, req)
    local totalSupply = 0
    local holders = 0
    local maxBalance = 0
    local minBalance = math.huge
    
    if base.balances then
        for address, balance in pairs(base.balances) do
            local numBalance = tonumber(balance) or 0
            totalSupply = totalSupply + numBalance
            holders = holders + 1
            
            if numBalance > maxBalance then
                maxBalance = numBalance
            end
            if numBalance < minBalance then
                minBalance = numBalance
            end
        end
    end
    
    -- Handle edge case where there are no balances
    if holders == 0 then
        minBalance = 0
    end
    
    return {
        CirculatingSupply = tostring(totalSupply),
        BalanceCount = tostring(holders),
        MaxBalance = tostring(maxBalance),
        MinBalance = tostring(minBalance),
        AverageBalance = holders > 0 and tostring(totalSupply / holders) or "0"
    }
end
