"""Readiness tells the truth about the background work: a refresher that crashes on
every tick (here: a corrupt entry in the shared store, which its demand read cannot
parse) is logged with its traceback, counted, restarted, and takes the replica out of
service (``/readyz`` 503) instead of leaving it to serve an ageing catalogue."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

import httpx
import structlog

from app.main import create_app
from app.settings import Settings
from tests.support.asgi import app_client_and_state
from tests.support.logs import all_logs
from tests.support.polling import eventually

DEMAND_KEY = "{igm:cat}:demand"


def crashes(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == "background_task_crashed"]


async def test_a_crashing_refresher_is_logged_restarted_and_takes_the_replica_out() -> None:
    app = create_app(Settings(igm_mode="simulator", log_format="json"))  # configures logging
    with all_logs() as logs:
        async with app_client_and_state(app) as (client, state):

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready, "the replica never became ready", timeout_s=20)
            assert (await client.get("/readyz")).json()["checks"]["tasks"] == "ok"

            # What the refresher reads on every tick holds an entry it cannot parse.
            await state.redis.zadd(DEMAND_KEY, {"not-a-date": time.time() + 3600})

            async def out_of_service() -> bool:
                answer = await client.get("/readyz")
                return answer.status_code == 503

            await eventually(out_of_service, "/readyz kept answering 200", timeout_s=20)
            body = (await client.get("/readyz")).json()
            assert body["status"] == "unavailable"
            assert body["checks"]["tasks"] == "down:catalogue-refresher"
            assert body["checks"]["catalogue"] == "warm"  # still warm: only the task is down

            async def restarted() -> bool:
                return state.metrics.registry.get_sample_value(
                    "gateway_task_restarts_total", {"task": "catalogue-refresher"}
                ) not in (None, 0.0)

            await eventually(restarted, "no restart counted")
            metrics = (await client.get("/metrics")).text
            assert 'gateway_task_restarts_total{task="catalogue-refresher"}' in metrics
            # Reads still answer from memory meanwhile.
            assert (await client.get("/v1/events/open")).status_code == 200

    lines = crashes(logs)
    assert lines, "the crash was never logged"
    for line in lines:
        assert line["task"] == "catalogue-refresher"
        assert line["log_level"] == "error"
        assert isinstance(line["exc_info"], ValueError)
        rendered = structlog.processors.format_exc_info(None, "error", dict(line))
        assert "Traceback" in rendered["exception"]
        assert "refresh_next_date" in rendered["exception"]  # where it broke


async def test_ready_means_warm_and_every_task_running() -> None:
    settings = Settings(igm_mode="simulator", log_format="json")
    async with app_client_and_state(create_app(settings)) as (client, state):
        first = await client.get("/readyz")
        if not state.catalogue.warmed:  # the embedded simulator answers fast: usually warm
            assert first.status_code == 503
            assert first.json()["checks"]["catalogue"].startswith("cold")

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, "the replica never became ready", timeout_s=20)
        names = sorted(item.name for item in state.supervisor.tasks)
        assert names == [
            "catalogue-refresher",
            "catalogue-sync",
            "live-caps-renewal",  # SSE_MAX_PER_USER is on by default
            "live-heartbeats",
        ]
        answer: httpx.Response = await client.get("/readyz")
        assert answer.json() == {
            "status": "ok",
            "checks": {"store": "ok", "catalogue": "warm", "tasks": "ok"},
        }
