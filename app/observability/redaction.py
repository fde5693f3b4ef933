"""Redaction of log lines: known secret values (the customerUid, API keys, signing
keys), bearer tokens and JWT-shaped strings are replaced in every structlog event and
in the standard-library records of the libraries that can print URLs or tracebacks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, MutableMapping
from typing import Any

REDACTED = "[redacted]"
_BEARER = r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]+"
_JWT = r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
_SENSITIVE_KEYS = frozenset(
    {"authorization", "x-api-key", "api_key", "token", "stream_token", "streamtoken", "password"}
)
_MIN_SECRET = 4  # shorter strings cannot hold a secret, a bearer token or a JWT


def _replacement(match: re.Match[str]) -> str:
    return "Bearer " + REDACTED if match.group(0)[:6].lower() == "bearer" else REDACTED


_PLAIN = frozenset({int, float, bool})
_REMEMBER_CHARS = 64  # short strings (route templates, names, states) recur: remembered
_REMEMBERED_MAX = 4096


_KEYS_SEEN: dict[str, bool] = {}  # key -> sensitive? (keys come from code: few)


def _sensitive_key(key: str) -> bool:
    sensitive = _KEYS_SEEN.get(key)
    if sensitive is None:
        sensitive = key.lower() in _SENSITIVE_KEYS
        if len(_KEYS_SEEN) < 4096:
            _KEYS_SEEN[key] = sensitive
    return sensitive


class Redactor:
    """Replaces known secret values and token-shaped strings anywhere in an event.

    One combined pattern (the secrets, bearer tokens, JWT-shaped strings) is run once
    over each string value; this processor runs on every log line (the access line
    included), so short strings it has scrubbed already are answered from memory.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
        self._compile()

    def _compile(self) -> None:
        # A secret is scrubbed whatever its case: a GUID echoed back upper-cased is the
        # same customerUid.
        secrets = [f"(?i:{re.escape(secret)})" for secret in self._secrets]
        parts = [*secrets, _BEARER, _JWT]
        self._pattern = re.compile("|".join(parts))
        self._scrubbed: dict[str, str] = {}

    def _text(self, value: str) -> str:
        if len(value) < _MIN_SECRET:
            return value
        scrubbed = self._scrubbed.get(value)
        if scrubbed is None:
            scrubbed = self._pattern.sub(_replacement, value)
            if len(value) <= _REMEMBER_CHARS:
                if len(self._scrubbed) >= _REMEMBERED_MAX:
                    self._scrubbed.clear()
                self._scrubbed[value] = scrubbed
        return scrubbed

    def add(self, secret: str) -> None:
        """Remember one more value to scrub."""
        if len(secret) >= _MIN_SECRET and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)
            self._compile()

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, int | float | bool) or value is None:
            return value
        if isinstance(value, dict):
            return {
                key: REDACTED if str(key).lower() in _SENSITIVE_KEYS else self.scrub(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return self.scrub(str(value))

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        seen = _KEYS_SEEN
        for key, value in event_dict.items():
            if seen.get(key) or (key not in seen and _sensitive_key(key)):
                event_dict[key] = REDACTED
            elif type(value) is str:
                if len(value) >= _MIN_SECRET:
                    event_dict[key] = self._scrubbed.get(value) or self._text(value)
            elif value is not None and type(value) not in _PLAIN:
                event_dict[key] = self.scrub(value)
        return event_dict


# Standard-library loggers of the libraries we use that can print URLs (httpx logs every
# request line, with the customerUid in its path) or tracebacks.
STDLIB_LOGGERS = ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio")


class RedactingFilter(logging.Filter):
    """Runs standard-library log records through the same ``Redactor``."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self._redactor.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, self._redactor.scrub(text)
        return True


def redact_stdlib_logging(redactor: Redactor) -> None:
    for name in STDLIB_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
            logger.removeFilter(old)
        logger.addFilter(RedactingFilter(redactor))
