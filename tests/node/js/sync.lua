-- Seed 000, "State Synchronization" (syncCaches as the seed shows it), plus the two lines the
-- seed leaves implicit: the Metadata table it reads and a handler that calls it.
Metadata = Metadata or {}

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

Handlers.add("Sync-Caches", Handlers.utils.hasMatchingTag("Action", "Sync-Caches"), function(msg)
    syncCaches(msg)
    Metadata.totalTransfers = (Metadata.totalTransfers or 0) + 1
end)
