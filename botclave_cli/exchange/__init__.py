"""Exchange layer: ccxt REST connector (``connector``, ``trades``, ``series``, ``writer``), the
WebSocket recorder (``recorder``, ``record_sink``, ``record_config``) and, in ``orders/``, the
order manager."""
