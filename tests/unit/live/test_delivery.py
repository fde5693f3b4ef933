from __future__ import annotations

import asyncio
import gc

from app.live.delivery import Delivery
from tests.support.logs import all_logs


async def test_the_collector_is_off_until_every_subscriber_has_taken_the_change() -> None:
    now = [100.0]
    delivery = Delivery(cap_s=60, clock=lambda: now[0])
    delivery.add()
    delivery.add()
    assert not gc.isenabled()
    delivery.taken()
    assert not gc.isenabled()
    assert not delivery.ended
    now[0] = 100.25
    with all_logs() as logs:
        delivery.taken()
    assert gc.isenabled()
    assert delivery.ended
    await asyncio.wait_for(delivery.wait(), timeout=10)
    assert logs == [
        {"event": "live_delivery_ended", "log_level": "info", "seconds": 0.25, "left": 0}
    ]


async def test_the_cap_turns_the_collector_back_on_when_a_subscriber_never_takes_it() -> None:
    delivery = Delivery(cap_s=0)
    delivery.add()
    assert not gc.isenabled()
    with all_logs() as logs:
        await asyncio.wait_for(delivery.wait(), timeout=10)  # only the cap's timer ends it
    assert delivery.due == 1
    assert gc.isenabled()
    assert [(line["event"], line["left"]) for line in logs] == [("live_delivery_ended", 1)]
    delivery.taken()  # late: nothing more to do
    delivery.end()
    assert gc.isenabled()


async def test_a_collector_that_was_off_is_left_off() -> None:
    gc.disable()
    try:
        delivery = Delivery(cap_s=60)
        delivery.add()
        delivery.taken()
        assert delivery.ended
        assert not gc.isenabled()
    finally:
        gc.enable()
