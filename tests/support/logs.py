"""structlog's ``capture_logs`` at every level.

``capture_logs`` swaps the processors, not the level: once an app built earlier in the
same test process has configured structlog with a level (``LOG_LEVEL``, e.g.
``warning``), an ``info`` line is dropped before any processor sees it. Tests that look
for info lines capture through ``all_logs``, which lets every level through while it
runs (loggers built before included: ``set_log_level``) and puts the configuration
back afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from structlog.testing import capture_logs

from app.observability.logging import log_level, set_log_level


@contextmanager
def all_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    level = log_level()
    set_log_level(logging.DEBUG)
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        set_log_level(level)
