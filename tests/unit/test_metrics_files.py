"""gateway.observability.multiprocess_files against the installed prometheus_client (its internals are pinned here)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
from prometheus_client import mmap_dict, values

from gateway.observability import multiprocess_files as metrics_files
from gateway.observability.multiprocess_files import PreallocatedMmapedDict


def test_the_prometheus_client_internals_it_relies_on_are_there() -> None:
    """Fails loudly when an upgrade changes what the preallocation reproduces or replaces."""
    assert isinstance(mmap_dict._INITIAL_MMAP_SIZE, int)
    source = inspect.getsource(mmap_dict.MmapedDict._init_value)
    assert "self._capacity *= 2" in source and "(8 - (len(encoded) + 4) % 8)" in source
    assert "MmapedDict(filename)" in inspect.getsource(values.MultiProcessValue)
    metrics_files.install()
    assert values.MmapedDict is PreallocatedMmapedDict


def test_files_are_allocated_not_sparse(tmp_path: Path) -> None:
    """Every byte of the mapping has a block before it is written (a full disk: OSError, not SIGBUS)."""
    path = tmp_path / "counter_1.db"
    store = PreallocatedMmapedDict(str(path))
    for i in range(2000):  # grows the file several times
        store.write_value(f"key-{i:04d}-" + "x" * 40, float(i), 0.0)
    size = os.stat(path).st_size
    assert size > mmap_dict._INITIAL_MMAP_SIZE
    assert os.stat(path).st_blocks * 512 >= size
    assert os.stat(path).st_mode & 0o777 == 0o600
    store.close()


def test_no_space_is_an_oserror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    store = PreallocatedMmapedDict(str(tmp_path / "counter_2.db"))
    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError, match="No space"):
        for i in range(2000):
            store.write_value(f"key-{i}-" + "x" * 40, 1.0, 0.0)
    store.close()
