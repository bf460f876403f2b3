"""Per-principal rate limits and caps: rules, counters (Redis or memory), the request layer."""
