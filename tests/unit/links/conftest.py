"""The link service's unit tests run over the embedded store (fakeredis with Lua):
they are about the service, not Redis; the store's scripts are tested over a real
redis-server in ``tests/component/ratelimit``."""

from __future__ import annotations

import pytest

from app.store import Store


@pytest.fixture
def store(fake_redis: Store) -> Store:
    return fake_redis
