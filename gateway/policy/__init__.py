"""Allow-lists from the human-written TOML files in ``policies/``: model, loader, engine."""
