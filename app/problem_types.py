"""The table of every problem the gateway answers: its stable ``code``, HTTP status,
title, the detail a client gets when the raiser has nothing more precise to say, and
ONEPlatform's ``operationCode`` for the same refusal where there is one.

Adding a row is documenting a new answer; changing one is an API change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ProblemType:
    code: str
    status: int
    title: str
    detail: str  # what a client is told when the raiser says nothing more precise
    operation_code: int | None = None  # ONEPlatform's code for the same refusal
    # Further statuses the same problem is answered with (documented beside ``status``).
    also: tuple[int, ...] = ()

    @property
    def statuses(self) -> tuple[int, ...]:
        return (self.status, *self.also)


_TABLE: Final = (
    # requests
    ProblemType("invalid_request", 422, "Invalid request", "The request is not valid."),
    ProblemType("unauthorized", 401, "Unauthorized", "A bearer token or an API key is required."),
    ProblemType("viewer_ip_unknown", 400, "Viewer IP unknown", "No usable client address."),
    ProblemType(
        "body_too_large", 413, "Body too large", "The request body is larger than allowed."
    ),
    ProblemType(
        "headers_too_large",
        431,
        "Request headers too large",
        "The request headers are larger than allowed in all.",
    ),
    ProblemType("not_found", 404, "Not found", "Not found."),
    ProblemType("method_not_allowed", 405, "Method not allowed", "Method not allowed."),
    ProblemType("http_error", 400, "HTTP error", "HTTP error."),
    ProblemType(
        "internal_error",
        500,
        "Internal error",
        "The gateway failed to answer; the error was logged.",
    ),
    # the catalogue
    ProblemType(
        "date_out_of_range",
        422,
        "Date out of range",
        "Events are served for a window of days around today.",
    ),
    ProblemType(
        "event_not_found",
        404,
        "Event not found",
        "The catalogue has no event with this id.",
        operation_code=401,
    ),
    ProblemType(
        "catalogue_warming",
        503,
        "Not fetched yet",
        "This list has not been fetched from ONEPlatform yet; it is queued.",
    ),
    ProblemType(
        "refresh_not_due",
        503,
        "No budget slot yet",
        "The fleet's event budget gave no slot in time; ask again later.",
    ),
    ProblemType(
        "live_full",
        503,
        "Too many live subscribers",
        "This replica holds as many live subscribers as it may.",
    ),
    ProblemType(
        "user_live_limited",
        429,
        "Too many live streams",
        "This user holds as many live streams as it may; close one first.",
    ),
    ProblemType(
        "ip_live_limited",
        429,
        "Too many live streams",
        "This address holds as many live streams as it may; close one first.",
    ),
    ProblemType(
        "store_unavailable",
        503,
        "Store unavailable",
        "The shared store cannot be reached right now; retry shortly.",
    ),
    # the admin API
    ProblemType(
        "admin_locked_out",
        429,
        "Too many failed admin keys",
        "This client sent too many wrong admin keys; try again after Retry-After.",
    ),
    # links
    ProblemType("links_disabled", 404, "Links disabled", "This gateway does not mint links."),
    ProblemType(
        "event_pending",
        409,
        "Event has not started",
        "The event has not started (status P); links are minted only for events in progress.",
        operation_code=402,
    ),
    ProblemType(
        "event_closed",
        410,
        "Event is over",
        "The event is over (status C); links are minted only for events in progress.",
        operation_code=403,
    ),
    ProblemType(
        "event_cancelled",
        410,
        "Event was cancelled",
        "The event was cancelled (status V); links are minted only for events in progress.",
        operation_code=404,
    ),
    ProblemType(
        "stream_not_found",
        404,
        "Stream not found",
        "The event has no stream with this name; see its /streams.",
        operation_code=304,
    ),
    ProblemType(
        "invalid_redirect_url",
        422,
        "Invalid redirect URL",
        "redirectUrl must be an absolute http(s) URL on an allowed host.",
        operation_code=305,
    ),
    ProblemType(
        "geo_blocked",
        403,
        "Not available in your region",
        "This stream is not available in the viewer's region.",
        operation_code=306,
    ),
    ProblemType(
        "watch_rule_denied",
        403,
        "Not allowed to watch",
        "The operator's watch rules do not let this viewer watch this event.",
    ),
    ProblemType(
        "session_not_found",
        404,
        "Session not found",
        "No live session with this id for this user: it ended, expired or was replaced.",
    ),
    ProblemType(
        "too_many_streams",
        409,
        "Too many streams",
        "This user already watches as many streams as allowed; stop one first.",
    ),
    ProblemType(
        "user_rate_limited",
        429,
        "Too many link requests for this user",
        "This user asked for links faster than allowed; slow down.",
    ),
    ProblemType(
        "rate_limited",
        429,
        "Too many link requests",
        "The fleet's link budget is spent for now; retry after the indicated time.",
    ),
    ProblemType(
        "link_budget_unavailable",
        503,
        "Link budget unavailable",
        "The gateway cannot coordinate its link budget right now.",
    ),
    ProblemType(
        "link_limits_unavailable",
        503,
        "Link limits unavailable",
        "The gateway cannot check this user's limits right now (LINK_LIMITS_FALLBACK=refuse).",
    ),
    # ONEPlatform
    ProblemType(
        "upstream_rejected_customer",
        502,
        "Gateway misconfigured: customer rejected",
        "ONEPlatform rejected the gateway's customer account; the operator was alerted.",
        operation_code=300,
    ),
    ProblemType(
        "upstream_rejected_user_ip",
        502,
        "Upstream rejected the viewer IP",
        "ONEPlatform rejected the viewer's IP address.",
        operation_code=301,
    ),
    ProblemType(
        "upstream_rejected_user_id",
        502,
        "Upstream rejected the user id",
        "ONEPlatform rejected the user id.",
        operation_code=302,
    ),
    ProblemType(
        "upstream_rejected_server_ip",
        502,
        "Gateway misconfigured: server IP not allowed",
        "ONEPlatform does not accept calls from this gateway; the operator was alerted.",
        operation_code=303,
    ),
    ProblemType(
        "provider_failure",
        502,
        "Stream provider failure",
        "The stream provider behind ONEPlatform failed to give a link.",
        operation_code=307,
    ),
    ProblemType(
        "invalid_transaction_ref",
        502,
        "Upstream rejected the transaction reference",
        "ONEPlatform did not accept the link it had just given.",
        operation_code=308,
    ),
    ProblemType(
        "upstream_error",
        502,
        "Upstream error",
        "ONEPlatform refused the call with a code the gateway does not know.",
    ),
    ProblemType(
        "upstream_rate_limited",
        503,
        "Upstream is rate limiting",
        "ONEPlatform asked the gateway to slow down; try again shortly.",
    ),
    ProblemType(
        "upstream_timeout",
        503,
        "Upstream timed out",
        "ONEPlatform did not answer in time.",
    ),
    ProblemType(
        "upstream_unavailable",
        503,
        "Upstream unavailable",
        "ONEPlatform could not be reached or failed; the gateway retries it shortly.",
        also=(502,),
    ),
    ProblemType(
        "upstream_bad_response",
        502,
        "Upstream answered badly",
        "ONEPlatform's answer could not be used.",
    ),
)

PROBLEMS: Final[Mapping[str, ProblemType]] = {kind.code: kind for kind in _TABLE}
