"""Importers: files traders already have -> store datasets.

- ``capture``: raw Binance WebSocket captures (``<receive time> <JSON>``), one Capture per
  stream; ``capture_streams`` groups and orders the files, ``capture_lines`` reads their lines,
  ``capture_decode`` the messages, ``capture_messages`` checks them into store frames.
- ``binance_archive``: Binance public data CSV (trades, aggTrades, klines).
- ``tardis``: Tardis.dev CSV (trades, incremental_book_L2, book_snapshot_N, quotes).
- ``badrows``: the checks every importer applies, and the bad-rows report.
- ``files``, ``csvlines``, ``symbols``: reading plain/gzip/zip text, CSV lines with their line
  numbers, exchange symbols -> ccxt unified symbols.
- ``writer``: tick/lot, gaps, manifest and the write of what an importer parsed.
- ``imports``: the three imports as library calls (parse, then write).
"""
