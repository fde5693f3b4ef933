"""Every store-facing method translates storage errors into StoreUnavailable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as redis_asyncio

from app.ratelimit import LinkAdmission, UpstreamGate
from app.ratelimit.lease import Lease
from app.ratelimit.line import LinePolicy
from app.store import STORE_ERRORS, StoreUnavailable, build_store
from tests.support.redis_server import free_port

Call = Callable[[redis_asyncio.Redis], Awaitable[object]]

CALLS: dict[str, Call] = {
    "gate.try_pass": lambda r: UpstreamGate(r).try_pass("events", 10),
    "gate.next_slot_in": lambda r: UpstreamGate(r).next_slot_in("events"),
    "lease.acquire_or_renew": lambda r: Lease(r, "job", "a", 1).acquire_or_renew(),
    "lease.release": lambda r: Lease(r, "job", "a", 1).release(),
    "lease.holder": lambda r: Lease(r, "job", "a", 1).holder(),
    "admission.admit": lambda r: LinkAdmission(r).admit(
        dedupe_key="d",
        user_key="u",
        viewer_key="v",
        methods=["stream_link"],
        line=LinePolicy(140, 0, 10, 0.1, 10, 30),
        user_rate_per_s=1,
        user_burst=5,
    ),
    "admission.remember": lambda r: LinkAdmission(r).remember("d", b"x", 1),
    "admission.tokens_left": lambda r: LinkAdmission(r).tokens_left("stream_link", 150, 10),
}


@pytest.fixture
async def unreachable() -> AsyncIterator[redis_asyncio.Redis]:
    """A client of a port nothing listens on, with a password that must not leak."""
    client = build_store(f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    yield client
    await client.aclose()


@pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))
async def test_unreachable_store_raises_store_unavailable(
    unreachable: redis_asyncio.Redis, call: Call
) -> None:
    with pytest.raises(StoreUnavailable) as info:
        await call(unreachable)
    assert isinstance(info.value.__cause__, STORE_ERRORS)
    assert "hunter2" not in str(info.value)


async def test_script_errors_are_translated_too(store: redis_asyncio.Redis) -> None:
    """A reply error from inside a script (here WRONGTYPE) is a storage error too."""
    await store.hset("{igm:link}:bucket:stream_link", "not", "a string")
    with pytest.raises(StoreUnavailable, match=r"admission\.lua"):
        await CALLS["admission.admit"](store)
