"""A cached list as the gateway serves it: pre-serialised bytes plus freshness.

A snapshot's ``body`` is the exact response body (``{"events": [...], "fetchedAt": ...}``),
encoded once with orjson when the list is fetched; reads send these bytes as they are.
The ETag is weak and covers the items only, so an unchanged list keeps its ETag across
refreshes and clients keep getting 304s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel


def iso_utc(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


ReadState = Literal["hit", "stale", "miss"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    name: str
    body: bytes
    etag: str
    fetched_at: float  # epoch seconds
    # ETag, Content-Type and Content-Length as ASGI headers, encoded once
    wire_headers: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers = (
            (b"etag", self.etag.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
        )
        object.__setattr__(self, "wire_headers", headers)

    def age(self, now: float) -> float:
        return max(0.0, now - self.fetched_at)


def encode_items(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") for item in items]


def make_snapshot(name: str, payload: dict[str, Any], fetched_at: float) -> Snapshot:
    """Encode ``{**payload, "fetchedAt": ...}`` once, with an ETag over ``payload``."""
    content = orjson.dumps(payload)
    etag = 'W/"' + hashlib.blake2b(content, digest_size=12).hexdigest() + '"'
    body = orjson.dumps({**payload, "fetchedAt": iso_utc(fetched_at)})
    return Snapshot(name=name, body=body, etag=etag, fetched_at=fetched_at)
