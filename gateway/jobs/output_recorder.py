"""A running job's output on its way to the store: decoded, masked, capped, batched."""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable

from gateway.jobs.store import Chunk

FLUSH_BYTES = 64 * 1024
#: A line without its newline yet is masked and let through once it is this long, or has
#: waited this long (a progress line or a prompt must still reach watchers).
PARTIAL_MAX = 64 * 1024
PARTIAL_WAIT_S = 1.0


class OutputBuffer:
    """Collects ``(stream, bytes)`` from the runner and hands out offset-numbered chunks.

    Each stream has its own incremental UTF-8 decoder, so a character split across two
    reads is never mangled.  Offsets count characters over both streams in arrival order;
    the owning process is the only writer, so they need no coordination in the store.

    With ``mask``, output is masked a whole line at a time before it is numbered or kept,
    so a secret the command echoes is masked even when two reads split it; a line still
    without its newline after :data:`PARTIAL_WAIT_S` or :data:`PARTIAL_MAX` characters is
    masked as it stands (a secret cut there could escape: the price of live output).

    :param cap: characters kept per job; later output is dropped and ``truncated`` set.
    :param on_full: called (from the producing thread) once ``FLUSH_BYTES`` are pending.
    :param mask: masks the request's secrets in a piece of text.
    """

    def __init__(
        self, cap: int, on_full: Callable[[], None] | None = None, mask: Callable[[str], str] | None = None
    ) -> None:
        self.cap = cap
        self.on_full = on_full
        self.mask = mask
        self.truncated = False
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._decoders = {
            name: codecs.getincrementaldecoder("utf-8")("replace") for name in ("stdout", "stderr")
        }
        self._partial = {"stdout": "", "stderr": ""}  # masking waits for the rest of the line
        self._partial_since = {"stdout": 0.0, "stderr": 0.0}
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
            if self.mask is not None:
                text = self._whole_lines(stream, text)
            full = self._accept(stream, text)
        if full and self.on_full is not None:
            self.on_full()

    def _whole_lines(self, stream: str, text: str) -> str:
        """The masked complete lines of ``stream`` so far; the rest waits (lock held)."""
        assert self.mask is not None  # noqa: S101
        if not self._partial[stream]:
            self._partial_since[stream] = time.monotonic()
        text = self._partial[stream] + text
        cut = text.rfind("\n") + 1
        if cut == 0 and len(text) < PARTIAL_MAX:
            self._partial[stream] = text
            return ""
        cut = cut or len(text)
        self._partial[stream] = text[cut:]
        self._partial_since[stream] = time.monotonic()
        return self.mask(text[:cut])

    def _accept(self, stream: str, text: str) -> bool:
        """Keep ``text`` within the cap (lock held); whether a flush is due."""
        room = self.cap - self._accepted
        if len(text) > room:
            self.truncated = True
            text = text[: max(room, 0)]
        if text:
            self._accepted += len(text)
            if self._pending and self._pending[-1][0] == stream:
                self._pending[-1] = (stream, self._pending[-1][1] + text)
            else:
                self._pending.append((stream, text))
            self._pending_size += len(text)
        return self._pending_size >= FLUSH_BYTES

    def _release_partial(self, final: bool) -> None:
        """Let waiting partial lines through, masked: at the end, or once they waited long (lock held)."""
        if self.mask is None:
            return
        now = time.monotonic()
        for stream, text in self._partial.items():
            if text and (final or now - self._partial_since[stream] >= PARTIAL_WAIT_S):
                self._partial[stream] = ""
                self._accept(stream, self.mask(text))

    def mark_truncated(self) -> None:
        """Output was dropped before it reached this buffer (the runner's own cap)."""
        with self._lock:
            self.truncated = True

    def flush(self, write: Callable[[list[Chunk], int, bool], None], *, final: bool = False) -> None:
        """Hand pending output to ``write(chunks, total, truncated)``; one flush at a time.

        ``final``: the command has ended, so a last line without its newline goes too.
        When ``write`` raises (the store is unreachable), the output stays pending for the
        next flush: nothing is lost while the store is down, only delayed.
        """
        with self._flush_lock:
            with self._lock:
                self._release_partial(final)
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
