"""HTTP plumbing: the reverse proxy, its upstream client, forwarded headers, the worker, health."""
