"""How this process reaches other servers over HTTP: ONEPlatform and the JWKS endpoint.

Both clients are ``httpx.AsyncClient``s with ``trust_env=True``, so both honour
``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``, and both trust the same
CAs: ``IGM_CA_BUNDLE`` when set, else httpx's default (certifi's bundle, or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when those are set).
"""

from __future__ import annotations

import ssl
from pathlib import Path


def tls_verify(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """What to pass as httpx's ``verify``: a context trusting only ``ca_bundle``'s CAs,
    or True for httpx's default. Built once in the lifespan and shared."""
    if ca_bundle is None:
        return True
    return ssl.create_default_context(cafile=str(ca_bundle))
