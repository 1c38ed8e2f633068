-- Check current balances
Balances

-- Perform a transfer
Send({
    Target = ao.id, 
    Action = "Transfer", 
    Recipient = "vh-NTHVvlKZqRxc8LyyTNok65yQ55a_PJ1zWLb9G2JI", 
    Quantity = "10000"
})
