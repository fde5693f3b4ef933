"""httpx clients for an app in this process, with its lifespan running.

``httpx.ASGITransport`` runs no lifespan and passes no lifespan state; these helpers
run the app's lifespan and give every request a copy of its state, as uvicorn does.
``app_clients`` gives one client per entry point into the same running app (e.g. the
app itself and its routed stack alone, to compare the two).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


@asynccontextmanager
async def app_clients(
    app: FastAPI, *entries: ASGIApp, client_host: str = "127.0.0.1"
) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with app.router.lifespan_context(app) as state, AsyncExitStack() as stack:
        lifespan_state: dict[str, Any] = dict(state or {})
        clients = []
        for entry in entries or (app,):

            async def with_state(
                scope: Scope, receive: Receive, send: Send, entry: ASGIApp = entry
            ) -> None:
                scope["state"] = dict(lifespan_state)
                await entry(scope, receive, send)

            transport = httpx.ASGITransport(app=with_state, client=(client_host, 50000))
            client = httpx.AsyncClient(transport=transport, base_url="http://gateway")
            clients.append(await stack.enter_async_context(client))
        yield clients


@asynccontextmanager
async def app_client(
    app: FastAPI, client_host: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_clients(app, client_host=client_host) as (client,):
        yield client


@asynccontextmanager
async def app_client_and_state(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A client, and the lifespan's state (``GatewayState``) to reach its collaborators."""
    async with app.router.lifespan_context(app) as state, AsyncExitStack() as stack:
        lifespan_state: dict[str, Any] = dict(state or {})

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(lifespan_state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=("127.0.0.1", 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway")
        yield await stack.enter_async_context(client), lifespan_state["gateway"]
