"""botclave: a command-line research toolkit for crypto order-flow trading.

Every command is a library call first: import from the subpackages (``data``, ``exchange``,
``engine``, ``strategy``, ``backtest``, ``report``) to use botclave from Python or a notebook.
"""

__version__ = "0.1.0"
