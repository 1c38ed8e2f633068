// Seed 000's JavaScript integration, as the seed shows it (AOTokenManager, then
// RobustAOTokenManager), followed by its usage example. Only the IDs and the endpoint
// differ: the seed's are placeholders, these come from the test (argv).
import "./eventsource.mjs";

const [endpoint, PROCESS_ID, MODULE_ID, CHAIN_MODULE_ID] = process.argv.slice(2);
const report = (step, value) => console.log(JSON.stringify({ step, value }));
setTimeout(() => { report("timeout", null); process.exit(1); }, 30000).unref();

// --- seed 000, "JavaScript Integration" ---------------------------------------------------

class AOTokenManager {
    constructor(processId, hyperbeamEndpoint = "localhost:8734") {
        this.processId = processId;
        this.hyperbeam = hyperbeamEndpoint;
    }
    
    async getBalances() {
        const response = await fetch(
            `http://${this.hyperbeam}/${this.processId}~process@1.0/now/cache/balances/format~json@1.0`
        );
        return await response.json();
    }
    
    async getTokenMetrics(moduleId) {
        const response = await fetch(
            `http://${this.hyperbeam}/${this.processId}~process@1.0/now/cache/balances/~lua@5.3a/sum&module=${moduleId}/serialize~json@1.0`
        );
        return await response.json();
    }
    
    async watchBalanceChanges(callback) {
        // Using Server-Sent Events for real-time updates
        const eventSource = new EventSource(
            `http://${this.hyperbeam}/${this.processId}~process@1.0/events/cache/balances`
        );
        
        eventSource.onmessage = (event) => {
            const data = JSON.parse(event.data);
            callback(data);
        };
        
        return eventSource;
    }
}

// --- seed 000, "Error Handling and Best Practices" ----------------------------------------

class RobustAOTokenManager extends AOTokenManager {
    async safeRequest(url, options = {}) {
        const maxRetries = 3;
        let lastError;
        
        for (let i = 0; i < maxRetries; i++) {
            try {
                const response = await fetch(url, {
                    timeout: 5000,
                    ...options
                });
                
                if (!response.ok) {
                    throw new Error(`HTTP ${response.status}: ${response.statusText}`);
                }
                
                return response;
            } catch (error) {
                lastError = error;
                if (i < maxRetries - 1) {
                    await new Promise(resolve => setTimeout(resolve, 1000 * (i + 1)));
                }
            }
        }
        
        throw lastError;
    }
    
    async getBalances() {
        try {
            const response = await this.safeRequest(
                `http://${this.hyperbeam}/${this.processId}~process@1.0/now/cache/balances/format~json@1.0`
            );
            return await response.json();
        } catch (error) {
            console.error("Failed to get balances:", error);
            return null;
        }
    }
}

// --- seed 000's usage example (with this test's IDs and endpoint) -------------------------

// Usage example
const tokenManager = new AOTokenManager(PROCESS_ID, endpoint);

// Get current balances
const balances = await tokenManager.getBalances();
report("balances", balances);

// Get token metrics using dynamic function
const metrics = await tokenManager.getTokenMetrics(MODULE_ID);
report("metrics", metrics);

const robust = new RobustAOTokenManager(PROCESS_ID, endpoint);
report("robust-balances", await robust.getBalances());

// "Composable Function Chains": filterLargeHolders, then calculateMetrics on its result
const chain = await fetch(
    `http://${endpoint}/${PROCESS_ID}~process@1.0/now/cache/~lua@5.3a&module=${CHAIN_MODULE_ID}/filterLargeHolders&threshold=20000/~lua@5.3a&module=${CHAIN_MODULE_ID}/calculateMetrics/serialize~json@1.0`
);
report("chain", await chain.json());

// "State Synchronization": what syncCaches patched into the cache
const metadata = await fetch(
    `http://${endpoint}/${PROCESS_ID}~process@1.0/now/cache/metadata/format~json@1.0`
);
report("sync", await metadata.json());

// Watch for balance changes
const seen = [];
const source = await tokenManager.watchBalanceChanges((updatedBalances) => {
    seen.push(updatedBalances);
    report("update", updatedBalances);
    if (seen.length === 1) report("watching", true);
    if (seen.length === 2) {
        source.close();
        report("done", seen.length);
    }
});
