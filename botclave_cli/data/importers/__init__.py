"""Importers: files traders already have -> store datasets.

- ``capture``: raw Binance WebSocket captures (``<receive time> <JSON>`` per line).
- ``binance_archive``: Binance public data CSV (trades, aggTrades, klines).
- ``tardis``: Tardis.dev CSV (trades, incremental_book_L2, book_snapshot_N, quotes).
- ``badrows``: the checks every importer applies, and the bad-rows report.
- ``writer``: tick/lot, manifest and the atomic write of what an importer parsed.
"""
