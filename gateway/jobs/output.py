"""A running job's output on its way to the store: decoded, capped, batched."""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable

from gateway.jobs.store import Chunk

FLUSH_BYTES = 64 * 1024


class OutputBuffer:
    """Collects ``(stream, bytes)`` from the runner and hands out offset-numbered chunks.

    Each stream has its own incremental UTF-8 decoder, so a character split across two
    reads is never mangled.  Offsets count characters over both streams in arrival order;
    the owning process is the only writer, so they need no coordination in the store.

    :param cap: characters kept per job; later output is dropped and ``truncated`` set.
    :param on_full: called (from the producing thread) once ``FLUSH_BYTES`` are pending.
    """

    def __init__(self, cap: int, on_full: Callable[[], None] | None = None) -> None:
        self.cap = cap
        self.on_full = on_full
        self.truncated = False
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._decoders = {
            name: codecs.getincrementaldecoder("utf-8")("replace") for name in ("stdout", "stderr")
        }
        self._pending: list[tuple[str, str]] = []
        self._pending_size = 0
        self._accepted = 0  # characters written or pending
        self.written = 0  # the next chunk's offset
        self._truncation_written = False

    def add(self, stream: str, data: bytes) -> None:
        text = self._decoders[stream].decode(data)
        if not text:
            return
        with self._lock:
            room = self.cap - self._accepted
            if len(text) > room:
                self.truncated = True
                text = text[: max(room, 0)]
            if not text:
                return
            self._accepted += len(text)
            if self._pending and self._pending[-1][0] == stream:
                self._pending[-1] = (stream, self._pending[-1][1] + text)
            else:
                self._pending.append((stream, text))
            self._pending_size += len(text)
            full = self._pending_size >= FLUSH_BYTES
        if full and self.on_full is not None:
            self.on_full()

    def mark_truncated(self) -> None:
        """Output was dropped before it reached this buffer (the runner's own cap)."""
        with self._lock:
            self.truncated = True

    @property
    def accepted(self) -> int:
        """Characters kept so far, stored or pending."""
        with self._lock:
            return self._accepted

    def flush(self, write: Callable[[list[Chunk], int, bool], None]) -> None:
        """Hand pending output to ``write(chunks, total, truncated)``; one flush at a time.

        When ``write`` raises (the store is unreachable), the output stays pending for the
        next flush: nothing is lost while the store is down, only delayed.
        """
        with self._flush_lock:
            with self._lock:
                pending, self._pending, self._pending_size = self._pending, [], 0
                truncated = self.truncated
            if not pending and (not truncated or self._truncation_written):
                return
            chunks, offset = [], self.written
            for stream, text in pending:
                chunks.append(Chunk(offset, stream, text))
                offset += len(text)
            try:
                write(chunks, offset, truncated)
            except BaseException:
                with self._lock:
                    self._pending = pending + self._pending
                    self._pending_size += sum(len(text) for _, text in pending)
                raise
            self.written = offset
            self._truncation_written = truncated
