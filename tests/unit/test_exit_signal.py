"""``on_exit_signal``: the callback runs on the loop when SIGTERM arrives, the handler
found in place (a server's) is still called, and put back afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from app.exit_signal import on_exit_signal
from tests.support.polling import eventually


@pytest.fixture
def server_handler() -> Iterator[list[int]]:
    """A handler standing for the server's (uvicorn's ``handle_exit``): the signals it got."""
    got: list[int] = []

    def handle_exit(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    previous = signal.signal(signal.SIGTERM, handle_exit)
    try:
        yield got
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_the_callback_runs_once_and_the_server_still_hears_the_signal(
    server_handler: list[int],
) -> None:
    installed = signal.getsignal(signal.SIGTERM)
    closed: list[str] = []
    with on_exit_signal(lambda: closed.append("closed")):
        assert signal.getsignal(signal.SIGTERM) is not installed
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)

        async def heard() -> bool:
            return len(server_handler) == 2 and closed == ["closed"]

        await eventually(heard, "the callback or the server's handler was not called")
        await asyncio.sleep(0)
        assert closed == ["closed"]
    assert signal.getsignal(signal.SIGTERM) is installed
    assert server_handler == [signal.SIGTERM, signal.SIGTERM]


async def test_nothing_is_installed_where_no_handler_is_in_place() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with on_exit_signal(lambda: None):
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
