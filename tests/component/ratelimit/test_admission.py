"""LinkAdmission over fakeredis and a real redis-server.

Bucket time is Redis's clock, so expected waits are bounded by the wall time the
test itself took (``elapsed``), never asserted tighter than that. Rates are slow (a
token every 10 s unless a test needs time to pass), so a test that takes seconds on a
loaded machine still sees the bucket states it sets up.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import pytest
import redis.asyncio as redis_asyncio

from app.ratelimit.admission import Admission, LinkAdmission
from app.ratelimit.line import LinePolicy
from tests.support.polling import eventually

RATE, BURST = 0.1, 2  # a token every INTERVAL_MS
INTERVAL_MS = 10_000


async def admit(
    links: LinkAdmission,
    *,
    methods: Sequence[str] = ("stream_link",),
    rate_per_s: float = RATE,
    burst: int = BURST,
    max_wait_ms: int = 35_000,
    user: str = "user-digest",
    dedupe: str | None = None,
    user_rate_per_s: float = 1000.0,
    user_burst: int = 1000,
    viewer: str | None = None,
) -> Admission:
    """One request; ``max_wait_ms`` is the line's hold bound (a later slot is a place)."""
    line = LinePolicy(
        main_rate_per_s=rate_per_s,
        renewal_rate_per_s=0,
        burst=burst,
        hold_s=max_wait_ms / 1000,
        grace_s=60,
        renewal_lead_s=30,
    )
    return await links.admit(
        dedupe_key=dedupe or uuid.uuid4().hex,
        user_key=user,
        viewer_key=viewer or uuid.uuid4().hex,
        methods=methods,
        line=line,
        user_rate_per_s=user_rate_per_s,
        user_burst=user_burst,
    )


class Elapsed:
    """Milliseconds since construction: the slack any Redis-timed value may have."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def ms(self) -> float:
        return (time.monotonic() - self._start) * 1000 + 1


async def test_reservations_hand_out_growing_waits_then_places(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)
    elapsed = Elapsed()
    got = [await admit(links) for _ in range(6)]  # a token per 10 s, burst 2
    slack = elapsed.ms

    assert [a.outcome for a in got] == ["admitted"] * 5 + ["queued"]
    for a, expected_ms in zip(got, [0, 0, 10_000, 20_000, 30_000], strict=False):
        assert expected_ms - slack <= a.wait_s * 1000 <= expected_ms + 1, a
    assert [a.tokens_left for a in got[:5]] == [1, 0, -1, -2, -3]
    # the next token would need a 40 s wait; max is 35 s, so about 5 s from now
    assert 5000 - slack <= got[5].retry_after_s * 1000 <= 5001
    assert 40_000 - slack <= got[5].eta_s * 1000 <= 40_001
    assert got[5].position == 5  # four slots of 10 s ahead of it
    assert got[5].wait_s == 0
    assert got[5].tokens_left is None


@pytest.mark.parametrize(
    ("burst", "max_wait_ms", "requests", "expected_retry_ms"),
    [
        (2, 35_000, 5, 5_000),
        (2, 32_500, 5, 7_500),
        (1, 0, 1, 10_000),
        (3, 0, 3, 10_000),
        (1, 17_500, 2, 2_500),
    ],
)
async def test_retry_after_is_derived_from_the_bucket_state(
    store: redis_asyncio.Redis,
    burst: int,
    max_wait_ms: int,
    requests: int,
    expected_retry_ms: int,
) -> None:
    links = LinkAdmission(store)
    elapsed = Elapsed()
    for _ in range(requests):
        assert (await admit(links, burst=burst, max_wait_ms=max_wait_ms)).outcome == "admitted"
    queued = await admit(links, burst=burst, max_wait_ms=max_wait_ms)
    assert queued.outcome == "queued"
    assert expected_retry_ms - elapsed.ms <= queued.retry_after_s * 1000 <= expected_retry_ms + 1


@pytest.mark.parametrize(
    ("burst", "max_wait_ms", "requests"),
    [(1, 0, 1), (2, 2000, 4)],
    ids=["no reservations", "reservations"],
)
async def test_a_caller_that_waits_its_retry_after_is_admitted(
    store: redis_asyncio.Redis, burst: int, max_wait_ms: int, requests: int
) -> None:
    # One token a second: the place below is a second past the hold bound.
    links = LinkAdmission(store)
    for _ in range(requests):
        got = await admit(links, rate_per_s=1, burst=burst, max_wait_ms=max_wait_ms)
        assert got.outcome == "admitted"
    queued = await admit(links, rate_per_s=1, burst=burst, max_wait_ms=max_wait_ms, viewer="v")
    assert queued.outcome == "queued"
    assert 0 < queued.retry_after_s <= 1

    await asyncio.sleep(queued.retry_after_s)  # the stimulus: the caller waits as told
    retried = await admit(links, rate_per_s=1, burst=burst, max_wait_ms=max_wait_ms, viewer="v")
    assert retried.outcome == "admitted"
    assert retried.wait_s * 1000 <= max_wait_ms


async def test_a_place_reserves_its_slot_but_charges_no_user(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)

    async def as_alice(viewer: str) -> Admission:
        # a user bucket that a charge would leave empty for 1000 s
        return await admit(
            links, max_wait_ms=0, user="u1", user_rate_per_s=0.001, user_burst=1, viewer=viewer
        )

    for _ in range(2):
        assert (await admit(links, max_wait_ms=0)).outcome == "admitted"
    assert await links.tokens_left("stream_link", RATE, BURST) == pytest.approx(0, abs=0.01)

    queued = await as_alice("alice-on-hls")
    assert queued.outcome == "queued"
    assert 0 < queued.retry_after_s <= INTERVAL_MS / 1000
    # the slot is the place's: the bucket is a token further in debt
    assert await links.tokens_left("stream_link", RATE, BURST) == pytest.approx(-1, abs=0.01)
    # the user bucket (burst 1) was not charged: alice's next place is given
    assert (await as_alice("alice-on-ull")).outcome == "queued"


async def test_a_wait_in_one_bucket_reserves_the_same_instant_in_the_other(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)
    elapsed = Elapsed()
    for _ in range(3):  # live_stream: 2 free, then one reserved 10 s ahead
        await admit(links, methods=["live_stream"])
    got = await admit(links, methods=["stream_link", "live_stream"])
    assert got.outcome == "admitted"
    assert 20_000 - elapsed.ms - 1 <= got.wait_s * 1000 <= 20_001
    # stream_link was full, but its token is taken at the call instant, 20 s ahead:
    # 2 - 1 - 20 s * 0.1/s = -1 token now (and the minimum over both buckets is -2).
    assert got.tokens_left == -2
    left = await links.tokens_left("stream_link", RATE, BURST)
    assert -1 - 1e-6 <= left <= -1 + elapsed.ms / INTERVAL_MS


async def test_user_limit_refuses_without_waiting_and_spares_the_fleet_budget(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)

    async def as_user(user: str) -> Admission:
        return await admit(links, user=user, user_rate_per_s=0.1, user_burst=2)

    elapsed = Elapsed()  # alice's bucket refills from her first request on
    assert (await as_user("alice")).outcome == "admitted"
    assert (await as_user("alice")).outcome == "admitted"
    fleet_before = await links.tokens_left("stream_link", RATE, BURST)

    limited = await as_user("alice")
    assert limited.outcome == "user_limited"
    assert 10_000 - elapsed.ms - 1 <= limited.retry_after_s * 1000 <= 10_001
    assert limited.wait_s == 0
    assert await links.tokens_left("stream_link", RATE, BURST) >= fleet_before

    assert (await as_user("bob")).outcome == "admitted"


async def test_user_limit_is_checked_before_the_fleet_budget(store: redis_asyncio.Redis) -> None:
    links = LinkAdmission(store)
    elapsed = Elapsed()
    await admit(links, user="alice", user_rate_per_s=0.05, user_burst=1, max_wait_ms=0)
    await admit(links, user="bob", max_wait_ms=0)  # fleet now empty too
    got = await admit(links, user="alice", user_rate_per_s=0.05, user_burst=1, max_wait_ms=0)
    assert got.outcome == "user_limited"
    assert 20_000 - elapsed.ms - 1 <= got.retry_after_s * 1000 <= 20_001
    assert (await admit(links, user="carol", max_wait_ms=0)).outcome == "queued"


async def test_dedupe_hit_returns_the_stored_answer_and_consumes_nothing(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)
    answer = b'{"url": "https://cdn.example/abc?token=x"}\x00\xff'
    first = await admit(links, dedupe="req-1")
    assert first.outcome == "admitted"
    await links.remember("req-1", answer, window_s=30)
    assert 0 < await store.pttl(links.dedupe_key("req-1")) <= 30_000
    tokens = await links.tokens_left("stream_link", RATE, BURST)

    for _ in range(5):  # more than the bucket could admit
        hit = await admit(links, dedupe="req-1", max_wait_ms=0, user_burst=1)
        assert hit == Admission(outcome="cached", cached=answer)
    assert await links.tokens_left("stream_link", RATE, BURST) >= tokens

    other = await admit(links, dedupe="req-2")
    assert other.outcome == "admitted"

    # The window ends (its last 50 ms left, as if 30 s had passed): admitted again.
    await store.pexpire(links.dedupe_key("req-1"), 50)

    async def window_over() -> bool:
        return await store.exists(links.dedupe_key("req-1")) == 0

    await eventually(window_over, "the dedupe window ends")
    assert (await admit(links, dedupe="req-1")).outcome == "admitted"


async def test_keys_are_hash_tagged_hashed_and_expire(store: redis_asyncio.Redis) -> None:
    links = LinkAdmission(store)
    raw_user = "alice@example.com"
    await admit(  # one token of a 2 s interval: every bucket is full again in 2 s
        links,
        methods=["stream_link", "live_stream"],
        rate_per_s=0.5,
        user=raw_user,
        user_rate_per_s=0.5,
        user_burst=2,
    )
    await links.remember(f"{raw_user}|event-1", b"answer", window_s=2)

    keys = sorted(k for k in await store.keys("*") if isinstance(k, bytes))
    assert len(keys) == len(await store.keys("*")) == 4
    assert all(k.startswith(b"{igm:link}:") for k in keys)
    assert b"{igm:link}:bucket:stream_link" in keys
    assert b"{igm:link}:bucket:live_stream" in keys
    for key in keys:
        assert b"alice" not in key
        assert b"alice" not in (await store.get(key) or b"")
        assert 0 < await store.pttl(key) <= 2001

    async def all_expired() -> bool:
        return await store.keys("*") == []

    await eventually(all_expired, "every key expires")
    assert await links.tokens_left("stream_link", 0.5, 2) == 2


async def test_tokens_left_reads_without_consuming(store: redis_asyncio.Redis) -> None:
    links = LinkAdmission(store)
    assert await links.tokens_left("stream_link", RATE, BURST) == 2
    assert await links.tokens_left("stream_link", RATE, BURST) == 2
    elapsed = Elapsed()
    await admit(links)
    assert 1 <= await links.tokens_left("stream_link", RATE, BURST) <= 1 + elapsed.ms / INTERVAL_MS
    assert await store.exists("{igm:link}:bucket:live_stream") == 0


async def test_prefix_separates_deployments(store: redis_asyncio.Redis) -> None:
    a, b = LinkAdmission(store, prefix="a"), LinkAdmission(store, prefix="b")
    for _ in range(2):
        assert (await admit(a, max_wait_ms=0)).outcome == "admitted"
    assert (await admit(a, max_wait_ms=0)).outcome == "queued"
    assert (await admit(b, max_wait_ms=0)).outcome == "admitted"


@pytest.mark.parametrize(
    "bad",
    [
        {"methods": []},
        {"methods": ["stream_link", "stream_link"]},
        {"line": LinePolicy(0, 0, 2, 0, 10, 30)},
        {"line": LinePolicy(5, 0, 0, 0, 10, 30)},
        {"line": LinePolicy(5, 0, 2, -1, 10, 30)},
        {"user_rate_per_s": -1},
        {"user_burst": 0},
    ],
    ids=["no methods", "twice a method", "rate", "burst", "hold", "user rate", "user burst"],
)
async def test_rejects_nonsense_arguments(
    fake_redis: redis_asyncio.Redis, bad: dict[str, object]
) -> None:
    args: dict[str, object] = {
        "dedupe_key": "d",
        "user_key": "u",
        "viewer_key": "v",
        "methods": ["stream_link"],
        "line": LinePolicy(5, 0, 2, 0, 10, 30),
        "user_rate_per_s": 1.0,
        "user_burst": 1,
    } | bad
    with pytest.raises(ValueError):  # noqa: PT011
        await LinkAdmission(fake_redis).admit(**args)  # type: ignore[arg-type]
