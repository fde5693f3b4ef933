from __future__ import annotations

import base64
import re

import pytest

from app.simulator.events import SimEvent, SimStream
from app.simulator.links import (
    LinkRequest,
    TransactionBook,
    decode_ref,
    judge_link,
    split_raw,
    theo_channel_id,
)


def _stream(name: str = "HLS", allow: str = "", block: str = "") -> SimStream:
    return SimStream(name=name, is_ull=name == "ULL", geo_allow=allow, geo_block=block, wire={})


def _event(allow: str = "", block: str = "", stream: SimStream | None = None) -> SimEvent:
    return SimEvent(
        event_id="E-1",
        wire={},
        start=None,
        end=None,
        day=None,
        fixed_status="O",
        streams=(stream or _stream(),),
        geo_allow=allow,
        geo_block=block,
        pascal_streams_key=False,
        pascal_link=False,
    )


GOOD = LinkRequest("viewer", "127.0.0.1", "E-1", "HLS-RAW", "https://example.com/x")


@pytest.mark.parametrize(
    ("request_", "event", "status", "viewer", "code"),
    [
        (GOOD, _event(), "O", "GB", 200),
        (LinkRequest(None, "bad", None, None, None), None, None, None, 302),
        (LinkRequest(" ", "127.0.0.1", "E-1", "HLS", "https://x.y"), _event(), "O", "GB", 302),
        (LinkRequest("v", "bad", None, None, None), None, None, None, 301),
        (LinkRequest("v", "1.2.3.4", None, "HLS", "https://x.y"), None, None, None, 401),
        (GOOD, _event(), "P", "GB", 402),
        (GOOD, _event(), "C", "GB", 403),
        (GOOD, _event(), "V", "GB", 404),
        (LinkRequest("v", "1.2.3.4", "E-1", "SD", None), _event(), "O", "GB", 304),
        (LinkRequest("v", "1.2.3.4", "E-1", "-RAW", None), _event(), "O", "GB", 304),
        (LinkRequest("v", "1.2.3.4", "E-1", "HLS", "ftp://x.y"), _event(), "O", "GB", 305),
        (LinkRequest("v", "1.2.3.4", "E-1", "HLS", "https://"), _event(), "O", "GB", 305),
        (GOOD, _event(allow="FR"), "O", "GB", 306),
        (GOOD, _event(stream=_stream(block="uk")), "O", "GB", 306),
        (GOOD, _event(allow="US"), "O", "US-NJ", 200),
    ],
    ids=[
        "ok",
        "user-id-before-ip",
        "blank-user-id",
        "bad-ip-before-event",
        "unknown-event",
        "pending",
        "closed",
        "void",
        "unknown-stream",
        "only-suffix",
        "ftp-redirect",
        "redirect-without-host",
        "event-geo",
        "stream-geo",
        "subdivision-in-country",
    ],
)
def test_judge_link(
    request_: LinkRequest, event: SimEvent | None, status: str | None, viewer: str | None, code: int
) -> None:
    assert judge_link(request_, event, status, viewer).code == code


def test_split_raw() -> None:
    assert split_raw("HLS-RAW") == ("HLS", True)
    assert split_raw("ull-raw") == ("ull", True)
    assert split_raw("HLS") == ("HLS", False)


def test_transactions_resolve_from_their_reference_in_several_spellings() -> None:
    book = TransactionBook(seed=9)
    minted = book.mint(_event(), _stream(), raw=True)
    assert re.fullmatch(r"\d{9}", minted.transaction_id)
    decoded = base64.b64decode(minted.encoded_ref).decode()
    assert decoded == f"{minted.transaction_id};{minted.token}"
    plus_as_space = minted.encoded_ref.replace("+", " ")
    unpadded = minted.encoded_ref.rstrip("=")
    urlsafe = base64.urlsafe_b64encode(decoded.encode()).decode()
    for ref in (minted.encoded_ref, plus_as_space, unpadded, urlsafe):
        assert book.resolve(ref) == minted
    player = book.mint(_event(), _stream(), raw=False)
    assert book.resolve(player.encoded_ref) is None
    forged = base64.b64encode(f"{minted.transaction_id};not-the-token".encode()).decode()
    assert book.resolve(forged) is None
    assert TransactionBook(seed=9).mint(_event(), _stream(), raw=True) == minted


@pytest.mark.parametrize(
    "ref", ["", "!!!", "bm8gc2VtaWNvbG9u", base64.b64encode(b"\xff;x").decode()]
)
def test_malformed_references(ref: str) -> None:
    assert decode_ref(ref) is None


def test_theo_channel_id_is_stable_and_shaped() -> None:
    channel = theo_channel_id(1, "E-1", "ULL")
    assert re.fullmatch(r"[0-9a-z]{25}", channel)
    assert theo_channel_id(1, "E-1", "ULL") == channel
    assert theo_channel_id(1, "E-2", "ULL") != channel
