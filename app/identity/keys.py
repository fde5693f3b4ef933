"""Verification keys for JWTs, each pinned to the one algorithm it may verify: the
shared HS256 secret, a configured PEM public key or certificate (RSA >= 2048 bits or
P-256), and the usable signature keys of a JWKS (published private keys, keys for
other uses and keys whose type and ``alg`` disagree are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MIN_RSA_KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One verification key and the only algorithm it may verify."""

    algorithm: Literal["HS256", "RS256", "ES256"]
    key: Any  # bytes for HS256, a cryptography public key otherwise
    kid: str | None = None


def public_key_algorithm(key: object) -> Literal["RS256", "ES256"] | None:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_KEY_BITS:
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    return None


def load_public_key(pem: str) -> VerificationKey:
    data = pem.strip().encode()
    try:
        if b"BEGIN CERTIFICATE" in data:
            key: object = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError("AUTH_JWT_PUBLIC_KEY is not a readable PEM public key") from exc
    algorithm = public_key_algorithm(key)
    if algorithm is None:
        raise ValueError("AUTH_JWT_PUBLIC_KEY must be an RSA (>= 2048 bits) or P-256 key")
    return VerificationKey(algorithm=algorithm, key=key)


def jwk_key(data: object) -> VerificationKey | None:
    """A usable signature key from one JWKS member, or None to skip it."""
    if not isinstance(data, dict) or "d" in data:  # never accept published private keys
        return None
    if data.get("use", "sig") != "sig":
        return None
    algorithm: Literal["RS256", "ES256"]
    if data.get("kty") == "RSA":
        algorithm = "RS256"
    elif data.get("kty") == "EC" and data.get("crv") == "P-256":
        algorithm = "ES256"
    else:
        return None
    if data.get("alg", algorithm) != algorithm:
        return None
    try:
        key = jwt.PyJWK(data, algorithm=algorithm).key
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if public_key_algorithm(key) != algorithm:
        return None
    kid = data.get("kid")
    return VerificationKey(algorithm=algorithm, key=key, kid=kid if isinstance(kid, str) else None)
