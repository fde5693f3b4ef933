"""The guide's operation codes and texts, and the bodies that carry them.

Each message is the first sentence of the guide's description of its code. The GET
methods answer an operation error with HTTP 400 and ``{"message",
"operationCode"}``; the two link methods answer HTTP 200 with their own response model,
link fields null. ``/api/stream/link`` uses camelCase keys or PascalCase ones depending
on the event; ``/api/liveStream`` always uses PascalCase.
"""

from __future__ import annotations

from typing import Final

from app.simulator.events import JsonObject

SUCCESS: Final = 200

MESSAGES: Final[dict[int, str]] = {
    200: "Success",
    300: "Your customer details are invalid, please contact support.",
    301: "You must supply a valid IP Address for your end user.",
    302: "You must supply a valid User Identifier.",
    303: "Calls from this Server are not allowed.",
    304: "The Unique Stream Name is invalid.",
    305: "The Redirect URL is invalid.",
    306: "This event is unavailable in the requesting user's region.",
    307: "Unable to get stream link from external provider",
    308: "Invalid value of encoded transaction reference",
    400: "Bad Request - Verify that query parameters are correct",
    401: "Event not found.",
    402: "Event is still pending.",
    403: "Event is now closed.",
    404: "Event is cancelled.",
    429: "Rate limit exceeded",
    500: "Internal Server Error",
}


def message_for(code: int) -> str:
    return MESSAGES.get(code, "Unknown error")


def operation_error(code: int) -> JsonObject:
    """The plain error body of the GET methods (and of 429)."""
    return {"message": message_for(code), "operationCode": code}


def link_body(
    pascal: bool,
    code: int,
    stream_link: str | None = None,
    stream_type: str | None = None,
    provider: str | None = None,
) -> JsonObject:
    """The ``/api/stream/link`` response model, camelCase or PascalCase."""
    body: JsonObject = {
        "streamLink": stream_link,
        "streamType": stream_type,
        "provider": provider,
        "message": message_for(code),
        "operationCode": code,
    }
    if not pascal:
        return body
    return {key[0].upper() + key[1:]: value for key, value in body.items()}


def live_stream_body(
    code: int,
    stream_link: str | None = None,
    stream_type: int | None = None,
    cdn: str | None = None,
    transaction_id: str | None = None,
    stream_token: str | None = None,
    event_id: str | None = None,
) -> JsonObject:
    """The ``/api/liveStream`` response model (PascalCase)."""
    return {
        "StreamLink": stream_link,
        "StreamType": stream_type,
        "ContentDeliveryNetwork": cdn,
        "TransactionId": transaction_id,
        "StreamToken": stream_token,
        "EventId": event_id,
        "Message": message_for(code),
        "OperationCode": code,
    }
