"""The gateway in this process over its embedded simulator and store, with a client
and its state, and the simulator's fault controls reached through the gateway's own
upstream client (as ``tests/support/simulator.py`` reaches a simulator process)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings
from app.settings.checks import SIMULATOR_API_KEY
from app.state import GatewayState
from tests.support.polling import eventually


@dataclass
class Gateway:
    client: httpx.AsyncClient
    state: GatewayState
    app: FastAPI

    def viewer(self, user: str | None = None) -> dict[str, str]:
        return {"X-API-Key": SIMULATOR_API_KEY, "X-User-Id": user or uuid.uuid4().hex}

    async def fault(self, method: str, kind: str, **fields: Any) -> None:
        """A fault of the embedded simulator (reached through the upstream client)."""
        body = {"method": method, "kind": kind, **fields}
        reply = await self.state.http.post("http://simulator/_sim/faults", json=body)
        reply.raise_for_status()

    async def clear_faults(self) -> None:
        (await self.state.http.delete("http://simulator/_sim/faults")).raise_for_status()

    async def warm(self) -> None:
        """Wait until the catalogue has its open list."""

        async def warmed() -> bool:
            return (await self.client.get("/v1/events/open")).status_code == 200

        await eventually(warmed, "the catalogue warmed")

    async def events_today(self) -> list[dict[str, Any]]:
        today = datetime.now(UTC).date().isoformat()
        reply = await self.client.get("/v1/events", params={"date": today})
        assert reply.status_code == 200, reply.text
        events: list[dict[str, Any]] = reply.json()["events"]
        return events


@asynccontextmanager
async def gateway(client_host: str = "127.0.0.1", **settings: Any) -> AsyncIterator[Gateway]:
    app = create_app(Settings(igm_mode="simulator", igm_read_timeout_s=1.0, **settings))
    async with app.router.lifespan_context(app) as lifespan_state:
        assert lifespan_state is not None
        state = dict(lifespan_state)

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=(client_host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Gateway(client, state["gateway"], app)
