"""Upload and subfolder arguments in the interpreter (gateway.cli.values, gateway.cli.interpreter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import BuiltinCall, Interpreter, PlanError
from gateway.cli.spec import Kind
from gateway.cli.values import InvalidValue, Upload, validate


def interpreter() -> Interpreter:
    return Interpreter(DIALECTS["3"], CATALOGUE, executable="/x/bin/airflow", files_dir=Path("/nonexistent"))


def test_deploy_plan_takes_the_file_from_the_uploads() -> None:
    """A multipart file becomes the dag_file value of a builtin call."""
    call = interpreter().plan("deploy_dag", {"force": ["on"]}, {"dag_file": [Upload("a.py", b"x = 1")]})
    assert isinstance(call, BuiltinCall)
    assert call.values["dag_file"] == Upload("a.py", b"x = 1") and call.values["force"] is True


@pytest.mark.parametrize(
    ("args", "uploads", "message"),
    [
        pytest.param({}, {}, "missing required argument", id="no-file"),
        pytest.param({"dag_file": ["x = 1"]}, {}, "multipart", id="file-as-text"),
        pytest.param({}, {"force": [Upload("a.py", b"")]}, "must be a form field", id="file-for-bool"),
        pytest.param({}, {"other": [Upload("a.py", b"")]}, "unknown file argument", id="unknown-file"),
        pytest.param(
            {}, {"dag_file": [Upload("a.py", b""), Upload("b.py", b"")]}, "more than once", id="two-files"
        ),
    ],
)
def test_bad_uploads_are_plan_errors(
    args: dict[str, list[str]], uploads: dict[str, list[Upload]], message: str
) -> None:
    """Files only go to upload arguments, once, and text never stands in for a file."""
    with pytest.raises(PlanError, match=message):
        interpreter().plan("deploy_dag", args, uploads)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("../x", id="dotdot"),
        pytest.param("/etc", id="absolute"),
        pytest.param("a//b", id="empty-part"),
        pytest.param("a\\b", id="backslash"),
        pytest.param(".git", id="hidden"),
        pytest.param("a/b/c/d/e", id="too-deep"),
        pytest.param("t\u0435am", id="look-alike"),
    ],
)
def test_bad_subfolders_are_refused(raw: str) -> None:
    """A subfolder is up to 4 plain ASCII names joined by '/'."""
    with pytest.raises(InvalidValue):
        validate(Kind.SUBFOLDER, raw)


def test_good_subfolder() -> None:
    """A nested relative folder is accepted as is."""
    assert validate(Kind.SUBFOLDER, "team_a/etl-2") == "team_a/etl-2"


def test_invalid_daemon_id_is_a_clear_error_not_a_crash() -> None:
    """A malformed daemon id is an InvalidValue (schemathesis found an IndexError here)."""
    with pytest.raises(InvalidValue, match="not a valid daemon id"):
        validate(Kind.DAEMON_ID, "0")
