"""Paper and live trading (wave 2): WebSocket streams -> book and footprint -> strategy -> the
execution core (paper) or the order manager (live), with safety halts and alerts."""
