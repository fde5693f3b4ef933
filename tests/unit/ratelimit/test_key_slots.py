"""Every Lua script call the gateway makes keeps its keys on one Redis Cluster slot.

A cluster runs a script on the node of its keys' slot and refuses keys spread over
several slots (CROSSSLOT). The calls below go through the classes the app uses, built
the way ``app/services.py`` builds them, over a store that records the
keys of each EVALSHA; ``redis.crc.key_slot`` is the slot function redis-py's cluster
client routes with. The last test checks that every ``.lua`` file was called here.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import fakeredis
import pytest
from redis.crc import key_slot

from app.live.caps import LiveCapLimits, LiveCaps
from app.ratelimit.admission import LinkAdmission
from app.ratelimit.failures import FailedAttempts, FailureLimits
from app.ratelimit.gate import UpstreamGate
from app.ratelimit.lease import Lease
from app.ratelimit.line import LinePolicy
from app.ratelimit.scripts import script_source
from app.ratelimit.sessions import SessionLimits, ViewingSessions
from app.upstream.client import EVENT_ALL, EVENT_OPEN, LIVE_STREAM, STREAM_LINK

SCRIPTS = sorted(
    entry.name
    for entry in resources.files("app.ratelimit").iterdir()
    if entry.name.endswith(".lua")
)


def sha1(text: str) -> str:
    """The script's id, as EVALSHA names it (not a security use)."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


BY_SHA = {sha1(script_source(name)): name for name in SCRIPTS}
BY_SHA[sha1(resources.files("app.live").joinpath("caps.lua").read_text())] = "live/caps.lua"


class RecordingStore(fakeredis.FakeAsyncRedis):
    """The embedded store, noting which script ran with which keys."""

    calls: list[tuple[str, list[bytes]]]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if str(args[0]).upper() in ("EVALSHA", "EVAL"):
            numkeys = int(args[2])
            keys = [k if isinstance(k, bytes) else str(k).encode() for k in args[3 : 3 + numkeys]]
            evalsha = str(args[0]).upper() == "EVALSHA"
            sha = str(args[1]) if evalsha else sha1(str(args[1]))
            self.calls.append((BY_SHA.get(sha, sha), keys))
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


@pytest.fixture
async def recording() -> AsyncIterator[RecordingStore]:
    store = RecordingStore()
    store.calls = []
    yield store
    await store.aclose()


def one_slot(keys: list[bytes]) -> bool:
    return len({key_slot(key) for key in keys}) == 1


# Whatever a user id or list name holds (braces included), the tag stays the same.
AWKWARD = ["viewer-1", "{igm:cat}", "x}{y", "über", ""]


async def drive_every_script(store: RecordingStore) -> None:
    gate = UpstreamGate(store)
    for method in (EVENT_OPEN, EVENT_ALL):
        for witnessed in (None, False, True):
            await gate.try_pass(method, 10.0, witnessed=witnessed)
    for name in ("catalogue-refresher", "fetch:streams:L1-2", "fetch:sports"):
        lease = Lease(store, name, "replica-a", 15.0)
        await lease.acquire_or_renew()
        await lease.release()
    failures = FailedAttempts(store, "admin", FailureLimits(max_failures=3, window_s=60))
    for client in ("203.0.113.9", "2001:db8::1"):
        await failures.failed(client)
    caps = LiveCaps(store, LiveCapLimits(per_user=2, per_ip=3))
    for user in AWKWARD:
        await caps.release(await caps.admit(user, "203.0.113.9"))
    admission = LinkAdmission(store)
    line = LinePolicy.for_budget(
        140, 10, renewal_share=0.05, hold_s=0.3, grace_s=10, renewal_lead_s=30
    )
    sessions = ViewingSessions(store)
    limits = SessionLimits(max_per_user=2, ttl_s=60, policy="evict_oldest")
    for user in AWKWARD:
        session = sessions.new(user, f"session-of-{user}", limits, {"eventId": "L1-2"})
        for methods in ((STREAM_LINK, LIVE_STREAM), (STREAM_LINK,)):
            await admission.admit(
                dedupe_key=f"api_key\x1f{user}\x1fL1-2\x1fHLS\x1fraw\x1f203.0.113.9\x1f",
                user_key=f"api_key\x1f{user}",
                viewer_key=f"api_key\x1f{user}\x1fL1-2\x1fHLS\x1fraw",
                methods=methods,
                line=line,
                user_rate_per_s=0.5,
                user_burst=10,
                session=session if methods == (STREAM_LINK,) else None,
            )
        await sessions.touch(user, session.session_id, 60)
    for method in (STREAM_LINK, LIVE_STREAM):
        await admission.tokens_left(method, 140, 10)
    await admission.keep_place("api_key\x1fviewer-1\x1fL1-2\x1fHLS\x1fraw", line)


async def test_every_script_call_keeps_its_keys_on_one_slot(recording: RecordingStore) -> None:
    await drive_every_script(recording)
    assert recording.calls
    spread = [(name, keys) for name, keys in recording.calls if not one_slot(keys)]
    assert spread == []


async def test_every_script_file_was_called(recording: RecordingStore) -> None:
    await drive_every_script(recording)
    assert sorted({name for name, _ in recording.calls}) == sorted([*SCRIPTS, "live/caps.lua"])


@pytest.mark.parametrize(
    "keys",
    [[b"{igm:gate}:event_open", b"{igm:link}:bucket:stream_link"], [b"a", b"b"]],
    ids=["two-tags", "no-tags"],
)
def test_the_check_itself_sees_keys_on_two_slots(keys: list[bytes]) -> None:
    assert not one_slot(keys)
