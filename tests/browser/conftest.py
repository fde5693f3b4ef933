"""Browser tests: a real chromium (``tests/support/browser.py``) against real gateway
processes. Skipped, with the reason, where there is no chromium."""

from __future__ import annotations

import pytest

from tests.support.browser import chromium_missing


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = chromium_missing()
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
