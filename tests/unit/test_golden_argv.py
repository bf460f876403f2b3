"""The interpreter turns each API call into exactly the golden argv, on every dialect."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import Interpreter, Plan
from gateway.cli.spec import Translation, Unavailable
from tests.unit.golden import FILES, GOLDEN

CASES = [
    pytest.param(dialect, api, args, argv, id=f"af{dialect}-{api}-{i}")
    for dialect, cases in GOLDEN.items()
    for i, (api, args, argv) in enumerate(cases)
]


def interpreter(dialect: str) -> Interpreter:
    return Interpreter(
        DIALECTS[dialect],
        CATALOGUE,
        executable="airflow",
        files_dir=Path(FILES),
        distributions=frozenset({"apache-airflow-providers-celery", "celery", "flower"}),
    )


@pytest.mark.parametrize(("dialect", "api", "args", "argv"), CASES)
def test_golden_argv(dialect: str, api: str, args: dict[str, str], argv: list[str]) -> None:
    """Each request becomes exactly the expected argv, values as single elements."""
    plan = interpreter(dialect).plan(api, {k: [v] for k, v in args.items()})
    assert isinstance(plan, Plan)
    assert list(plan.argv) == ["airflow", *argv]


@pytest.mark.parametrize("dialect", sorted(GOLDEN))
def test_every_cli_api_has_a_golden_case(dialect: str) -> None:
    """No CLI translation in a table escapes the golden tests."""
    covered = {api for api, _, _ in GOLDEN[dialect]}
    translated = {name for name, entry in DIALECTS[dialect].table.items() if isinstance(entry, Translation)}
    assert translated - covered == set()


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_catalogue_api_is_in_every_table(dialect: str) -> None:
    """Each API is translated, answered in-process, or explained as unavailable."""
    assert set(DIALECTS[dialect].table) == set(CATALOGUE)


@pytest.mark.parametrize(
    ("dialect", "api"),
    [
        pytest.param("3", "run", id="af3-run"),
        pytest.param("3", "serve_logs", id="af3-serve_logs"),
        pytest.param("2", "serve_logs", id="af2-serve_logs"),
    ],
)
def test_unavailable_apis_name_their_replacement(dialect: str, api: str) -> None:
    """An API with no equivalent is a 400 that says what replaced it."""
    entry = DIALECTS[dialect].table[api]
    assert isinstance(entry, Unavailable)
    with pytest.raises(Exception) as info:
        interpreter(dialect).plan(
            api, {"dag_id": ["d"], "task_id": ["t"], "execution_date": ["2026-01-01"]} if api == "run" else {}
        )
    assert "api=" in str(info.value) or "scheduler" in str(info.value)
