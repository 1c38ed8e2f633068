-- Multi-cache patch function
function syncCaches(msg)
    local cacheUpdate = {
        balances = {
            [msg.Recipient] = Balances[msg.Recipient],
            [msg.From] = Balances[msg.From]
        },
        metadata = {
            lastTransfer = msg.Timestamp,
            totalTransfers = (Metadata.totalTransfers or 0) + 1
        }
    }
    
    -- Update multiple cache layers
    Send({device = "patch@1.0", cache = cacheUpdate})
    Send({device = "backup-cache@1.0", cache = cacheUpdate})
end
