"""Signing keys generated per test session, and a loopback JWKS server with rotation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Response


@dataclass(frozen=True)
class KeyPair:
    """A private key, its public PEM and its JWK (with ``kid``)."""

    alg: str
    kid: str
    private: Any

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def jwk(self) -> dict[str, Any]:
        algo = jwt.get_algorithm_by_name(self.alg)
        data = json.loads(algo.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "use": "sig"}

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **headers})


def rsa_key(kid: str, alg: str = "RS256") -> KeyPair:
    return KeyPair(alg, kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> KeyPair:
    return KeyPair("ES256", kid, ec.generate_private_key(ec.SECP256R1()))


def ed_key(kid: str) -> KeyPair:
    return KeyPair("EdDSA", kid, ed25519.Ed25519PrivateKey.generate())


@dataclass
class JwksServer:
    """A loopback JWKS endpoint; ``keys`` can be swapped mid-test; ``fetches`` counts GETs."""

    url: str = ""
    keys: list[dict[str, Any]] = field(default_factory=list)
    fetches: int = 0
    fail: bool = False

    def wsgi(self, environ: Any, start_response: Any) -> Any:
        self.fetches += 1
        if self.fail:
            return Response("down", status=500)(environ, start_response)
        body = json.dumps({"keys": self.keys})
        return Response(body, mimetype="application/json")(environ, start_response)


@contextmanager
def jwks_server(keys: list[KeyPair]) -> Iterator[JwksServer]:
    """Serve ``keys`` as a JWKS on 127.0.0.1 in a thread."""
    state = JwksServer(keys=[k.jwk for k in keys])
    server = make_server("127.0.0.1", 0, state.wsgi, threaded=True)
    state.url = f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        thread.join(timeout=5)
