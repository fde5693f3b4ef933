"""LinkAdmission over fakeredis and a real redis-server.

Bucket time is Redis's clock, so expected waits are bounded by the wall time the
test itself took (``elapsed``), never asserted tighter than that.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import pytest
import redis.asyncio as redis_asyncio

from app.ratelimit.admission import Admission, LinkAdmission


async def admit(
    links: LinkAdmission,
    *,
    methods: Sequence[str] = ("stream_link",),
    rate_per_s: float = 5,
    burst: int = 2,
    max_wait_ms: int = 700,
    user: str = "user-digest",
    dedupe: str | None = None,
    user_rate_per_s: float = 1000.0,
    user_burst: int = 1000,
) -> Admission:
    return await links.admit(
        dedupe_key=dedupe or uuid.uuid4().hex,
        user_key=user,
        methods=methods,
        rate_per_s=rate_per_s,
        burst=burst,
        user_rate_per_s=user_rate_per_s,
        user_burst=user_burst,
        max_wait_ms=max_wait_ms,
    )


class Elapsed:
    """Milliseconds since construction: the slack any Redis-timed value may have."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def ms(self) -> float:
        return (time.monotonic() - self._start) * 1000 + 1


async def test_reservations_hand_out_growing_waits_then_refuse(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)
    elapsed = Elapsed()
    got = [await admit(links) for _ in range(6)]  # rate 5/s: a token per 200 ms, burst 2
    slack = elapsed.ms

    assert [a.outcome for a in got] == ["admitted"] * 5 + ["rate_limited"]
    for a, expected_ms in zip(got, [0, 0, 200, 400, 600], strict=False):
        assert expected_ms - slack <= a.wait_s * 1000 <= expected_ms + 1, a
    assert [a.tokens_left for a in got[:5]] == [1, 0, -1, -2, -3]
    # the next token would need an 800 ms wait; max is 700, so about 100 ms from now
    assert 100 - slack <= got[5].retry_after_s * 1000 <= 101
    assert got[5].wait_s == 0
    assert got[5].tokens_left is None


@pytest.mark.parametrize(
    ("burst", "max_wait_ms", "requests", "expected_retry_ms"),
    [(2, 700, 5, 100), (2, 650, 5, 150), (1, 0, 1, 200), (3, 0, 3, 200), (1, 350, 2, 50)],
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
    refused = await admit(links, burst=burst, max_wait_ms=max_wait_ms)
    assert refused.outcome == "rate_limited"
    assert expected_retry_ms - elapsed.ms <= refused.retry_after_s * 1000 <= expected_retry_ms + 1

    await asyncio.sleep(refused.retry_after_s)
    retried = await admit(links, burst=burst, max_wait_ms=max_wait_ms)
    assert retried.outcome == "admitted"
    assert retried.wait_s * 1000 <= max_wait_ms


async def test_refusal_consumes_nothing_from_any_bucket(store: redis_asyncio.Redis) -> None:
    links = LinkAdmission(store)
    raw = ("stream_link", "live_stream")
    # drain live_stream only
    for _ in range(2):
        assert (await admit(links, methods=["live_stream"], max_wait_ms=0)).outcome == "admitted"
    before = await links.tokens_left("stream_link", 5, 2)

    refused = await admit(links, methods=raw, max_wait_ms=0, user="u1", user_burst=1)
    assert refused.outcome == "rate_limited"
    assert 0 < refused.retry_after_s <= 0.2

    assert await links.tokens_left("stream_link", 5, 2) == pytest.approx(before)
    assert before == 2
    # the user bucket (burst 1) was not charged either
    ok = await admit(links, methods=["stream_link"], max_wait_ms=0, user="u1", user_burst=1)
    assert ok.outcome == "admitted"


async def test_a_wait_in_one_bucket_reserves_the_same_instant_in_the_other(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)
    for _ in range(3):  # live_stream: 2 free, then one reserved 200 ms ahead
        await admit(links, methods=["live_stream"])
    elapsed = Elapsed()
    got = await admit(links, methods=["stream_link", "live_stream"])
    assert got.outcome == "admitted"
    assert 400 - elapsed.ms - 1 <= got.wait_s * 1000 <= 401
    # stream_link was full, but its token is taken at the call instant, 400 ms ahead:
    # 2 - 1 - 0.4 s * 5/s = -1 token now (and the minimum over both buckets is -2).
    assert got.tokens_left == -2
    assert await links.tokens_left("stream_link", 5, 2) == pytest.approx(-1, abs=0.05)


async def test_user_limit_refuses_without_waiting_and_spares_the_fleet_budget(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)

    async def as_user(user: str) -> Admission:
        return await admit(links, user=user, user_rate_per_s=1.0, user_burst=2)

    elapsed = Elapsed()  # alice's bucket refills from her first request on
    assert (await as_user("alice")).outcome == "admitted"
    assert (await as_user("alice")).outcome == "admitted"
    fleet_before = await links.tokens_left("stream_link", 5, 2)

    limited = await as_user("alice")
    assert limited.outcome == "user_limited"
    assert 1000 - elapsed.ms - 1 <= limited.retry_after_s * 1000 <= 1001
    assert limited.wait_s == 0
    assert await links.tokens_left("stream_link", 5, 2) >= fleet_before

    assert (await as_user("bob")).outcome == "admitted"


async def test_user_limit_is_checked_before_the_fleet_budget(store: redis_asyncio.Redis) -> None:
    links = LinkAdmission(store)
    await admit(links, user="alice", user_rate_per_s=0.5, user_burst=1, max_wait_ms=0)
    await admit(links, user="bob", max_wait_ms=0)  # fleet now empty too
    got = await admit(links, user="alice", user_rate_per_s=0.5, user_burst=1, max_wait_ms=0)
    assert got.outcome == "user_limited"
    assert 1.5 < got.retry_after_s <= 2.0


async def test_dedupe_hit_returns_the_stored_answer_and_consumes_nothing(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)
    answer = b'{"url": "https://cdn.example/abc?token=x"}\x00\xff'
    first = await admit(links, dedupe="req-1")
    assert first.outcome == "admitted"
    await links.remember("req-1", answer, window_s=0.3)
    tokens = await links.tokens_left("stream_link", 5, 2)

    for _ in range(5):  # more than the bucket could admit
        hit = await admit(links, dedupe="req-1", max_wait_ms=0, user_burst=1)
        assert hit == Admission(outcome="cached", cached=answer)
    assert await links.tokens_left("stream_link", 5, 2) >= tokens

    other = await admit(links, dedupe="req-2")
    assert other.outcome == "admitted"

    await asyncio.sleep(0.4)
    assert (await admit(links, dedupe="req-1")).outcome == "admitted"


async def test_keys_are_hash_tagged_hashed_and_expire(store: redis_asyncio.Redis) -> None:
    links = LinkAdmission(store)
    raw_user = "alice@example.com"
    await admit(
        links,
        methods=["stream_link", "live_stream"],
        rate_per_s=10,
        user=raw_user,
        user_rate_per_s=10,
        user_burst=2,
    )
    await links.remember(f"{raw_user}|event-1", b"answer", window_s=0.1)

    keys = sorted(k for k in await store.keys("*") if isinstance(k, bytes))
    assert len(keys) == len(await store.keys("*")) == 4
    assert all(k.startswith(b"{igm:link}:") for k in keys)
    assert b"{igm:link}:bucket:stream_link" in keys
    assert b"{igm:link}:bucket:live_stream" in keys
    for key in keys:
        assert b"alice" not in key
        assert b"alice" not in (await store.get(key) or b"")
        assert 0 < await store.pttl(key) <= 101

    await asyncio.sleep(0.2)
    assert await store.keys("*") == []
    assert await links.tokens_left("stream_link", 10, 2) == 2


async def test_tokens_left_reads_without_consuming(store: redis_asyncio.Redis) -> None:
    links = LinkAdmission(store)
    assert await links.tokens_left("stream_link", 5, 2) == 2
    assert await links.tokens_left("stream_link", 5, 2) == 2
    await admit(links)
    assert 1 <= await links.tokens_left("stream_link", 5, 2) < 1.1
    assert await store.exists("{igm:link}:bucket:live_stream") == 0


async def test_prefix_separates_deployments(store: redis_asyncio.Redis) -> None:
    a, b = LinkAdmission(store, prefix="a"), LinkAdmission(store, prefix="b")
    for _ in range(2):
        assert (await admit(a, max_wait_ms=0)).outcome == "admitted"
    assert (await admit(a, max_wait_ms=0)).outcome == "rate_limited"
    assert (await admit(b, max_wait_ms=0)).outcome == "admitted"


@pytest.mark.parametrize(
    "bad",
    [
        {"methods": []},
        {"methods": ["stream_link", "stream_link"]},
        {"rate_per_s": 0},
        {"burst": 0},
        {"user_rate_per_s": -1},
        {"user_burst": 0},
        {"max_wait_ms": -1},
    ],
    ids=lambda d: next(iter(d)),
)
async def test_rejects_nonsense_arguments(
    fake_redis: redis_asyncio.Redis, bad: dict[str, object]
) -> None:
    args: dict[str, object] = {
        "dedupe_key": "d",
        "user_key": "u",
        "methods": ["stream_link"],
        "rate_per_s": 5.0,
        "burst": 2,
        "user_rate_per_s": 1.0,
        "user_burst": 1,
        "max_wait_ms": 0,
    } | bad
    with pytest.raises(ValueError):  # noqa: PT011
        await LinkAdmission(fake_redis).admit(**args)  # type: ignore[arg-type]
