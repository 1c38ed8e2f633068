-- Enhanced patch function with cache management
function patchTransfer(msg)
    -- Perform the transfer logic
    local fromBalance = Balances[msg.From] or 0
    local quantity = tonumber(msg.Quantity)
    
    -- Validate transfer
    if fromBalance < quantity then
        return { error = "Insufficient balance" }
    end
    
    -- Update balances
    Balances[msg.From] = fromBalance - quantity
    Balances[msg.Recipient] = (Balances[msg.Recipient] or 0) + quantity
    
    -- Send patch to HyperBEAM cache
    Send({
        device = "patch@1.0", 
        cache = { 
            balances = { 
                [msg.Recipient] = Balances[msg.Recipient],
                [msg.From] = Balances[msg.From]
            }
        }
    })
    
    return { success = true, transferred = quantity }
end
