"""Upload safety: names, zip vetting and atomic placement (gateway.dags.files)."""

from __future__ import annotations

import io
import os
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from gateway.dags.files import TEMP_PREFIX, RefusedUpload, check_zip, place, safe_name


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (links not followed), relative."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("my_dag.py", "my_dag.py", id="plain"),
        pytest.param("../../etc/evil.py", "evil.py", id="dotdot-reduced"),
        pytest.param("/etc/cron.d/evil.py", "evil.py", id="absolute-reduced"),
        pytest.param("..\\..\\windows\\evil.py", "evil.py", id="backslashes-reduced"),
        pytest.param("dags.zip", "dags.zip", id="zip"),
    ],
)
def test_names_are_reduced_to_a_base_name(raw: str, expected: str) -> None:
    """Directory parts (/, \\, ..) are dropped; the base name is kept."""
    assert safe_name(raw, allow_zip=True).name == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("evil\x00.py", id="nul"),
        pytest.param("dag.py.txt", id="not-py"),
        pytest.param("dag.txt.py", id="double-extension"),
        pytest.param("dag.py.py", id="double-py"),
        pytest.param(".hidden.py", id="hidden"),
        pytest.param("..", id="dotdot"),
        pytest.param("../", id="dotdot-slash"),
        pytest.param("", id="empty"),
        pytest.param("-rf.py", id="leading-dash"),
        pytest.param("d\u0430g.py", id="cyrillic-a"),
        pytest.param("dag\uff0epy", id="fullwidth-dot"),
        pytest.param("dag\u2024py", id="one-dot-leader"),
        pytest.param("evil\u2215x.py", id="division-slash"),
        pytest.param("dag.PY", id="upper-ext"),
        pytest.param("dag .py", id="space"),
        pytest.param("a" * 200 + ".py", id="too-long"),
    ],
)
def test_bad_names_are_refused_not_transliterated(raw: str) -> None:
    """Anything outside [A-Za-z0-9_-] plus one .py/.zip extension is refused with a 400."""
    with pytest.raises(RefusedUpload) as caught:
        safe_name(raw, allow_zip=True)
    assert caught.value.status == 400


def test_zip_refused_when_disabled() -> None:
    """deploy.allow_zip = false refuses .zip names."""
    with pytest.raises(RefusedUpload, match="allow_zip"):
        safe_name("x.zip", allow_zip=False)


def make_zip(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param({"../evil.py": b"x = 1"}, id="zip-slip-dotdot"),
        pytest.param({"a/../../evil.py": b"x = 1"}, id="zip-slip-nested"),
        pytest.param({"/etc/evil.py": b"x = 1"}, id="absolute"),
        pytest.param({"..\\evil.py": b"x = 1"}, id="backslash"),
        pytest.param({"C:/evil.py": b"x = 1"}, id="drive-letter"),
        pytest.param({"d\u0430g.py": b"x = 1"}, id="non-ascii"),
        pytest.param({"notes.txt": b"hello"}, id="no-python"),
    ],
)
def test_unsafe_zips_are_refused(entries: dict[str, bytes]) -> None:
    """Zip entries that could escape a folder (or zips without DAG code) are refused."""
    with pytest.raises(RefusedUpload):
        check_zip(make_zip(entries), max_entries=10, max_unzipped_bytes=1 << 20)


def test_zip_symlink_entry_is_refused() -> None:
    """A symbolic-link entry is refused."""
    data = make_zip({"dag.py": b"x = 1"}, symlink="link.py")
    with pytest.raises(RefusedUpload, match="symbolic link"):
        check_zip(data, max_entries=10, max_unzipped_bytes=1 << 20)


def test_zip_bomb_is_refused_by_measured_size() -> None:
    """The unpacked size is measured by decompressing with a bound, not read from headers."""
    data = make_zip({"dag.py": b"#" * (2 << 20)})
    assert len(data) < 20_000
    with pytest.raises(RefusedUpload, match="unpacks to more than"):
        check_zip(data, max_entries=10, max_unzipped_bytes=1 << 20)


def test_zip_entry_count_and_garbage() -> None:
    """Too many entries, or bytes that are not a zip, are refused."""
    with pytest.raises(RefusedUpload, match="more than 2 entries"):
        check_zip(
            make_zip({"a.py": b"", "b.py": b"", "c.py": b""}), max_entries=2, max_unzipped_bytes=1 << 20
        )
    with pytest.raises(RefusedUpload, match="not a valid zip"):
        check_zip(b"PK\x03\x04 not really", max_entries=2, max_unzipped_bytes=1 << 20)


def test_good_zip_lists_its_modules() -> None:
    """A packaged DAG zip passes and its .py members are listed."""
    data = make_zip({"pkg/__init__.py": b"", "my_dag.py": b"x = 1", "sql/q.sql": b"select 1"})
    assert check_zip(data, max_entries=10, max_unzipped_bytes=1 << 20) == ["pkg/__init__.py", "my_dag.py"]


def test_place_writes_inside_and_refuses_existing(tmp_path: Path) -> None:
    """A new name is written; the same name again needs replace (409 otherwise), leaving no temp file."""
    root = tmp_path / "dags"
    root.mkdir()
    path = place(root, None, "a.py", b"one", replace=False)
    assert path == root / "a.py" and path.read_bytes() == b"one"
    with pytest.raises(RefusedUpload) as caught:
        place(root, None, "a.py", b"two", replace=False)
    assert caught.value.status == 409 and path.read_bytes() == b"one"
    place(root, None, "a.py", b"two", replace=True)
    assert path.read_bytes() == b"two"
    assert tree(root) == {"a.py"}


def test_place_subfolder_is_created_inside(tmp_path: Path) -> None:
    """A subfolder is created under the root."""
    root = tmp_path / "dags"
    root.mkdir()
    place(root, "team/etl", "a.py", b"x", replace=False)
    assert tree(root) == {"team", "team/etl", "team/etl/a.py"}


def test_symlinked_subfolder_is_refused(tmp_path: Path) -> None:
    """A subfolder that is a symbolic link to elsewhere is refused; nothing is written there."""
    root, outside = tmp_path / "dags", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "team").symlink_to(outside)
    with pytest.raises(RefusedUpload, match="symbolic link"):
        place(root, "team", "a.py", b"x", replace=False)
    assert tree(outside) == set()


def test_symlinked_target_name_is_replaced_not_followed(tmp_path: Path) -> None:
    """A link named like the upload is refused without force and swapped (not followed) with it."""
    root, outside = tmp_path / "dags", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    victim = outside / "victim.py"
    victim.write_bytes(b"original")
    (root / "a.py").symlink_to(victim)
    with pytest.raises(RefusedUpload):
        place(root, None, "a.py", b"evil", replace=False)
    place(root, None, "a.py", b"evil", replace=True)
    assert victim.read_bytes() == b"original"
    assert not (root / "a.py").is_symlink() and (root / "a.py").read_bytes() == b"evil"


def test_folder_with_upload_name_is_not_replaced(tmp_path: Path) -> None:
    """A folder named like the upload is never replaced."""
    root = tmp_path / "dags"
    (root / "a.py").mkdir(parents=True)
    with pytest.raises(RefusedUpload) as caught:
        place(root, None, "a.py", b"x", replace=True)
    assert caught.value.status == 409
    assert tree(root) == {"a.py"}


def test_concurrent_places_leave_one_complete_file(tmp_path: Path) -> None:
    """Racing writers of one name leave exactly one complete file and no temporary files."""
    root = tmp_path / "dags"
    root.mkdir()
    payloads = [bytes([65 + i]) * 300_000 for i in range(8)]
    outcomes: list[str] = []

    def write(data: bytes) -> None:
        try:
            place(root, None, "race.py", data, replace=False)
            outcomes.append("written")
        except RefusedUpload:
            outcomes.append("refused")

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count("written") == 1
    assert (root / "race.py").read_bytes() in payloads
    assert not any(name.startswith(TEMP_PREFIX) for name in tree(root))
