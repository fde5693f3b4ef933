"""The audit trail: one record per link decision (minted, deduped, refused), and one
per admin API request (done, failed, refused, locked out).

Each record holds the time, the request id, a hashed user id, the event, stream and
kind, the viewer's country, the decision (and the refusal's ``code``) and the
upstream ``transactionId``. It goes to its own log stream (JSON lines whose
``event`` is ``audit``) and, when ``AUDIT_REDIS_STREAM`` is set, to a Redis Stream
capped near ``AUDIT_REDIS_STREAM_MAXLEN`` entries that an operator's pipeline can
consume. No secret is ever in a record; the viewer's IP only with ``AUDIT_RAW_IP``.

An admin record (``kind: admin``) holds the time, the request id, the action (its
method and route), its target (event id, hashed user id, session id), the client's
address, which admin key was used (its position in ``ADMIN_API_KEYS``, never the key),
the outcome and the problem's ``code``.

User ids are HMAC-SHA-256'd with ``AUDIT_USER_ID_KEY`` (required in production; plain
SHA-256 without it, in demo mode only, which anyone who can guess an id can reverse):
the same user gets the same hash, so an operator can find a user's records by hashing
the id the same way.

Records do not depend on ``LOG_LEVEL``: they go through a logger of their own that lets
every level through (the app's processors and output all the same), so an operator who
quiets the logs to ``warning`` keeps the audit trail.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, fields
from typing import Literal

import structlog
from pydantic import SecretStr
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from app.catalogue.snapshot import iso_utc
from app.observability.metrics import Metrics
from app.store import Store

log = structlog.get_logger("audit")
# The records' own logger: the configured processors and output, but no level filter.
records = structlog.wrap_logger(
    None,
    wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
    logger_factory_args=("audit",),
)

Decision = Literal["minted", "deduped", "refused"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    time: str
    request_id: str | None
    route: str  # links | play
    user: str | None  # hashed
    via: str | None  # jwt | api_key
    event_id: str
    stream_name: str | None
    kind: str | None  # raw | player: as asked (links) or chosen (play)
    link: str | None  # hls | theolive | player, when minted
    country: str | None
    ip: str | None  # only with AUDIT_RAW_IP
    decision: Decision
    code: str | None  # the refusal's problem code
    transaction_id: str | None


_FIELDS = tuple(item.name for item in fields(AuditRecord))

AdminOutcome = Literal["done", "failed", "refused", "locked_out"]


@dataclass(frozen=True, slots=True)
class AdminAuditRecord:
    time: str
    request_id: str | None
    action: str  # method and route template, e.g. "DELETE /admin/events/{eventId}/streams"
    target: str | None  # eventId=..., user=<hash>, session=...
    client: str | None  # the caller's address
    key: str | None  # "key-1": which of ADMIN_API_KEYS, never the key itself
    outcome: AdminOutcome
    status: int | None  # the refusal's or failure's status
    code: str | None  # the problem's code, when not done
    kind: str = "admin"


_ADMIN_FIELDS = tuple(item.name for item in fields(AdminAuditRecord))


class AuditTrail:
    def __init__(
        self,
        *,
        redis: Store | None,
        stream: str | None,
        max_len: int,
        raw_ip: bool,
        user_id_key: SecretStr | None,
        metrics: Metrics,
    ) -> None:
        self._redis = redis if stream else None
        self._stream = stream
        self._max_len = max_len
        self._raw_ip = raw_ip
        self._key = user_id_key.get_secret_value().encode() if user_id_key else None
        self._metrics = metrics
        self._writes: set[asyncio.Task[None]] = set()

    @property
    def raw_ip(self) -> bool:
        return self._raw_ip

    def hash_user(self, user_id: str) -> str:
        data = user_id.encode("utf-8", "surrogatepass")
        if self._key is not None:
            return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:32]
        return hashlib.sha256(data).hexdigest()[:32]

    def record(self, record: AuditRecord) -> None:
        # Not dataclasses.asdict: its deep copy was half of what a record cost.
        line = {
            name: str(value) for name in _FIELDS if (value := getattr(record, name)) is not None
        }
        self._write(line)

    def record_admin(self, record: AdminAuditRecord) -> None:
        line = {
            name: str(value)
            for name in _ADMIN_FIELDS
            if (value := getattr(record, name)) is not None
        }
        self._write(line)

    def _write(self, line: dict[str, str]) -> None:
        records.info("audit", **line)
        if self._redis is not None:
            task = asyncio.get_running_loop().create_task(self._append(line))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _append(self, line: dict[str, str]) -> None:
        assert self._redis is not None
        assert self._stream is not None
        entry: dict[FieldT, EncodableT] = {key: value for key, value in line.items()}
        try:
            await self._redis.xadd(self._stream, entry, maxlen=self._max_len, approximate=True)
        except (RedisError, OSError) as exc:
            self._metrics.redis_errors.labels("audit").inc()
            log.warning("audit_stream_failed", error=type(exc).__name__)

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(self._writes, timeout=2.0)


def now_iso() -> str:
    return iso_utc(time.time())
