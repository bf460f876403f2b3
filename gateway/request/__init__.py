"""One request's way through the gateway: its scope, lifecycle, routes and authentication."""
