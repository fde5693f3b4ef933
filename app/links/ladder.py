"""Which stream and kind a play request tries, in order, per device.

A ladder is a comma list of ``STREAM:kind`` steps (``ULL:raw,HLS:raw,HLS:player``),
configured per device (``PLAY_LADDER_WEB`` …). ``candidates`` is the pure rule that
turns a ladder into the steps worth checking for one event: a ULL step only when the
front end can play THEOlive (``ull``) and the event has a ULL stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, get_args

LinkKind = Literal["raw", "player"]
Device = Literal["web", "mobile", "tablet", "tv", "app"]
DEVICES: Final = get_args(Device)
ULL_STREAM: Final = "ULL"

DEFAULT_LADDERS: Final[dict[str, str]] = {
    "web": "ULL:raw,HLS:raw,HLS:player",
    "mobile": "ULL:raw,HLS:raw,HLS:player",
    "tablet": "ULL:raw,HLS:raw,HLS:player",
    "tv": "ULL:raw,HLS:raw,HLS:player",
    "app": "HLS:raw",
}


@dataclass(frozen=True, slots=True)
class PlayStep:
    stream_name: str
    kind: LinkKind


class LadderError(ValueError):
    pass


def parse_ladder(text: str) -> tuple[PlayStep, ...]:
    """``"ULL:raw,HLS:player"`` → steps; a malformed ladder raises ``LadderError``."""
    steps = []
    for part in text.split(","):
        stream_name, sep, kind = part.strip().partition(":")
        stream_name, kind = stream_name.strip(), kind.strip()
        if not sep or not stream_name or kind not in get_args(LinkKind):
            raise LadderError(f"'{part.strip()}' is not STREAM:raw or STREAM:player")
        step = PlayStep(stream_name, kind)  # type: ignore[arg-type]  # checked above
        if step in steps:
            raise LadderError(f"'{part.strip()}' is listed twice")
        steps.append(step)
    if not steps:
        raise LadderError("a ladder needs at least one step")
    return tuple(steps)


def is_ull(step: PlayStep) -> bool:
    return step.stream_name.casefold() == ULL_STREAM.casefold()


def candidates(
    ladder: Iterable[PlayStep], *, ull: bool, stream_names: Iterable[str] | None
) -> tuple[PlayStep, ...]:
    """The ladder's steps to check, in order: ULL steps are dropped when the player
    cannot do THEOlive (``ull`` false) or the event has no ULL stream (``stream_names``
    None: not known yet, so only ``ull`` decides)."""
    has_ull = stream_names is None or any(
        name.casefold() == ULL_STREAM.casefold() for name in stream_names
    )
    return tuple(step for step in ladder if not is_ull(step) or (ull and has_ull))
