"""Secrets in every encoding the gateway accepts are masked everywhere (issue 22, findings 6, 7).

Before, the audit ``query`` was the raw query string scrubbed as free text, and free-text
scrubbing understood no percent-encoding: a connection URI sent percent-encoded (as every
HTTP client sends it) was recorded whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from gateway.core.redact import MASK, Redactor
from gateway.execution.subprocess_runner import NO_OPTIONS, CallOptions, CliResult
from gateway.observability.audit import AuditRecord
from tests.support import secrets as gen
from tests.unit.gateway_app import TOKEN, FakeRunner, UnitGateway, unit_gateway

AUTH = {"rest_api_plugin_http_token": TOKEN}


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        pytest.param("conn_uri=postgresql%3A%2F%2Fdbuser%3APa55word%40db.example", "Pa55word", id="reviewer"),
        pytest.param("conn_uri=postgresql%3A%2F%2Fdbuser%3APa55%40word%40db.example", "word", id="at-in-pw"),
        pytest.param("postgresql%3a%2f%2fdbuser%3aLowHex-Pw1%40db%2fx", "LowHex-Pw1", id="lower-hex"),
        pytest.param(
            "GET /x?conn_extra=%7B%22password%22%3A%22Xtra-Pw2%22%7D HTTP/1.1", "Xtra-Pw2", id="json-in-query"
        ),
        pytest.param("GET /x?q=a&api_key%3DKeyPw-3 HTTP/1.1", "KeyPw-3", id="encoded-pair"),
    ],
)
def test_text_masks_percent_encoded_secrets_by_structure(text: str, secret: str) -> None:
    masked = Redactor().text(text)
    assert secret not in masked and MASK in masked


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        pytest.param("set_value=my+plus+Secret4 done", "my plus Secret4", id="plus-for-space"),
        pytest.param("v=Pa%24%24w0rd%21x", "Pa$$w0rd!x", id="percent-upper"),
        pytest.param("v=pa%2fsl%c3%a9ash", "pa/sléash", id="percent-lower-utf8"),
        pytest.param('{"x":"ab\\"cd\\u00e9fgh"}', 'ab"cdéfgh', id="json-escaped"),
        pytest.param('--conn-extra {"k":"ab\\"cdéfgh"}', 'ab"cdéfgh', id="json-escaped-non-ascii"),
    ],
)
def test_text_masks_known_secrets_in_their_encoded_forms(text: str, secret: str) -> None:
    masked = Redactor().text(text, [secret])
    assert not gen.leaks(secret, {"text": masked}), masked


def test_query_is_decoded_masked_and_reencoded_the_same_for_every_encoding() -> None:
    """The reviewer's request: the password (with an "@") is masked, whatever the encoding."""
    pairs = (("api", "connections"), ("conn_uri", "postgresql://dbuser:Pa55@word@db.example/x y"))
    recorded = {
        Redactor().query(gen.encode_query(pairs, enc)) for enc in ("query-upper", "query-lower", "query-plus")
    }
    assert recorded == {"api=connections&conn_uri=postgresql://dbuser:***@db.example/x%20y"}


def test_query_masks_a_value_by_a_key_given_elsewhere() -> None:
    """``set_value`` in the query, the sensitive key ``set`` in the body: masked still."""
    context = {"set": ["db_password"], "set_value": ["ab"]}
    assert Redactor().query("api=variables&set_value=ab", context=context) == "api=variables&set_value=***"
    assert Redactor().arguments({"set_value": "ab"}, context=context) == {"set_value": MASK}


def test_query_keeps_what_is_not_secret() -> None:
    assert Redactor().query("dag_id=a.b-c&limit=10&q=x%2By") == "dag_id=a.b-c&limit=10&q=x%2By"
    assert Redactor().query("") == ""


@settings(max_examples=200, deadline=None, database=None)
@given(raw=st.text(alphabet="%25aF=&+;:/@\x00é\x80\udcff", max_size=40))
def test_query_never_raises(raw: str) -> None:
    """Malformed escapes, invalid UTF-8, lone surrogates: recorded, never an exception."""
    assert isinstance(Redactor().query(raw), str)


def test_a_stored_job_envelope_masks_exported_sensitive_variables() -> None:
    """Finding 7: ``variables export`` as a job kept every value in the job store."""
    record = AuditRecord(request_id="r" * 16, method="GET", path="/", remote_addr=None)
    record.secrets.add("Echoed-Secret9")
    body = {
        "data": {"db_password": "Exported-Pw8", "region": "eu", "api": {"value": "x", "description": "d"}},
        "output": {"stdout": "", "stderr": "error: Echoed-Secret9"},
        "warning": None,
    }
    stored = record.masked(body)
    assert stored["data"] == {"db_password": MASK, "region": "eu", "api": {"value": "x", "description": "d"}}
    assert "Echoed-Secret9" not in json.dumps(stored)


class EchoRunner(FakeRunner):
    """A CLI that prints what it was given (as Airflow's invalid-URI message does)."""

    def run(self, argv: Sequence[str], *, timeout_s: float, options: CallOptions = NO_OPTIONS) -> CliResult:
        self.calls.append(list(argv))
        line = " ".join(argv)
        return CliResult(0, f"given: {line}\n", f"error: {argv[-1]}\n", False, False, 0.01)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnitGateway]:
    with unit_gateway(tmp_path_factory.mktemp("encodings"), runner=EchoRunner()) as gw:
        yield gw


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    secret=gen.secrets(),
    kind=st.sampled_from(gen.KINDS),
    encoding=st.sampled_from(gen.ENCODINGS),
    lower=st.booleans(),
    ascii_json=st.booleans(),
)
def test_generated_secrets_in_every_encoding_appear_nowhere(
    gateway: UnitGateway, secret: str, kind: str, encoding: str, lower: bool, ascii_json: bool
) -> None:
    """In-process: the response, the audit event and every log line, for each carrier and encoding."""
    carrier = gen.carrier(kind, secret, "unit", lower=lower, ascii_json=ascii_json)
    sent = gen.request(carrier.args, encoding)
    gateway.out.seek(0)
    gateway.out.truncate()
    headers = {**AUTH, **({"Content-Type": sent.content_type} if sent.content_type else {})}
    reply = Client(gateway.app).open(
        f"/admin/rest_api/api?{sent.query}" if sent.query else "/admin/rest_api/api",
        method=sent.method, data=sent.body, headers=headers, buffered=True,
    )  # fmt: skip
    assert reply.status_code < 500, reply.text
    found = gen.leaks(
        carrier.secret, {"response": reply.get_data(as_text=True), "logs": gateway.out.getvalue()}
    )
    assert not found, (found, reply.text[:2000])


def test_the_percent_encoded_uri_of_the_finding_is_not_recorded(gateway: UnitGateway) -> None:
    """The reviewer's reproduction, through the app: ``query`` held the URI whole."""
    uri = quote("postgresql://dbuser:Pa55@word@db.example/app", safe="")
    gateway.out.seek(0)
    gateway.out.truncate()
    Client(gateway.app).get(
        f"/admin/rest_api/api?api=connections&add=true&conn_id=c1&conn_uri={uri}", headers=AUTH, buffered=True
    )
    [event] = gateway.events()
    assert "Pa55" not in json.dumps(event) and "word" not in json.dumps(event)
    assert (
        event["query"]
        == "api=connections&add=true&conn_id=c1&conn_uri=postgresql://dbuser:***@db.example/app"
    )


def _call(gateway: UnitGateway, query: str, form: dict[str, str] | None = None) -> tuple[str, str]:
    """(the answer, everything logged) of one call."""
    gateway.out.seek(0)
    gateway.out.truncate()
    client = Client(gateway.app)
    url = f"/admin/rest_api/api?{query}"
    reply = (
        client.post(url, data=form, headers=AUTH, buffered=True)
        if form
        else client.get(url, headers=AUTH, buffered=True)
    )
    return reply.get_data(as_text=True), gateway.out.getvalue()


def test_a_shell_quoted_secret_is_masked_in_airflow_cmd(gateway: UnitGateway) -> None:
    """``airflow_cmd`` is shell-quoted: a ``'`` became ``'"'"'`` and hid the secret from masking."""
    extra = json.dumps({"password": "JQX'ZKVW'QXZ"})
    answer, logged = _call(
        gateway, f"api=connections&add=true&conn_id=c1&conn_type=http&conn_extra={quote(extra)}"
    )
    assert not gen.leaks("JQX'ZKVW'QXZ", {"answer": answer, "logs": logged})
    assert json.loads(answer)["airflow_cmd"].startswith("airflow connections add")


def test_a_variable_value_in_the_body_with_its_key_in_the_query_is_masked(gateway: UnitGateway) -> None:
    """``post_arguments`` were masked knowing the body only: the value of ``db_password`` was echoed."""
    answer, logged = _call(gateway, "api=variables&set=db_password", {"set_value": "JQXZ-ab1"})
    assert json.loads(answer)["post_arguments"] == {"set_value": MASK}
    assert not gen.leaks("JQXZ-ab1", {"answer": answer, "logs": logged})


def test_an_unencoded_uri_password_with_a_hash_is_masked_whole(gateway: UnitGateway) -> None:
    """A "#" or "?" sent unencoded in a password no longer ends it for masking."""
    uri = quote("postgresql://dbuser:JQ#XZ?KV@db.example/app", safe="")
    answer, logged = _call(gateway, f"api=connections&add=true&conn_id=c1&conn_uri={uri}")
    assert not gen.leaks("JQ#XZ?KV", {"answer": answer, "logs": logged})


def test_a_short_secret_value_is_masked_in_argv_and_airflow_cmd(gateway: UnitGateway) -> None:
    """Values shorter than 4 characters are masked where they are a whole argv element."""
    answer, logged = _call(gateway, "api=variables&set=db_password&set_value=ab1")
    [event] = gateway.events()
    assert json.loads(answer)["airflow_cmd"] == "airflow variables set -- db_password '***'"
    assert event["argv"][-2:] == ["db_password", MASK]
