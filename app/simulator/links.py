"""Link minting: the validation rules of ``/api/stream/link`` and the transactions it mints.

``judge_link`` is pure and checks, in this order (the caller checks 300 and 303 first):
302 userId, 301 userIp, 401 event, 402/403/404 status, 304 stream name (a trailing
``-RAW`` is stripped first), 305 redirectUrl, 306 viewer region.

A raw link is base64 of ``"<transactionId>;<token>"``; ``/api/liveStream`` resolves it
back to the event and stream it was minted for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import random
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from app.simulator.events import SimEvent, SimStream
from app.simulator.geo import region_allows

RAW_SUFFIX: Final = "-RAW"
STATUS_CODES: Final[dict[str, int]] = {"P": 402, "C": 403, "V": 404}
MAX_TRANSACTIONS: Final = 200_000
_BASE36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """The link method's fields as received (absent ones None)."""

    user_id: str | None
    user_ip: str | None
    event_id: str | None
    stream_name: str | None
    redirect_url: str | None


@dataclass(frozen=True, slots=True)
class LinkVerdict:
    code: int
    event: SimEvent | None = None
    stream: SimStream | None = None
    raw: bool = False


def is_ip(value: str | None) -> bool:
    if value is None:
        return False
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


def is_redirect_url(value: str | None) -> bool:
    if not value:
        return False
    parts = urlsplit(value.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def split_raw(stream_name: str) -> tuple[str, bool]:
    """``"HLS-RAW"`` -> ``("HLS", True)``; ``"HLS"`` -> ``("HLS", False)``."""
    name = stream_name.strip()
    if name.upper().endswith(RAW_SUFFIX):
        return name[: -len(RAW_SUFFIX)], True
    return name, False


def judge_link(
    request: LinkRequest,
    event: SimEvent | None,
    status: str | None,
    viewer_country: str | None,
) -> LinkVerdict:
    """The operationCode a valid caller's link request earns (200 when it may be minted)."""
    if not request.user_id or not request.user_id.strip():
        return LinkVerdict(302)
    if not is_ip(request.user_ip):
        return LinkVerdict(301)
    if event is None:
        return LinkVerdict(401)
    if status in STATUS_CODES:
        return LinkVerdict(STATUS_CODES[status], event)
    name, raw = split_raw(request.stream_name or "")
    stream = event.stream(name) if name else None
    if stream is None:
        return LinkVerdict(304, event)
    if not is_redirect_url(request.redirect_url):
        return LinkVerdict(305, event, stream, raw)
    if not (
        region_allows(viewer_country, event.geo_allow, event.geo_block)
        and region_allows(viewer_country, stream.geo_allow, stream.geo_block)
    ):
        return LinkVerdict(306, event, stream, raw)
    return LinkVerdict(200, event, stream, raw)


@dataclass(frozen=True, slots=True)
class Transaction:
    transaction_id: str
    token: str
    event_id: str
    stream_name: str
    is_ull: bool

    @property
    def encoded_ref(self) -> str:
        return base64.b64encode(f"{self.transaction_id};{self.token}".encode()).decode()


def decode_ref(ref: str) -> tuple[str, str] | None:
    """``(transactionId, token)`` from an encoded reference, tolerating lost padding,
    the URL-safe alphabet and a ``+`` turned into a space by query decoding."""
    text = ref.strip().replace(" ", "+")
    if not text:
        return None
    text += "=" * (-len(text) % 4)
    try:
        decoded = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        transaction_id, sep, token = decoded.decode("ascii").partition(";")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not sep or not transaction_id or not token:
        return None
    return transaction_id, token


class TransactionBook:
    """Mints transaction ids and tokens (deterministic for a seed) and remembers raw ones."""

    def __init__(self, seed: int, capacity: int = MAX_TRANSACTIONS) -> None:
        self._rng = random.Random(f"{seed}:transactions")
        self._capacity = capacity
        self._raw: OrderedDict[str, Transaction] = OrderedDict()

    def mint(self, event: SimEvent, stream: SimStream, raw: bool) -> Transaction:
        transaction = Transaction(
            transaction_id=str(self._rng.randrange(100_000_000, 1_000_000_000)),
            token=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            event_id=event.event_id,
            stream_name=stream.name,
            is_ull=stream.is_ull,
        )
        if raw:
            self._raw[transaction.transaction_id] = transaction
            while len(self._raw) > self._capacity:
                self._raw.popitem(last=False)
        return transaction

    def resolve(self, ref: str) -> Transaction | None:
        """The raw transaction an encoded reference names, if it was minted here."""
        decoded = decode_ref(ref)
        if decoded is None:
            return None
        transaction = self._raw.get(decoded[0])
        if transaction is None or transaction.token != decoded[1]:
            return None
        return transaction


def theo_channel_id(seed: int, event_id: str, stream_name: str) -> str:
    """A stable 25-character lowercase alphanumeric THEOlive channel id."""
    number = int.from_bytes(
        hashlib.sha256(f"{seed}:theo:{event_id}:{stream_name}".encode()).digest(), "big"
    )
    chars = []
    for _ in range(25):
        number, digit = divmod(number, 36)
        chars.append(_BASE36[digit])
    return "".join(chars)
