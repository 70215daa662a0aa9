"""Use cases and the ports they need; nothing here imports the engine, the hub or SQL."""
