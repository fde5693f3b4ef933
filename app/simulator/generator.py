"""The generated schedule: ~20-40 events a day over at least six sports, for any date.

Deterministic for a seed and a date. The date is encoded in the event number
(``ordinal * 100 + index``), so an event id alone is enough to find its event again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from app.simulator.events import JsonObject, SimEvent, SimStream, casing_flag

EVENTS_PER_DAY = (20, 40)
MIN_SPORTS_PER_DAY = 6
VOID_SHARE = 0.05
ULL_SHARE = 0.25
RESTRICTED_EVENT_SHARE = 0.3
RESTRICTED_STREAM_SHARE = 0.15

_EVENT_ALLOW = ("GB,IE", "UK, US", "gb,ie", "US-NJ,US-PA", "GB, IE, US-NJ", "DE,AT,CH", "uk")
_EVENT_BLOCK = ("", "", "US", "FR, DE", "au", "US-NV")
_STREAM_ALLOW = ("", "UK, US", "GB,IE", "us-nj")
_STREAM_BLOCK = ("AT", "GB, AT", "", "fr")


@dataclass(frozen=True, slots=True)
class SportProfile:
    code: str
    weight: int
    minutes: int
    venues: tuple[tuple[str, str], ...]  # (locationName, two-to-three letter tag)
    sides: tuple[str, ...]  # teams or players; empty for racing (title = "HH:MM venue")


PROFILES: tuple[SportProfile, ...] = (
    SportProfile(
        "HR",
        6,
        12,
        (("Ascot", "ASC"), ("Cheltenham", "CHL"), ("Kempton", "KEM"), ("Gulfstream Park", "GPK")),
        (),
    ),
    SportProfile("GH", 5, 8, (("Romford", "ROM"), ("Towcester", "TOW"), ("Sheffield", "SHE")), ()),
    SportProfile(
        "FT",
        5,
        115,
        (("Dutch Eredivisie 2015", "WO"), ("English Championship", "EN"), ("Segunda", "SG")),
        ("NEC", "FC Twente", "Ajax", "PSV", "Feyenoord", "AZ", "Utrecht", "Heerenveen"),
    ),
    SportProfile(
        "BB",
        3,
        130,
        (("EuroLeague", "EL"), ("Liga ACB", "AC")),
        ("Real Madrid", "Barcelona", "Olympiacos", "Fenerbahce", "Monaco", "Baskonia"),
    ),
    SportProfile(
        "IH",
        3,
        150,
        (("Swedish SHL", "SH"), ("Finnish Liiga", "LI")),
        ("Frolunda", "Skelleftea", "Lulea", "Tappara", "Ilves", "HIFK"),
    ),
    SportProfile(
        "CK",
        2,
        210,
        (("Big Bash League", "BL"), ("Caribbean Premier League", "CP")),
        ("Sixers", "Scorchers", "Heat", "Strikers", "Knight Riders", "Royals"),
    ),
    SportProfile(
        "DT",
        2,
        240,
        (("Modus Super Series", "MOD"), ("Premier League Darts", "PLD")),
        ("Smith", "Price", "Wright", "Aspinall", "Humphries", "Littler"),
    ),
    SportProfile(
        "EC",
        2,
        90,
        (("ESL Challenger", "ESL"), ("BLAST Premier", "BLA")),
        ("NAVI", "Vitality", "FaZe", "G2", "Astralis", "MOUZ"),
    ),
    SportProfile(
        "TT",
        3,
        40,
        (("TT Cup", "TC"), ("Setka Cup", "SC")),
        ("Kovalenko", "Novak", "Horak", "Brzezinski", "Melnyk", "Sykora"),
    ),
    SportProfile("BX", 1, 180, (("Fight Night", "FN"),), ("Okafor", "Reyes", "Walsh", "Petrov")),
    SportProfile("VB", 1, 120, (("SuperLega", "SL"),), ("Perugia", "Trento", "Modena", "Piacenza")),
)


def event_number(day: date, index: int) -> str:
    return str(day.toordinal() * 100 + index)


def decode_event_number(number: str) -> tuple[date, int] | None:
    """The (date, index) an event number was generated for, if it can be one."""
    if not number.isdigit() or len(number) > 12:
        return None
    ordinal, index = divmod(int(number), 100)
    if not 1 <= ordinal <= date.max.toordinal():
        return None
    return date.fromordinal(ordinal), index


def format_time(moment: datetime, style: str) -> str:
    """A UTC time in one of the forms the upstream is seen to use."""
    plain = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if style == "z":
        return plain + "Z"
    if style == "fraction3":
        return plain + ".000"
    if style == "fraction7":
        return plain + ".0000000"
    if style == "malformed":
        return moment.strftime("%Y-%m-%dT:%H:%M:%S")
    return plain


def _time_style(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.03:
        return "malformed"
    if roll < 0.15:
        return "z"
    if roll < 0.22:
        return "fraction3"
    if roll < 0.30:
        return "fraction7"
    return "plain"


def _location_code(seed: int, profile: SportProfile, tag: str) -> str:
    venue_rng = random.Random(f"{seed}:venue:{profile.code}:{tag}")
    return f"{venue_rng.randrange(1000):03d}{tag}{profile.code}{venue_rng.randrange(1000):03d}"


def _stream(rng: random.Random, name: str, is_ull: bool) -> SimStream:
    allow, block = "", ""
    if rng.random() < RESTRICTED_STREAM_SHARE:
        allow, block = rng.choice(_STREAM_ALLOW), rng.choice(_STREAM_BLOCK)
    width, height = rng.choice(((640, 360), (1280, 720), (1920, 1080)))
    wire: JsonObject = {
        "uniqueStreamName": name,
        "streamType": "ULL" if is_ull else "HLS",
        "description": "PRM ULL THEO" if is_ull else rng.choice(("PRM HLS HIGH", "PRM HLS")),
        "geoCountryAllow": allow,
        "geoCountryBlock": block,
        "playerWidth": 640,
        "playerHeight": 360,
        "fixedSize": rng.random() < 0.5,
        "controls": rng.random() < 0.5,
        "fullscreen": rng.random() < 0.5,
        "videoBitRateKbps": rng.choice((500, 1200, 2500, 4500)),
        "audioBitRateKbps": rng.choice((22, 64, 128)),
        "streamStretching": rng.choice(("exactfit", "uniform")),
        "streamWidth": width,
        "streamHeight": height,
    }
    return SimStream(name=name, is_ull=is_ull, geo_allow=allow, geo_block=block, wire=wire)


def default_hls_stream() -> SimStream:
    """The plain unrestricted HLS stream given to scenario events without streams."""
    return _stream(random.Random(0), "HLS", is_ull=False)


def _pick_profiles(rng: random.Random, count: int) -> list[SportProfile]:
    chosen = rng.sample(PROFILES, MIN_SPORTS_PER_DAY)
    weights = [p.weight for p in PROFILES]
    chosen += rng.choices(PROFILES, weights=weights, k=count - MIN_SPORTS_PER_DAY)
    return chosen


def _title(rng: random.Random, profile: SportProfile, venue: str, start: datetime) -> str:
    if not profile.sides:
        return f"{start:%H:%M} {venue}"
    home, away = rng.sample(profile.sides, 2)
    return f"{home} v {away}"


@lru_cache(maxsize=64)
def generate_day(seed: int, day: date) -> tuple[SimEvent, ...]:
    """The generated events starting on ``day`` (UTC), sorted by start time: an
    all-day channel first, then 19 to 39 events at random times."""
    if day >= date.max:  # an event on the last day would end after datetime.max
        return ()
    rng = random.Random(f"{seed}:{day.isoformat()}")
    count = rng.randint(*EVENTS_PER_DAY) - 1
    midnight = datetime.combine(day, time(0), tzinfo=UTC)
    drafts = sorted(
        (
            (midnight + timedelta(minutes=rng.randrange(0, 24 * 60, 5)), profile)
            for profile in _pick_profiles(rng, count)
        ),
        key=lambda draft: (draft[0], draft[1].code),
    )
    events = [_channel(seed, day, midnight)]
    for index, (start, profile) in enumerate(drafts, start=1):
        venue, tag = rng.choice(profile.venues)
        allow, block = "", ""
        if rng.random() < RESTRICTED_EVENT_SHARE:
            allow, block = rng.choice(_EVENT_ALLOW), rng.choice(_EVENT_BLOCK)
        void = rng.random() < VOID_SHARE
        streams = [_stream(rng, "HLS", is_ull=False)]
        if rng.random() < ULL_SHARE:
            streams.append(_stream(rng, "ULL", is_ull=True))
        title = _title(rng, profile, venue, start)
        events.append(
            _event(
                seed,
                day,
                index,
                (start, profile, venue, tag, title),
                (allow, block),
                tuple(streams),
                void=void,
                style=_time_style(rng),
            )
        )
    return tuple(events)


# Open around the clock (each day's edition overlaps the next by five minutes), with
# no geo restrictions: demo mode always has an event to mint links for.
CHANNEL = SportProfile("HR", 0, 24 * 60 + 5, (("Racing Channel", "RCH"),), ())


def _channel(seed: int, day: date, midnight: datetime) -> SimEvent:
    venue, tag = CHANNEL.venues[0]
    hls = default_hls_stream()
    ull = _stream(random.Random(0), "ULL", is_ull=True)
    return _event(
        seed,
        day,
        0,
        (midnight, CHANNEL, venue, tag, venue),
        ("", ""),
        (hls, ull),
        void=False,
        style="z",
    )


def _event(
    seed: int,
    day: date,
    index: int,
    what: tuple[datetime, SportProfile, str, str, str],  # start, profile, venue, tag, title
    geo: tuple[str, str],
    streams: tuple[SimStream, ...],
    *,
    void: bool,
    style: str,
) -> SimEvent:
    start, profile, venue, tag, title = what
    location_code = _location_code(seed, profile, tag)
    number = event_number(day, index)
    event_id = f"{location_code}-{number}"
    end = start + timedelta(minutes=profile.minutes)
    allow, block = geo
    wire: JsonObject = {
        "eventId": event_id,
        "locationCode": location_code,
        "locationName": venue,
        "sportCode": profile.code,
        "eventStatusCode": "P",
        "eventNumber": number,
        "title": title,
        "startTime": format_time(start, style),
        "estimatedEndTime": format_time(end, style),
        "geoAllow": allow,
        "geoBlock": block,
    }
    return SimEvent(
        event_id=event_id,
        wire=wire,
        start=start,
        end=end,
        day=day,
        fixed_status="V" if void else None,
        streams=streams,
        geo_allow=allow,
        geo_block=block,
        pascal_streams_key=casing_flag(seed, event_id, "streams"),
        pascal_link=casing_flag(seed, event_id, "link"),
    )


def find_generated(seed: int, event_id: str) -> SimEvent | None:
    """The generated event with this id, whatever its date."""
    _, sep, number = event_id.rpartition("-")
    decoded = decode_event_number(number) if sep else None
    if decoded is None:
        return None
    day, index = decoded
    events = generate_day(seed, day)
    if index < len(events) and events[index].event_id == event_id:
        return events[index]
    return None
