"""structlog set-up: one JSON object per line (or a console renderer for development),
request-scoped context from contextvars, and a redaction step that runs last before
rendering (``redaction.py``), so no secret reaches a log line whatever a caller passed in.

Standard-library records (uvicorn's "Started server process", its errors and
shutdown lines; warnings of httpx, asyncio and the rest) are rendered by the same
processors through structlog's ``ProcessorFormatter`` on one root handler, so they
come out as the same JSON lines, on stdout, whatever command started uvicorn. uvicorn's
own access line is silenced: the app logs one ``request`` event per request
(``requests.py``), through the same stdout writer.

structlog is configured with ``cache_logger_on_first_use=True``: a module's logger is
built on its first line and kept. So that a later configuration (another app in the
same process, a test) still applies to loggers already built, the processor chain is
one list changed in place (as ``structlog.testing.capture_logs`` does), the wrapper
(structlog's filtering logger) reads the level at each call (``set_log_level``), and
the logger writes to whatever stdout is at the moment of each line.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import logging
import os
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any, BinaryIO, cast

import orjson
import structlog
from structlog.typing import Processor

from app.observability.context import add_request_id
from app.observability.redaction import Redactor, redact_stdlib_logging


def stdout_bytes() -> BinaryIO | None:
    """The binary stream log lines go to: stdout's (with a buffered writer of its own
    when stdout is unbuffered, ``PYTHONUNBUFFERED=1``, so a line is one write), or None
    where stdout is a text stream with no binary one (tests, embedding). Every line is
    flushed as it is written (the access lines at the end of the event loop's turn, all
    together, ``requests.py``), so lines go out at once and in order."""
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


class _Threshold:
    """The level below which lines are dropped: one for the process, read at each call
    (a logger cached before a later configuration still follows it)."""

    number = logging.INFO


_THRESHOLD = _Threshold()
_BASE_LOGGER: Any = structlog.make_filtering_bound_logger(logging.NOTSET)


def _gated(name: str, number: int) -> Callable[..., Any]:
    method = getattr(_BASE_LOGGER, name)

    def gated(self: Any, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if number < _THRESHOLD.number:
            return None
        return method(self, event, *args, **kw)

    gated.__name__ = name
    return gated


def _gated_log(self: Any, level: int, event: str, *args: Any, **kw: Any) -> Any:
    if level < _THRESHOLD.number:
        return None
    return _BASE_LOGGER.log(self, level, event, *args, **kw)


_LEVEL_METHODS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}

# structlog's filtering logger, its level read at each call (``set_log_level``).
LevelledLogger: Any = type(
    "LevelledLogger",
    (_BASE_LOGGER,),
    {
        **{name: _gated(name, number) for name, number in _LEVEL_METHODS.items()},
        "log": _gated_log,
        "is_enabled_for": lambda self, level: level >= _THRESHOLD.number,
        "get_effective_level": lambda self: _THRESHOLD.number,
    },
)


def set_log_level(level: str | int) -> None:
    """The level below which structlog lines are dropped, for every logger."""
    _THRESHOLD.number = (
        level if isinstance(level, int) else logging.getLevelNamesMapping()[level.upper()]
    )


def log_level() -> int:
    return _THRESHOLD.number


class UtcTimestamp:
    """structlog processor: ``timestamp``, ISO 8601 in UTC with microseconds, as
    ``TimeStamper(fmt="iso", utc=True)`` writes it (``2026-12-04T10:00:00.123456Z``),
    the date and time formatted once a second: on every line, building a ``datetime``
    cost more than the rest of the access line."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        return self.at(self._clock())

    def at(self, seconds: float) -> str:
        """The timestamp of ``seconds`` since the epoch."""
        second, micros = divmod(round(seconds * 1_000_000), 1_000_000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{micros:06d}Z"

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict["timestamp"] = self.now()
        return event_dict


def line_processors(redactor: Redactor) -> list[Processor]:
    """What every event goes through before it is rendered (JSON or console): the
    context (``structlog.contextvars``) and the request id of the request being served
    (``context.py``), level, the traceback as text, the
    redactor over all of it, then the time (which holds nothing to redact)."""
    return [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info,
        redactor,
        UtcTimestamp(),
    ]


class StdoutLogger:
    """structlog's logger: each rendered line (bytes or text) to stdout as it is at that
    moment, flushed."""

    def msg(self, message: str | bytes) -> None:
        write_line(message if isinstance(message, bytes) else message.encode())

    log = debug = info = warn = warning = error = err = critical = exception = msg
    fatal = failure = msg


# Writers holding lines back to the end of the event loop's turn (the request log,
# ``requests.py``): each is asked to write them before any other line goes out, so
# stdout stays in order. A dict, so a writer waiting already is not added twice.
_HELD: dict[Callable[[], None], None] = {}


def hold_lines(write_held: Callable[[], None]) -> None:
    """Register ``write_held`` to run before the next line is written."""
    _HELD[write_held] = None


def write_line(line: bytes) -> None:
    while _HELD:
        write_held = next(iter(_HELD))
        del _HELD[write_held]
        write_held()
    binary = stdout_bytes()
    if binary is not None:
        binary.write(line + b"\n")
        binary.flush()
    else:
        sys.stdout.write(line.decode() + "\n")
        sys.stdout.flush()


def _stdout_logger(*args: Any) -> StdoutLogger:
    return StdoutLogger()


# The chain every logger holds: replaced in place by each configuration.
_CHAIN: list[Processor] = []


def configure_logging(*, json_lines: bool, level: str, redactor: Redactor) -> None:
    """Configure structlog (process-wide, called from the app factory), and scrub and
    render the standard-library loggers that libraries and uvicorn write to."""
    redact_stdlib_logging(redactor)
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    _CHAIN[:] = [*line_processors(redactor), renderer]
    set_log_level(level)
    structlog.configure(
        processors=_CHAIN,
        wrapper_class=LevelledLogger,
        logger_factory=_stdout_logger,
        cache_logger_on_first_use=True,
    )
    route_stdlib_logging(json_lines=json_lines, level=level, redactor=redactor)


class StdoutLines(logging.Handler):
    """One formatted record per line on stdout, through the same binary buffer as
    structlog's lines (``stdout_bytes``), so the two stay in order. The stream is
    looked up at each record: whatever stdout is at that moment."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record).encode())
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
