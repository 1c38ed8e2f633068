-- First function: filter balances above threshold
function filterLargeHolders(base, req)
    local threshold = tonumber(req.threshold) or 1000
    local filtered = {}
    
    if base.balances then
        for address, balance in pairs(base.balances) do
            if tonumber(balance) >= threshold then
                filtered[address] = balance
            end
        end
    end
    
    return { balances = filtered }
end

-- Second function: calculate metrics on filtered data
function calculateMetrics(base, req)
    -- Reuse the sum function from earlier
    return sum(base, req)
end
