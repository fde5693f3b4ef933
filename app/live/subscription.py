"""One live subscriber and the SSE messages it is sent.

A ``Subscription`` holds the messages its stream has yet to send; ``messages`` is
that stream; ``message`` encodes one SSE message once, for every subscriber.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

from sse_starlette import ServerSentEvent

from app.live.delivery import Delivery

RETRY_MS = 3000
HEARTBEAT = ServerSentEvent(comment="heartbeat").encode()


@dataclass(eq=False, slots=True)
class Subscription:
    """One subscriber: the messages to send first, then what ``push`` hands it.

    Kept small (while waiting, one future: no queue, no lock), as a replica holds
    thousands of these. Messages are handed over as tuples, the same one to every
    subscriber (a tuple of bytes is not tracked by the garbage collector); ``delivery``:
    the published change this subscriber has yet to take, if any.

    ``client_gone``: asked before each heartbeat (``Request.is_disconnected``), as
    uvicorn does not fail a send to a client that left; None where a failed send is how
    the stream learns it (an ASGI 2.4 server).
    """

    initial: tuple[bytes, ...]
    resumed: bool = False
    user: str | None = None  # digest of the viewer's user id (for session notices)
    client_gone: Callable[[], Awaitable[bool]] | None = None
    pending: tuple[bytes, ...] = ()
    ended: bool = False
    waiter: asyncio.Future[None] | None = None
    delivery: Delivery | None = None

    def push(self, frames: tuple[bytes, ...]) -> None:
        self.pending = self.pending + frames if self.pending else frames
        self._wake()

    def take(self) -> tuple[bytes, ...]:
        """The pending messages, now to be sent."""
        frames, self.pending = self.pending, ()
        self._settle()
        return frames

    def end(self) -> None:
        self.ended = True
        self.pending = ()
        self._settle()
        self._wake()

    def _settle(self) -> None:
        delivery, self.delivery = self.delivery, None
        if delivery is not None:
            delivery.received()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until there is something to send, or the end."""
        if self.pending or self.ended:
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        try:
            await waiter
        finally:
            self.waiter = None


async def messages(subscription: Subscription) -> AsyncGenerator[bytes, None]:
    """What a subscriber's stream sends: the first messages, then whatever is pushed
    (changes, heartbeats) as it comes, until the subscription ends."""
    initial, subscription.initial = subscription.initial, ()
    for frame in initial:
        yield frame
    while True:
        await subscription.wait()
        if subscription.ended:
            return
        for frame in subscription.take():
            yield frame


def message(kind: str, message_id: str, data: bytes) -> bytes:
    """One SSE message, encoded once (the data is JSON: one line)."""
    return ServerSentEvent(data=data.decode(), event=kind, id=message_id, retry=RETRY_MS).encode()
