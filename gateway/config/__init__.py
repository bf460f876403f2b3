"""The settings: records, loading and validation, the documents derived from them."""
