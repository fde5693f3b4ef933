"""structlog's ``capture_logs`` at every level.

``capture_logs`` swaps the processors, not the wrapper class: once an app built earlier
in the same test process has configured structlog with a level (``LOG_LEVEL``, e.g.
``warning``), an ``info`` line is dropped before any processor sees it. Tests that look
for info lines capture through ``all_logs``, which lets every level through while it
runs and puts the configuration back afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.testing import capture_logs


@contextmanager
def all_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)
