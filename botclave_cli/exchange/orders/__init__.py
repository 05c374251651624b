"""Order manager (wave 2): real orders through ccxt's unified calls, journaled in SQLite,
idempotent by client order id and reconciled with the exchange; testnet by default."""
