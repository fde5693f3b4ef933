"""structlog set-up: one JSON object per line (or a console renderer for development),
request-scoped context from contextvars, and a redaction step that runs last before
rendering, so no secret reaches a log line whatever a caller passed in.

Standard-library records (uvicorn's "Started server process", its errors and
shutdown lines; warnings of httpx, asyncio and the rest) are rendered by the same
processors through structlog's ``ProcessorFormatter`` on one root handler, so they
come out as the same JSON lines, on stdout, whatever command started uvicorn. uvicorn's
own access line is silenced: the app writes one per request (``access_log.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import logging
import os
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, BinaryIO, cast

import orjson
import structlog
from structlog.typing import Processor

from app.observability.context import add_request_id

REDACTED = "[redacted]"
_BEARER = r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]+"
_JWT = r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
_SENSITIVE_KEYS = frozenset(
    {"authorization", "x-api-key", "api_key", "token", "stream_token", "streamtoken", "password"}
)
_MIN_SECRET = 4  # shorter strings cannot hold a secret, a bearer token or a JWT


def _replacement(match: re.Match[str]) -> str:
    return "Bearer " + REDACTED if match.group(0)[:6].lower() == "bearer" else REDACTED


class Redactor:
    """Replaces known secret values and token-shaped strings anywhere in an event.

    One combined pattern (the secrets, bearer tokens, JWT-shaped strings) is run once
    over each string value; this processor runs on every log line.
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

    def add(self, secret: str) -> None:
        """Remember one more value to scrub."""
        if len(secret) >= _MIN_SECRET and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)
            self._compile()

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            if len(value) < _MIN_SECRET:
                return value
            return self._pattern.sub(_replacement, value)
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
        for key, value in event_dict.items():
            if key.lower() in _SENSITIVE_KEYS:
                event_dict[key] = REDACTED
            else:
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


def stdout_bytes() -> BinaryIO | None:
    """The binary stream log lines go to: stdout's, with a buffer of its own when stdout
    is unbuffered (``PYTHONUNBUFFERED=1``, usual in containers), where every line would
    otherwise be a system call of its own. structlog flushes it after each of its lines,
    so those still go out at once and in order; the access log flushes it within
    ``FLUSH_EVERY_S``. One stream per process, so both write through the same buffer."""
    binary = getattr(sys.stdout, "buffer", None)
    if isinstance(binary, io.RawIOBase):
        return _buffered(binary.fileno())
    return binary


@functools.cache
def _buffered(fd: int) -> BinaryIO:
    # A FileIO of its own (closefd=False): closing this writer never closes stdout.
    writer = io.BufferedWriter(io.FileIO(fd, "wb", closefd=False), buffer_size=64 * 1024)
    atexit.register(_flush_quietly, writer)
    return cast(BinaryIO, writer)


def _flush_quietly(stream: BinaryIO) -> None:
    with contextlib.suppress(OSError, ValueError):  # stdout already gone at exit
        stream.flush()


def _orjson_dumps(value: Any, **_: Any) -> bytes:
    return orjson.dumps(value, default=str)


def _orjson_text(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def line_processors(redactor: Redactor) -> list[Processor]:
    """What every event goes through before it is rendered (JSON or console); the
    access line (``access_log.py``) writes the JSON object this gives for its fields."""
    return [
        add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
    ]


def configure_logging(*, json_lines: bool, level: str, redactor: Redactor) -> None:
    """Configure structlog (process-wide, called from the app factory), and scrub and
    render the standard-library loggers that libraries and uvicorn write to."""
    redact_stdlib_logging(redactor)
    renderer: Any
    logger_factory: Any
    binary_stdout = stdout_bytes()
    if json_lines and binary_stdout is not None:  # bytes straight out: no str per line
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        logger_factory = structlog.BytesLoggerFactory(file=binary_stdout)
    elif json_lines:  # stdout replaced by a text stream (tests, embedding)
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_text)
        logger_factory = structlog.PrintLoggerFactory(file=sys.stdout)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        logger_factory = structlog.PrintLoggerFactory(file=sys.stdout)
    structlog.configure(
        processors=[*line_processors(redactor), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    route_stdlib_logging(json_lines=json_lines, level=level, redactor=redactor)


class StdoutLines(logging.Handler):
    """One formatted record per line on stdout, through the same binary buffer as
    structlog's lines (``stdout_bytes``), so the two stay in order. The stream is
    looked up at each record: whatever stdout is at that moment."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            binary = stdout_bytes()
            if binary is not None:
                binary.write(line.encode())
                binary.flush()
            else:
                sys.stdout.write(line)
                sys.stdout.flush()
        except Exception:  # logging's own contract: report, never raise
            self.handleError(record)


def _exception_text(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A traceback ``RedactingFilter`` already turned into scrubbed text."""
    record = event_dict.get("_record")
    if record is not None and record.exc_text and "exc_info" not in event_dict:
        event_dict["exception"] = record.exc_text
    return event_dict


def route_stdlib_logging(*, json_lines: bool, level: str, redactor: Redactor) -> None:
    """Standard-library records to stdout as structlog lines: one handler on the root
    logger (replacing one installed earlier), uvicorn's loggers handed to it, and
    uvicorn's access line switched off (uvicorn asks ``hasHandlers()`` per connection,
    so it does not even format it)."""
    handler = StdoutLines(level=logging.getLevelNamesMapping()[level.upper()])
    handler.setFormatter(stdlib_formatter(json_lines=json_lines, redactor=redactor))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StdoutLines)]:
        root.removeHandler(old)
    root.addHandler(handler)
    server = logging.getLogger("uvicorn")  # uvicorn's default: its own stderr handler
    server.handlers = []
    server.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False


def stdlib_formatter(*, json_lines: bool, redactor: Redactor) -> logging.Formatter:
    """Renders a standard-library record as a structlog line (JSON or console)."""
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, _exception_text],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *line_processors(redactor),
            renderer,
        ],
    )


def uvicorn_formatter() -> logging.Formatter:
    """The formatter of ``scripts/uvicorn-logging.json`` (uvicorn's ``--log-config``):
    the lines uvicorn writes before any app is loaded, which with several workers are
    all of its supervisor's, rendered like the app's. That process reads no settings:
    ``LOG_FORMAT`` comes from the environment (default ``json``, as in ``Settings``);
    its lines hold addresses and process ids, and token-shaped strings are scrubbed."""
    console = os.environ.get("LOG_FORMAT", "json").strip().lower() == "console"
    return stdlib_formatter(json_lines=not console, redactor=Redactor([]))
