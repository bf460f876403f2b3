"""A minimal Server-Sent Events client over http.client (loopback only)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Event:
    name: str
    data: str
    id: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class EventStream:
    """One SSE response; iterate for events, ``close()`` to drop the connection."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        assert parts.hostname in {"127.0.0.1", "localhost"}, "tests only talk to loopback"
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.retry: int | None = None

    def __iter__(self) -> Iterator[Event]:
        name, event_id = "message", None
        data: list[str] = []
        while True:
            raw = self.response.readline()
            if not raw:
                return
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if data:
                    yield Event(name, "\n".join(data), event_id)
                name, data, event_id = "message", [], None
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "retry":
                self.retry = int(value)

    def close(self) -> None:
        self.conn.close()
