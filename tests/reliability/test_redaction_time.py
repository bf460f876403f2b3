"""Redaction costs time linear in its input, whatever the input (issue 13, findings 1 and 8).

The old patterns were quadratic: 64 KiB of one of these shapes took seconds, and matching
holds the GIL, so a whole worker froze.  The bound is generous (half a second plus 4 ms per
KiB, against ~1 ms/KiB measured for the worst shape) so a loaded CI machine cannot flake
it, and still an order of magnitude under the old cost.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from gateway.core.redact import MASK, MAX_SECRETS, Redactor
from tests.unit.gateway_app import TOKEN, FakeRunner, unit_gateway

AUTH = {"rest_api_plugin_http_token": TOKEN}

pytestmark = pytest.mark.reliability

KIB = 1024
SIZE = 64 * KIB
# Pieces of every form redaction recognises, and what breaks each form off midway.
FRAGMENTS = [
    "a", "Z9", "-", ".", "_", "://", ":", "@", "/", "?", "=", "&", " ", "\t", '"', "'", "password",
    "api_key", "token", "Bearer ", "basic", "postgres://", "u:", "%40", "{", "}", ",", ";", "é",
]  # fmt: skip


def _budget_s(text: str) -> float:
    return 0.5 + 0.004 * len(text) / KIB


def _redact_every_way(redactor: Redactor, text: str) -> float:
    """Every entry point a request's value goes through; returns the seconds taken."""
    t0 = time.perf_counter()
    redactor.text(text)
    redactor.text(text, ["secret-value"])
    redactor.arguments({"conn_uri": [text], "conf": [text]})
    redactor.secrets_in({"conn_uri": [text], "password": [text]})
    redactor.argv(["airflow", "connections", "add", f"--conn-uri={text}"])
    redactor.value({"event": text})
    redactor.query(text, ["secret-value"], {"set": ["db_password"]})
    redactor.text(quote(text, safe=""))  # percent-encoded: read through its decoded form
    return time.perf_counter() - t0


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(unit=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=4), tail=st.sampled_from(FRAGMENTS))
def test_adversarial_repetitions_cost_linear_time(unit: list[str], tail: str) -> None:
    """A short unit repeated to 64 KiB (the shape that defeats backtracking), plus a tail."""
    piece = "".join(unit)
    text = piece * (SIZE // len(piece)) + tail
    assert _redact_every_way(Redactor(), text) < _budget_s(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * SIZE + "://", id="long-scheme"),
        pytest.param("a://b:" * (SIZE // 6), id="uris-without-at"),
        pytest.param("x" * SIZE + "=", id="long-name"),
        pytest.param("password" * (SIZE // 8), id="sensitive-word-run"),
        pytest.param("a-" * (SIZE // 2) + "password", id="dashed-run"),
        pytest.param("http://u:" + "@" * SIZE, id="at-signs"),
    ],
)
def test_known_quadratic_shapes(text: str) -> None:
    """The shapes that took the old patterns seconds (found by reading them)."""
    assert _redact_every_way(Redactor(), text) < _budget_s(text)


def test_time_grows_linearly() -> None:
    """8x the input costs at most ~8x the time (a quadratic scan costs 64x)."""
    redactor = Redactor()

    def best_of(text: str) -> float:
        return min(_redact_every_way(redactor, text) for _ in range(3))

    small, large = best_of("a://b:" * (SIZE // 48)), best_of("a://b:" * (SIZE // 6))
    assert large < 24 * small + 0.05


@settings(max_examples=200, deadline=None, database=None)
@given(
    user=st.text("abcdefghij_", min_size=0, max_size=8),
    password=st.text("abcXYZ0189-_.~!$@:/%", min_size=1, max_size=24).filter(
        lambda p: len(p.replace("@", "")) >= 4 and not p.startswith("@")
    ),
)
def test_uri_passwords_are_masked_whole(user: str, password: str) -> None:
    """A URI password is masked whole, even containing '@' (finding 8), in text and as a secret."""
    redactor = Redactor()
    uri = f"postgresql://{user}:{password}@db.example:5432/airflow"
    masked = redactor.text(f"connect to {uri} failed")
    assert masked == f"connect to postgresql://{user}:{MASK}@db.example:5432/airflow failed"
    assert password in redactor.secrets_in({"conn_uri": [uri]})


def test_an_encoded_at_sign_is_masked_too() -> None:
    redactor = Redactor()
    uri = f"mysql://dbuser:{quote('pass@word99xyz', safe='')}@db.example/x"
    assert redactor.text(uri) == f"mysql://dbuser:{MASK}@db.example/x"
    assert "pass@word99xyz" in redactor.secrets_in({"conn_uri": [uri]})


def test_a_call_with_too_many_secret_values_is_refused_413(tmp_path: Path) -> None:
    """Each free-text scrub checks every secret value: their number is bounded, before any scrub."""
    extra = json.dumps({f"k{i}": f"secret-leaf-{i:04d}" for i in range(MAX_SECRETS + 1)})
    args = {"api": "connections", "add": "true", "conn_id": "c1", "conn_type": "http", "conn_extra": extra}
    runner = FakeRunner()
    with unit_gateway(tmp_path, runner=runner) as gw:
        reply = Client(gw.app).post("/admin/rest_api/api", data=args, headers=AUTH, buffered=True)
    assert reply.status_code == 413 and runner.calls == []
    assert "secret-leaf" not in reply.get_data(as_text=True)
