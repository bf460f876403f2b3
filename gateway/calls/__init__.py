"""The call service: one way to run a planned call, whatever asked for it."""
