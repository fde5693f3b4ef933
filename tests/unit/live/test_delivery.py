from __future__ import annotations

import asyncio

from app.live.delivery import Delivery
from tests.support.logs import all_logs


async def test_a_delivery_ends_once_every_subscriber_has_received_the_change() -> None:
    now = [100.0]
    delivery = Delivery(cap_s=60, clock=lambda: now[0])
    delivery.add()
    delivery.add()
    delivery.received()
    assert not delivery.ended
    assert delivery.remaining == 1
    now[0] = 100.25
    with all_logs() as logs:
        delivery.received()
    assert delivery.ended
    await asyncio.wait_for(delivery.wait(), timeout=10)
    assert logs == [
        {"event": "live_delivery_ended", "log_level": "info", "seconds": 0.25, "left": 0}
    ]


async def test_the_cap_ends_it_when_a_subscriber_never_receives_it() -> None:
    delivery = Delivery(cap_s=0)
    delivery.add()
    with all_logs() as logs:
        await asyncio.wait_for(delivery.wait(), timeout=10)  # only the cap's timer ends it
    assert delivery.remaining == 1
    assert [(line["event"], line["left"]) for line in logs] == [("live_delivery_ended", 1)]
    with all_logs() as logs:
        delivery.received()  # late: nothing more to do
        delivery.end()
    assert logs == []
