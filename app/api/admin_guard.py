"""What stands in front of every ``/admin`` action: the key check, the lockout of a
client that keeps sending wrong keys, and the audit record of the action.

A wrong ``X-Admin-Key`` counts against the client's address (the socket peer, or the
viewer address a trusted proxy forwarded) in a fleet-wide window
(``ADMIN_MAX_FAILURES`` per ``ADMIN_FAILURE_WINDOW_S``, ``app/ratelimit/failures.py``).
The failure that reaches the limit, and every request of that client until the window
ends, is answered 429 ``admin_locked_out`` with ``Retry-After``, before any key is
compared: a guesser gets ten tries per window, not hundreds a second.

Every admin request, allowed or not, leaves one audit record (``app/audit.py``):
``done``, ``failed`` (the action answered an error), ``refused`` (a wrong key) or
``locked_out``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from app.api.peer import client_address
from app.audit import AdminAuditRecord, AdminOutcome, now_iso
from app.errors import GatewayError, problem
from app.identity.admin_keys import HEADER
from app.observability.context import current_summary
from app.state import GatewayState

# The OpenAPI document's admin key scheme (Swagger UI's Authorize sends it).
admin_key_scheme = APIKeyHeader(
    name=HEADER,
    scheme_name="adminKey",
    description="One of `ADMIN_API_KEYS` (never a link API key).",
    auto_error=False,
)


def action_name(request: Request) -> str:
    """``METHOD /route/{template}``: the audit's action and the metric's label."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return f"{request.method} {path if isinstance(path, str) else '/admin'}"


def target_of(state: GatewayState, request: Request) -> str | None:
    params = request.path_params
    parts = []
    if "eventId" in params:
        parts.append(f"eventId={params['eventId']}")
    if "userId" in params:
        parts.append(f"user={state.audit.hash_user(str(params['userId']))}")
    if "sessionId" in params:
        parts.append(f"sessionId={params['sessionId']}")
    return " ".join(parts) or None


def _record(
    state: GatewayState,
    request: Request,
    action: str,
    client: str,
    key: int | None,
    outcome: AdminOutcome,
    status: int | None,
    code: str | None,
) -> None:
    state.metrics.admin_actions.labels(action, outcome).inc()
    summary = current_summary()
    state.audit.record_admin(
        AdminAuditRecord(
            time=now_iso(),
            request_id=summary.request_id if summary else None,
            action=action,
            target=target_of(state, request),
            client=client,
            key=f"key-{key}" if key is not None else None,
            outcome=outcome,
            status=status,
            code=code,
        )
    )


async def guarded_admin(
    request: Request, presented: Annotated[str | None, Security(admin_key_scheme)]
) -> AsyncIterator[GatewayState]:
    """The gateway's state for an admin action, once the request has shown an admin key
    (else 401, or 429 once locked out); the action is audited however it ends."""
    state: GatewayState = request.state.gateway
    action = action_name(request)
    client = client_address(state, request)
    failures = state.admin_failures
    locked_for = await failures.locked_out(client)
    if locked_for is not None:
        _record(state, request, action, client, None, "locked_out", 429, "admin_locked_out")
        raise locked_out(locked_for)
    key = state.admin_keys.match(presented)
    if key is None:
        state.metrics.refusals.labels("admin_auth").inc()
        locked_for = await failures.failed(client)
        if locked_for is not None:
            _record(state, request, action, client, None, "locked_out", 429, "admin_locked_out")
            raise locked_out(locked_for)
        _record(state, request, action, client, None, "refused", 401, "unauthorized")
        raise problem("unauthorized", f"The admin API needs a valid {HEADER} header.")
    try:
        yield state
    except GatewayError as exc:
        _record(state, request, action, client, key, "failed", exc.status, exc.code)
        raise
    except Exception:
        _record(state, request, action, client, key, "failed", 500, "internal_error")
        raise
    else:
        _record(state, request, action, client, key, "done", None, None)


def locked_out(retry_after_s: float) -> GatewayError:
    return problem("admin_locked_out", retry_after_s=retry_after_s)
