"""The redaction step scrubs a known secret, however it is spelt, from every event."""

from __future__ import annotations

import pytest

from app.observability.redaction import REDACTED, Redactor

SECRET = "cust-0f1e2d3c-secret-uid"


@pytest.mark.parametrize("spelt", [SECRET, SECRET.upper(), SECRET.title()], ids=str.lower)
def test_a_secret_is_scrubbed_whatever_its_case(spelt: str) -> None:
    redactor = Redactor([SECRET])
    event = redactor(None, "warning", {"event": "x", "error": f"upstream said {spelt} is bad"})
    assert event["error"] == f"upstream said {REDACTED} is bad"
