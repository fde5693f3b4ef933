"""The watch rules, checked after auth and the catalogue rules and before any budget
is spent: the claim rules on a viewer's JWT, then the operator's callback.

API-key requests come from the operator's own back end, which vouches for its users:
they carry no claims, so the claim rules do not apply to them; the callback does.
A refusal is a 403 ``watch_rule_denied`` with the rule's ``reason``.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.errors import GatewayError, problem
from app.identity.auth import Principal
from app.watch.callback import WatchCallback, WatchQuery
from app.watch.claims import ClaimRule, first_unmet


class WatchRules:
    def __init__(self, claim_rules: Sequence[ClaimRule], callback: WatchCallback | None) -> None:
        self._claim_rules = tuple(claim_rules)
        self._callback = callback

    @property
    def active(self) -> bool:
        return bool(self._claim_rules) or self._callback is not None

    async def check(
        self,
        principal: Principal,
        *,
        event_id: str,
        sport_code: str,
        stream_name: str,
        country: str | None,
    ) -> None:
        """Nothing when the viewer may watch; ``GatewayError`` (403) when not."""
        if principal.via == "jwt" and self._claim_rules:
            unmet = first_unmet(self._claim_rules, principal.claims)
            if unmet is not None:
                raise denied(unmet.reason)
        if self._callback is not None:
            verdict = await self._callback.check(
                WatchQuery(principal.user_id, event_id, sport_code, stream_name, country)
            )
            if not verdict.allow:
                raise denied(verdict.reason or "not_allowed")


def denied(reason: str) -> GatewayError:
    return problem("watch_rule_denied", extra={"reason": reason})
