"""Signing keys and token makers for the authentication tests.

Keys are generated once per test session (RSA generation takes a moment). Tokens are
signed with PyJWT, except the deliberately broken ones (``alg: none``, HS256 keyed with
a public key) that PyJWT refuses to make: those are assembled by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HS_SECRET = "test-hs256-secret-that-is-long-enough-0123456789"


@dataclass(frozen=True)
class KeyPair:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    algorithm: str

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def public_jwk(self, kid: str, **extra: Any) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": kid, "use": "sig", **extra}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers=headers)


@cache
def rsa_keys(name: str = "a", bits: int = 2048) -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=bits), "RS256")


@cache
def ec_keys(name: str = "a") -> KeyPair:
    return KeyPair(ec.generate_private_key(ec.SECP256R1()), "ES256")


def sign_hs256(claims: dict[str, Any], secret: str = HS_SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(claims, separators=(",", ":")).encode())
    )


def unsigned_token(claims: dict[str, Any], alg: str = "none") -> str:
    """``alg: none`` with an empty signature."""
    return _segments({"alg": alg, "typ": "JWT"}, claims) + "."


def hs256_with_raw_key(claims: dict[str, Any], key: bytes, **headers: Any) -> str:
    """HS256 keyed with arbitrary bytes, such as a public key PEM (algorithm confusion)."""
    signing_input = _segments({"alg": "HS256", "typ": "JWT", **headers}, claims)
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)
