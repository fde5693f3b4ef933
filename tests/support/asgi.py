"""An httpx client for an app in this process, with its lifespan running.

``httpx.ASGITransport`` runs no lifespan and passes no lifespan state; this helper
runs the app's lifespan and gives every request a copy of its state, as uvicorn does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send


@asynccontextmanager
async def app_client(
    app: FastAPI, client_host: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app) as state:
        lifespan_state: dict[str, Any] = dict(state or {})

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(lifespan_state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=(client_host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
