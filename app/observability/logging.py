"""structlog set-up: one JSON object per line (or a console renderer for development),
request-scoped context from contextvars, and a redaction step that runs last before
rendering, so no secret reaches a log line whatever a caller passed in.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import orjson
import structlog

REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_SENSITIVE_KEYS = frozenset(
    {"authorization", "x-api-key", "api_key", "token", "stream_token", "streamtoken", "password"}
)


class Redactor:
    """Replaces known secret values and token-shaped strings anywhere in an event."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self._secrets = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def add(self, secret: str) -> None:
        """Remember one more value (e.g. a minted stream token) to scrub."""
        if len(secret) < 4:
            return
        pattern = re.escape(secret)
        if self._secrets is not None:
            pattern = f"{self._secrets.pattern}|{pattern}"
        self._secrets = re.compile(pattern)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            text = value
            if self._secrets is not None:
                text = self._secrets.sub(REDACTED, text)
            return _JWT.sub(REDACTED, _BEARER.sub("Bearer " + REDACTED, text))
        if isinstance(value, dict):
            return {
                key: REDACTED if str(key).lower() in _SENSITIVE_KEYS else self.scrub(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            if key.lower() in _SENSITIVE_KEYS:
                event_dict[key] = REDACTED
            else:
                event_dict[key] = self.scrub(event_dict[key])
        return event_dict


def _orjson_dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def configure_logging(*, json_lines: bool, level: str, redactor: Redactor) -> None:
    """Configure structlog (process-wide, called from the app factory)."""
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )
