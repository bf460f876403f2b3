"""The OIDC client against a provider that answers badly: a loopback HTTP server of the test's own.

The protocol against a real provider is tested in tests/e2e/sso; here each bad answer maps to
its typed error and status.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.identity.oidc import OidcClient, ProviderError, ProviderUnavailable, pkce_challenge

Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[str], Answer]], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[str], Answer]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, body = answer(self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def discovery(issuer: str, **changes: object) -> bytes:
    doc: dict[str, object] = {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/auth",
        "token_endpoint": issuer + "/token",
        "jwks_uri": issuer + "/jwks",
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    doc.update(changes)
    return json.dumps(doc).encode()


def client_for(issuer: str, **kwargs: object) -> OidcClient:
    options: dict[str, object] = {"timeout_s": 2, **kwargs}
    return OidcClient(issuer=issuer, client_id="c", client_secret="s", **options)  # type: ignore[arg-type]


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda issuer: (500, JSON, b"{}"), "answered 500"),
        (lambda issuer: (200, JSON, b"<html>"), "not JSON"),
        (lambda issuer: (200, JSON, b"[1]"), "not a JSON object"),
        (lambda issuer: (200, JSON, b" " * 70_000), "larger than"),
        (lambda issuer: (302, {"Location": "http://127.0.0.1:9/x"}, b""), "answered 302"),
        (lambda issuer: (200, JSON, discovery("http://other.example")), "names issuer"),
        (lambda issuer: (200, JSON, discovery(issuer, token_endpoint="ftp://x")), "token_endpoint"),
        (
            lambda issuer: (
                200,
                JSON,
                discovery(issuer, id_token_signing_alg_values_supported=["HS256", "none"]),
            ),
            "no asymmetric algorithm",
        ),
    ],
    ids=["500", "html", "array", "too-large", "redirect", "issuer", "endpoint", "hs-only"],
)
def test_a_bad_discovery_answer_is_a_502(
    serve: Callable[[Callable[[str], Answer]], str], answer: Callable[[str], Answer], message: str
) -> None:
    box: list[str] = []
    issuer = serve(lambda path: answer(box[0]))
    box.append(issuer)
    client = client_for(issuer, max_response_bytes=65_536)
    with pytest.raises(ProviderError, match=message) as failed:
        client.begin("http://127.0.0.1/cb")
    assert failed.value.status == 502


def test_the_algorithms_are_the_providers_asymmetric_ones(
    serve: Callable[[Callable[[str], Answer]], str],
) -> None:
    box: list[str] = []
    algs = ["none", "HS256", "RS256", "ES256", "PS256"]
    issuer = serve(lambda path: (200, JSON, discovery(box[0], id_token_signing_alg_values_supported=algs)))
    box.append(issuer)
    assert client_for(issuer).metadata().algorithms == ("RS256", "ES256", "PS256")
    assert client_for(issuer, algorithms=["ES256", "RS512"]).metadata().algorithms == ("ES256",)


def test_discovery_is_cached_and_the_last_good_document_outlives_an_outage(
    serve: Callable[[Callable[[str], Answer]], str],
) -> None:
    box: list[str] = []
    calls: list[str] = []
    up = [True]

    def answer(path: str) -> Answer:
        calls.append(path)
        return (200, JSON, discovery(box[0])) if up[0] else (503, JSON, b"{}")

    issuer = serve(answer)
    box.append(issuer)
    client = client_for(issuer, discovery_ttl_s=0)
    first = client.metadata()
    up[0] = False
    assert client.metadata() == first  # refetch failed: the last good one is kept
    assert len(calls) == 2
    cached = client_for(issuer)
    up[0] = True
    cached.metadata()
    cached.metadata()
    assert len(calls) == 3


def test_an_authorization_url_carries_state_nonce_and_pkce(
    serve: Callable[[Callable[[str], Answer]], str],
) -> None:
    from urllib.parse import parse_qs, urlsplit

    box: list[str] = []
    issuer = serve(
        lambda path: (200, JSON, discovery(box[0], authorization_endpoint=box[0] + "/auth?tenant=x"))
    )
    box.append(issuer)
    login = client_for(issuer, scopes=("profile",)).begin("http://127.0.0.1/cb")
    query = {k: v[0] for k, v in parse_qs(urlsplit(login.url).query).items()}
    assert query["tenant"] == "x" and query["scope"] == "openid profile"
    assert (query["state"], query["nonce"]) == (login.state, login.nonce)
    assert (
        query["code_challenge"] == pkce_challenge(login.code_verifier)
        and query["code_challenge_method"] == "S256"
    )
    assert len({login.state, login.nonce, login.code_verifier}) == 3 and len(login.code_verifier) >= 43


def test_pkce_challenge_matches_rfc_7636_appendix_b() -> None:
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_a_silent_port_is_a_503_within_the_timeout() -> None:
    import socket
    import time

    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = client_for(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as down:
            client.metadata()
        assert down.value.status == 503 and time.monotonic() - started < 3


def test_end_session_url_is_none_without_the_endpoint(
    serve: Callable[[Callable[[str], Answer]], str],
) -> None:
    box: list[str] = []
    issuer = serve(lambda path: (200, JSON, discovery(box[0])))
    box.append(issuer)
    assert client_for(issuer).end_session_url(id_token_hint="t", post_logout_redirect_url="http://x/") is None
