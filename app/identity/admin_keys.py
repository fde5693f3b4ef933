"""The admin API's own keys (``ADMIN_API_KEYS``), presented as ``X-Admin-Key``.

Kept apart from the link API keys: settings refuse a key listed in both, and this
check knows only the admin keys, so a link key never opens ``/admin``. Keys are
compared as SHA-256 digests, every key every time (no early exit).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr

HEADER = "X-Admin-Key"


class AdminKeys:
    def __init__(self, keys: Sequence[SecretStr]) -> None:
        self._digests = [hashlib.sha256(k.get_secret_value().encode()).digest() for k in keys]

    def allows(self, presented: str | None) -> bool:
        return self.match(presented) is not None

    def match(self, presented: str | None) -> int | None:
        """The position (from 1) of the key presented in ``ADMIN_API_KEYS``, for the
        audit trail; None when it is none of them."""
        if not presented or not self._digests:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        matched = 0
        for position, known in enumerate(self._digests, start=1):
            if hmac.compare_digest(digest, known):  # every key compared, no early exit
                matched = matched or position
        return matched or None
