"""Fleet-wide rate limiting and coordination over the shared store.

- ``UpstreamGate``: one upstream call per interval for the whole fleet (event methods).
- ``Lease``: one holder at a time for a named job (leader election).
- ``LinkAdmission``: dedupe, per-user limit and the fleet link budget in one round trip.
- ``LocalTokenBucket``: the in-process fallback budget when the store is unreachable.

All state lives in Redis under hash-tagged keys and is timed by Redis's clock.

Errors::

    StoreUnavailable      (app.store) raised by every store-facing method here
"""

from app.ratelimit.admission import Admission, LinkAdmission, Outcome
from app.ratelimit.gate import GateDecision, UpstreamGate
from app.ratelimit.lease import Lease
from app.ratelimit.local_bucket import LocalTokenBucket, Reservation

__all__ = [
    "Admission",
    "GateDecision",
    "Lease",
    "LinkAdmission",
    "LocalTokenBucket",
    "Outcome",
    "Reservation",
    "UpstreamGate",
]
