"""Standard-library records (uvicorn's, the libraries') come out as the same JSON lines
as structlog's, scrubbed; uvicorn's access line is switched off."""

from __future__ import annotations

import copy
import logging
import logging.config
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
import pytest
import structlog
from uvicorn.config import LOGGING_CONFIG

from app.observability.logging import (
    StdoutLines,
    UtcTimestamp,
    configure_logging,
    log_level,
    set_log_level,
)
from app.observability.redaction import REDACTED, Redactor

SECRET = "cust-0f1e2d3c-secret-uid"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def logged(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, object]]]]:
    """uvicorn's own logging set-up first (as ``uvicorn`` does before loading the app),
    then the app's; everything restored afterwards. Returns the JSON lines so far."""
    saved_structlog = structlog.get_config()
    saved_level = log_level()
    root = logging.getLogger()
    saved_root = list(root.handlers)
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in UVICORN_LOGGERS
    }
    logging.config.dictConfig(copy.deepcopy(LOGGING_CONFIG))

    def lines() -> list[dict[str, object]]:
        out, err = capsys.readouterr()
        assert err == ""
        return [orjson.loads(line) for line in out.splitlines()]

    try:
        yield lines
    finally:
        structlog.configure(**saved_structlog)
        set_log_level(saved_level)
        root.handlers = saved_root
        for name, (handlers, propagate) in saved.items():
            logging.getLogger(name).handlers = handlers
            logging.getLogger(name).propagate = propagate


def test_uvicorn_lines_are_json(logged: Callable[[], list[dict[str, object]]]) -> None:
    configure_logging(json_lines=True, level="info", redactor=Redactor([SECRET]))
    error_log = logging.getLogger("uvicorn.error")
    error_log.info("Started server process [%d]", 4242, extra={"color_message": "x"})
    error_log.warning("Invalid HTTP request received.")
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    lines = logged()
    for line in lines:
        assert str(line.pop("timestamp")).endswith("Z")
    assert lines == [
        {"event": "Started server process [4242]", "logger": "uvicorn.error", "level": "info"},
        {"event": "Invalid HTTP request received.", "logger": "uvicorn.error", "level": "warning"},
        {"event": "Task exception was never retrieved", "logger": "asyncio", "level": "error"},
    ]


def test_tracebacks_are_one_scrubbed_field(logged: Callable[[], list[dict[str, object]]]) -> None:
    configure_logging(json_lines=True, level="info", redactor=Redactor([SECRET]))
    for name in ("uvicorn.error", "some.library"):  # with and without RedactingFilter
        try:
            raise RuntimeError(f"upstream said no to /sport/all/{SECRET}")
        except RuntimeError:
            logging.getLogger(name).exception("Exception in ASGI application %s", SECRET)
    lines = logged()
    assert len(lines) == 2
    for line in lines:
        assert line["event"] == f"Exception in ASGI application {REDACTED}"
        assert line["level"] == "error"
        exception = str(line["exception"])
        assert exception.startswith("Traceback (most recent call last)")
        assert f"RuntimeError: upstream said no to /sport/all/{REDACTED}" in exception
        assert SECRET not in orjson.dumps(line).decode()


def test_uvicorn_access_line_is_off(logged: Callable[[], list[dict[str, object]]]) -> None:
    assert logging.getLogger("uvicorn.access").hasHandlers()  # uvicorn's default
    configure_logging(json_lines=True, level="info", redactor=Redactor([]))
    assert not logging.getLogger("uvicorn.access").hasHandlers()
    logging.getLogger("uvicorn.access").info('%s - "%s" %d', "127.0.0.1:5", "GET / HTTP/1.1", 200)
    assert logged() == []


def test_configured_twice_writes_each_line_once(
    logged: Callable[[], list[dict[str, object]]],
) -> None:
    for _ in range(3):
        configure_logging(json_lines=True, level="info", redactor=Redactor([]))
    logging.getLogger("uvicorn.error").info("Shutting down")
    assert [line["event"] for line in logged()] == ["Shutting down"]
    assert sum(isinstance(h, StdoutLines) for h in logging.getLogger().handlers) == 1


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        pytest.param("debug", ["info line", "warning line"], id="debug"),
        pytest.param("info", ["info line", "warning line"], id="info"),
        pytest.param("warning", ["warning line"], id="warning"),
        pytest.param("error", [], id="error"),
    ],
)
def test_log_level_applies_to_uvicorn_lines(
    logged: Callable[[], list[dict[str, object]]], level: str, expected: list[str]
) -> None:
    configure_logging(json_lines=True, level=level, redactor=Redactor([]))
    logging.getLogger("uvicorn.error").info("info line")
    logging.getLogger("uvicorn.error").warning("warning line")
    assert [line["event"] for line in logged()] == expected


def test_console_format_renders_uvicorn_lines_too(
    capsys: pytest.CaptureFixture[str], logged: Callable[[], list[dict[str, object]]]
) -> None:
    configure_logging(json_lines=False, level="info", redactor=Redactor([SECRET]))
    logging.getLogger("uvicorn.error").info("Started server process [%s]", SECRET)
    out = capsys.readouterr().out
    assert "Started server process [[redacted]]" in out
    assert "[info" in out
    assert SECRET not in out


@pytest.mark.parametrize("now", [1_796_400_000.0, 1_796_400_000.000001, 1_796_400_059.999999])
def test_timestamps_are_what_structlogs_iso_stamper_writes(now: float) -> None:
    expected = datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z")
    if "." not in expected:  # isoformat leaves out a zero fraction
        expected = expected[:-1] + ".000000Z"
    stamped = UtcTimestamp(clock=lambda: now)(None, "info", {})
    assert stamped["timestamp"] == expected


def test_a_cached_logger_follows_a_later_level(
    logged: Callable[[], list[dict[str, object]]],
) -> None:
    configure_logging(json_lines=True, level="info", redactor=Redactor([]))
    log = structlog.get_logger("cached.module")
    log.info("first")  # built and cached now, at info
    configure_logging(json_lines=True, level="warning", redactor=Redactor([]))
    log.info("dropped")
    log.warning("kept")
    configure_logging(json_lines=True, level="debug", redactor=Redactor([]))
    log.debug("shown")
    assert [line["event"] for line in logged()] == ["first", "kept", "shown"]
