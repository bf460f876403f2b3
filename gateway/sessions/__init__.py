"""Browser sessions: the server-side store and the web helpers (cookies, CSRF, ``next``)."""
