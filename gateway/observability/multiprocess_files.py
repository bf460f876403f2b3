"""prometheus_client's multiprocess files, allocated before they are memory-mapped.

prometheus_client creates each file with ``truncate`` (a sparse file) and maps it; the
filesystem allocates a page when it is first written *through the mapping*, and when it
cannot (a full or over-quota filesystem) the kernel sends SIGBUS: the worker dies with
no Python exception and gunicorn starts another, which dies the same way.  Here every
file and every growth is allocated with ``posix_fallocate`` first, so a full disk is an
``OSError`` at the call that needed the space, which :class:`gateway.observability.metrics.Metrics`
turns into "metrics degraded" instead of a dead worker.

It replaces ``prometheus_client.values.MmapedDict`` (the name the value class uses) with
a subclass; tests/unit/test_metrics_files.py checks the internals it relies on.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from prometheus_client import mmap_dict, values

_HEADER = struct.calcsize("i")  # the key's length, before the key
_VALUE = struct.calcsize("dd")  # value and timestamp, after the padded key


class PreallocatedMmapedDict(mmap_dict.MmapedDict):
    """``MmapedDict`` whose file blocks exist before any page of them is written."""

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        if not read_mode:
            fd = os.open(filename, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                if os.fstat(fd).st_size == 0:
                    os.posix_fallocate(fd, 0, mmap_dict._INITIAL_MMAP_SIZE)
            finally:
                os.close(fd)
        super().__init__(filename, read_mode)  # type: ignore[no-untyped-call]

    def _init_value(self, key: str) -> Any:
        encoded = key.encode("utf-8")
        needed = self._used + _HEADER + len(encoded) + (8 - (len(encoded) + 4) % 8) + _VALUE
        capacity = self._capacity
        while needed > capacity:  # as the parent grows it: doubling
            capacity *= 2
        if capacity != self._capacity:
            os.posix_fallocate(self._f.fileno(), 0, capacity)
        return super()._init_value(key)  # type: ignore[no-untyped-call]


def install() -> None:
    """Make prometheus_client's multiprocess values use :class:`PreallocatedMmapedDict`."""
    setattr(values, "MmapedDict", PreallocatedMmapedDict)  # noqa: B010 - not a re-exported name
