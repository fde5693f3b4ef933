"""Country codes as ONEPlatform writes them, normalised to ISO 3166.

The upstream sends comma strings with or without spaces (``"GB,IE"``, ``"UK, US"``),
sometimes lower case, and says ``UK`` where ISO 3166-1 says ``GB``. Subdivision codes
(ISO 3166-2, ``US-NJ``) are kept whole.
"""

from __future__ import annotations

import re

_ALIASES = {"UK": "GB"}
_CODE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


def normalise_code(raw: str) -> str | None:
    """``" uk "`` -> ``"GB"``, ``"us-nj"`` -> ``"US-NJ"``; None for anything unreadable.

    Only ASCII letters count: look-alike letters from other scripts never match.
    """
    if not raw.isascii():  # before upper(): the long s upper-cases to "S"
        return None
    code = raw.strip().upper()
    if not _CODE.match(code):
        return None
    country, _, subdivision = code.partition("-")
    country = _ALIASES.get(country, country)
    return f"{country}-{subdivision}" if subdivision else country


def parse_code_list(raw: object) -> tuple[str, ...]:
    """A comma string (or list) of codes -> normalised, de-duplicated, in order."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        parts: list[object] = list(raw.split(","))
    elif isinstance(raw, list | tuple):
        parts = list(raw)
    else:
        parts = []
    seen: dict[str, None] = {}
    for part in parts:
        if isinstance(part, str) and (code := normalise_code(part)) is not None:
            seen.setdefault(code, None)
    return tuple(seen)
