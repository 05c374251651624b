"""Exchange layer: ccxt REST connector and the WebSocket recorder."""
