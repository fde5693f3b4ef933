"""The fleet gate, the lease and link admission (dedupe, per-user limit, fleet bucket)
over a real Redis Cluster and a real Sentinel master: the same tests as over the
standalone server, collected here with ``store`` bound to those clients."""

from __future__ import annotations

import pytest

from app.store import Store
from tests.component.ratelimit.test_admission import (
    test_a_wait_in_one_bucket_reserves_the_same_instant_in_the_other,
    test_dedupe_hit_returns_the_stored_answer_and_consumes_nothing,
    test_reservations_hand_out_growing_waits_then_places,
    test_user_limit_refuses_without_waiting_and_spares_the_fleet_budget,
)
from tests.component.ratelimit.test_gate import (
    test_exactly_one_of_many_concurrent_callers_passes_per_interval,
    test_next_slot_in_reports_the_time_until_the_gate_opens,
)
from tests.component.ratelimit.test_lease import (
    test_concurrent_contenders_elect_one,
    test_takeover_after_the_holder_stops_renewing,
)

__all__ = [
    "test_a_wait_in_one_bucket_reserves_the_same_instant_in_the_other",
    "test_concurrent_contenders_elect_one",
    "test_dedupe_hit_returns_the_stored_answer_and_consumes_nothing",
    "test_exactly_one_of_many_concurrent_callers_passes_per_interval",
    "test_next_slot_in_reports_the_time_until_the_gate_opens",
    "test_reservations_hand_out_growing_waits_then_places",
    "test_takeover_after_the_holder_stops_renewing",
    "test_user_limit_refuses_without_waiting_and_spares_the_fleet_budget",
]


@pytest.fixture
def store(distributed_store: Store) -> Store:
    return distributed_store
