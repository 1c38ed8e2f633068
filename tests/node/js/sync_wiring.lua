-- What seed 000's "State Synchronization" leaves implicit around syncCaches (which comes from
-- tests/lua/seed000/sync_caches.lua): the Metadata table it reads and a handler that calls it.
Metadata = Metadata or {}

Handlers.add("Sync-Caches", Handlers.utils.hasMatchingTag("Action", "Sync-Caches"), function(msg)
    syncCaches(msg)
    Metadata.totalTransfers = (Metadata.totalTransfers or 0) + 1
end)
