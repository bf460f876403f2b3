"""Primitives every layer uses: the plugin's envelope, errors, redaction."""
