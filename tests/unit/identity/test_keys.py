"""Verification keys: a usable JWKS member becomes a key pinned to its algorithm;
private, encryption, mismatched and weak keys are skipped; a configured PEM key or
certificate must be RSA (>= 2048 bits) or P-256, and its error names the setting only."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.identity.keys import jwk_key, load_public_key
from tests.support.jwt_keys import ec_keys, rsa_keys


def test_an_rsa_member_verifies_rs256_only() -> None:
    key = jwk_key(rsa_keys().public_jwk("rsa-1"))
    assert key is not None
    assert (key.algorithm, key.kid) == ("RS256", "rsa-1")


def test_a_p256_member_verifies_es256_only() -> None:
    key = jwk_key(ec_keys().public_jwk("ec-1"))
    assert key is not None
    assert (key.algorithm, key.kid) == ("ES256", "ec-1")


def test_a_member_without_a_kid_is_kept_without_one() -> None:
    member = rsa_keys().public_jwk("rsa-1")
    del member["kid"]
    key = jwk_key(member)
    assert key is not None
    assert key.kid is None


def _p384_member() -> dict[str, Any]:
    member = ec_keys().public_jwk("ec-1")
    return {**member, "crv": "P-384"}


@pytest.mark.parametrize(
    "member",
    [
        {**rsa_keys().public_jwk("rsa-1"), "d": "private"},
        rsa_keys().public_jwk("rsa-1", use="enc"),
        rsa_keys().public_jwk("rsa-1", alg="ES256"),
        rsa_keys("weak", bits=1024).public_jwk("rsa-weak"),
        _p384_member(),
        {"kty": "oct", "k": "c2VjcmV0"},
        {**rsa_keys().public_jwk("rsa-1"), "n": "not base64url!"},
        "not-an-object",
    ],
    ids=[
        "private",
        "encryption",
        "alg-of-other-type",
        "rsa-1024",
        "p-384",
        "symmetric",
        "unreadable",
        "not-an-object",
    ],
)
def test_unusable_members_are_skipped(member: object) -> None:
    assert jwk_key(member) is None


def _certificate_pem() -> str:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_a_pem_public_key_and_a_certificate_are_read() -> None:
    assert load_public_key(rsa_keys().public_pem).algorithm == "RS256"
    assert load_public_key(_certificate_pem()).algorithm == "ES256"


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("not a key", "AUTH_JWT_PUBLIC_KEY is not a readable PEM public key"),
        (rsa_keys("weak", bits=1024).public_pem, "must be an RSA (>= 2048 bits) or P-256 key"),
    ],
    ids=["unreadable", "rsa-1024"],
)
def test_an_unusable_configured_key_is_refused(pem: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        load_public_key(pem)
    assert pem not in str(raised.value)
