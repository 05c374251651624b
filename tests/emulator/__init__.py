"""Local emulators of exchange APIs on 127.0.0.1 for tests."""
