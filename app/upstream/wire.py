"""What ONEPlatform's answers and URLs carry, read and written the way the upstream
spells them: body keys in any case, ``operationCode`` as a number or as text, the
delta form of Retry-After, and ``DD-MM-YYYY`` dates in paths.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import httpx


def body_field(body: object, key: str) -> Any:
    """``body[key]`` with the key matched case-insensitively; None when absent."""
    if isinstance(body, dict):
        folded = key.casefold()
        for name, value in body.items():
            if isinstance(name, str) and name.casefold() == folded:
                return value
    return None


def operation_code(body: object) -> int | None:
    """The body's operationCode as an int (``300``, ``"300"``, ``300.0``), else None."""
    value = body_field(body, "operationCode")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
    return None


def retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the delta form; an HTTP date or nonsense gives None)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def wire_date(day: date) -> str:
    """``DD-MM-YYYY`` (``strftime('%Y')`` does not pad years before 1000)."""
    return f"{day.day:02d}-{day.month:02d}-{day.year:04d}"
