"""The README's API table is generated from the dialect tables and kept current."""

from __future__ import annotations

from pathlib import Path

from gateway.cli.apis import CATALOGUE
from gateway.docs import api_table, readme_is_current

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def test_readme_api_table_matches_the_tables() -> None:
    """Changing a dialect table without regenerating the README fails here."""
    assert readme_is_current(README), "run: python -m gateway.docs --write README.md"


def test_every_api_has_a_row() -> None:
    """Each catalogue API appears in the generated table."""
    table = api_table()
    assert all(f"`{name}`" in table for name in CATALOGUE)
