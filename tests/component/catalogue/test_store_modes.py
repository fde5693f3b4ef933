"""Snapshot version polling and the refresh lease over a real Redis Cluster and a real
Sentinel master: the same tests as over the standalone server, collected here with
``store`` bound to those clients."""

from __future__ import annotations

import pytest

from app.store import Store
from tests.component.catalogue.test_catalogue import (
    test_follower_reads_what_leader_wrote,
    test_streams_single_flight_across_replicas,
    test_two_replicas_one_leader_and_no_violation,
)

__all__ = [
    "test_follower_reads_what_leader_wrote",
    "test_streams_single_flight_across_replicas",
    "test_two_replicas_one_leader_and_no_violation",
]


@pytest.fixture
def store(distributed_store: Store) -> Store:
    return distributed_store
