"""Hear the process being told to exit (SIGTERM, SIGINT) before the server drains.

uvicorn runs the lifespan's shutdown only once every open response has finished, so
responses that never finish on their own (the live streams) must be ended when the
exit signal arrives, not at shutdown. ``on_exit_signal`` chains a callback in front
of whatever handles the signal now (the server's own handler), with the standard
library's ``signal`` API: the handler it finds is still called, with the same
arguments, and put back when the block ends. The callback runs on the event loop
(``call_soon_threadsafe``), not inside the signal handler.

Nothing is installed where there is no Python-level handler to chain (the signal's
default action or ignored: no server handles it), or off the main thread (where Python
allows no handler to be set).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)

Handler = Callable[[int, FrameType | None], object]


@contextmanager
def on_exit_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block, ``callback`` runs on the running loop once an exit signal
    arrives (once, however many arrive), before the handler found in place."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    heard = False
    active = True
    chained: dict[int, Handler] = {}  # signal number -> the handler found

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal heard
        if active and not heard:
            heard = True
            loop.call_soon_threadsafe(callback)
        chained[signum](signum, frame)

    for exit_signal in EXIT_SIGNALS:
        found = signal.getsignal(exit_signal)
        if callable(found):
            chained[exit_signal] = found
            signal.signal(exit_signal, handle)
    try:
        yield
    finally:
        active = False
        for number, previous in chained.items():
            if signal.getsignal(number) is handle:  # else someone chained after us: keep it
                signal.signal(number, previous)
