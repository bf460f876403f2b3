"""Uploaded DAG files: safe names, zip vetting and atomic placement inside one folder.

Nothing here imports or runs the uploaded code.  Every write goes through directory file
descriptors opened with ``O_NOFOLLOW``, so no name, ``..`` or symbolic link can move a
write outside the DAGs folder.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.core.errors import Refused

# ASCII only, one dot: no hidden files, no double extensions, no look-alike characters.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,127}\.(py|zip)")
_ZIP_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
TEMP_PREFIX = ".deploy-"


class RefusedUpload(Refused):
    """The upload cannot be deployed; ``message`` is safe to show, ``status`` is the HTTP code."""


@dataclass(frozen=True, slots=True)
class SafeName:
    """The name the file is written under, and whether the client's name had to be cut down."""

    name: str
    reduced: bool

    @property
    def is_zip(self) -> bool:
        return self.name.endswith(".zip")


def safe_name(raw: str, *, allow_zip: bool) -> SafeName:
    """Reduce a client file name to its base name and check it against the allow-list.

    :raises RefusedUpload: for a NUL, a disallowed character or extension (never transliterated).
    """
    if "\x00" in raw:
        raise RefusedUpload("the file name contains a NUL character")
    base = re.split(r"[/\\]", raw)[-1]
    if not _NAME.fullmatch(base):
        kinds = ".py or .zip" if allow_zip else ".py"
        raise RefusedUpload(
            f"the file name must be letters, digits, '_' and '-' with one {kinds} extension "
            "(e.g. my_dag.py; no other characters, no double extensions)"
        )
    if base.endswith(".zip") and not allow_zip:
        raise RefusedUpload("zip uploads are disabled on this gateway (deploy.allow_zip)")
    return SafeName(base, reduced=base != raw)


def check_zip(data: bytes, *, max_entries: int, max_unzipped_bytes: int) -> list[str]:
    """Vet a packaged-DAG zip without extracting it; returns its ``.py`` members.

    Refuses entries that could escape a folder if anyone extracted them (absolute, ``..``,
    backslashes, drive letters), symbolic links, encryption, and zip bombs (sizes are
    measured by decompressing with a bound, not read from the headers).

    :raises RefusedUpload: naming the first problem.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise RefusedUpload("the .zip file is not a valid zip archive") from None
    with archive:
        infos = archive.infolist()
        if not infos:
            raise RefusedUpload("the .zip file is empty")
        if len(infos) > max_entries:
            raise RefusedUpload(f"the .zip file has more than {max_entries} entries")
        budget = max_unzipped_bytes
        modules: list[str] = []
        for info in infos:
            name = info.filename
            parts = name.rstrip("/").split("/")
            if "\\" in name or name.startswith("/") or not all(_ZIP_PART.fullmatch(p) for p in parts):
                raise RefusedUpload(
                    "a .zip entry has an unsafe path (absolute, '..', backslash, hidden or non-ASCII names)"
                )
            if stat.S_ISLNK(info.external_attr >> 16):
                raise RefusedUpload("the .zip file contains a symbolic link")
            if info.flag_bits & 0x1:
                raise RefusedUpload("the .zip file is encrypted")
            if info.is_dir():
                continue
            try:
                with archive.open(info) as member:
                    size = len(member.read(budget + 1))
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError):
                raise RefusedUpload(
                    "a .zip entry cannot be read (corrupt or unsupported compression)"
                ) from None
            budget -= size
            if budget < 0:
                raise RefusedUpload(f"the .zip file unpacks to more than {max_unzipped_bytes} bytes")
            if name.endswith(".py"):
                modules.append(name)
        if not modules:
            raise RefusedUpload("the .zip file holds no .py file")
        return modules


@contextlib.contextmanager
def _dir_fd(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _descend(fd: int, subfolder: str | None) -> int:
    """Open (creating as needed) ``subfolder`` under ``fd``, refusing symbolic links."""
    current = os.dup(fd)
    for part in subfolder.split("/") if subfolder else ():
        try:
            os.mkdir(part, 0o755, dir_fd=current)
        except FileExistsError:
            pass
        try:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
        except OSError:
            os.close(current)
            raise RefusedUpload(
                f"the subfolder '{subfolder}' cannot be used: "
                "a part of it is a symbolic link or not a folder",
                status=409,
            ) from None
        os.close(current)
        current = child
    return current


def place(root: Path, subfolder: str | None, name: str, data: bytes, *, replace: bool) -> Path:
    """Write ``data`` as ``root/subfolder/name``: a temporary file in the same folder, then a rename.

    Without ``replace`` an existing name (file, folder or link) is never touched: the
    final step is ``link()``, which fails atomically if the name exists.  With ``replace``
    ``rename()`` swaps the entry itself (a symbolic link is replaced, not followed).

    :raises RefusedUpload: 409 if the name exists and ``replace`` is false, or is a folder.
    :raises OSError: when the folder cannot be written.
    """
    with _dir_fd(root) as root_fd:
        fd = _descend(root_fd, subfolder)
        try:
            temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
            out = os.open(
                temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd
            )
            try:
                with os.fdopen(out, "wb", closefd=True) as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                _commit(fd, temp, name, replace=replace)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=fd)
            os.fsync(fd)
        finally:
            os.close(fd)
    return root.joinpath(*(subfolder.split("/") if subfolder else ()), name)


def _commit(fd: int, temp: str, name: str, *, replace: bool) -> None:
    exists = f"a file named '{name}' already exists in the DAGs folder; send force=on to replace it"
    if replace:
        try:
            existing = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise RefusedUpload(f"'{name}' is a folder in the DAGs folder; it cannot be replaced", status=409)
        os.rename(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
        return
    try:
        os.link(temp, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
    except FileExistsError:
        raise RefusedUpload(exists, status=409) from None
