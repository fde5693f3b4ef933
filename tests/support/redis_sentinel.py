"""Start a real Sentinel set-up on loopback for the tests: one master, one replica,
three sentinels (``redis-server <conf> --sentinel``) watching it as ``gateway``.

``down-after-milliseconds`` and ``failover-timeout`` are short, so killing the master
(``kill_master``) has the replica promoted within a few seconds (``wait_promoted``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.redis_processes import RedisProcess, free_port_pair, start_redis

MASTER_NAME = "gateway"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
START_TIMEOUT_S = 30.0


@dataclass
class RedisSentinelProcesses:
    master: RedisProcess
    replica: RedisProcess
    sentinels: list[RedisProcess]
    master_name: str = MASTER_NAME

    @property
    def sentinels_setting(self) -> str:
        """``REDIS_SENTINELS`` for this set-up."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        return tuple(("127.0.0.1", s.port) for s in self.sentinels)

    def master_port(self) -> int | None:
        """The master's port as a majority of the live sentinels reports it."""
        seen: list[int] = []
        for sentinel in self.sentinels:
            try:
                with redis.Redis(port=sentinel.port, socket_timeout=1) as client:
                    address = client.sentinel_get_master_addr_by_name(self.master_name)
            except redis.RedisError:
                continue
            if address:
                seen.append(int(address[1]))
        for port in seen:
            if seen.count(port) * 2 > len(self.sentinels):
                return port
        return None

    def current_master(self) -> RedisProcess:
        port = self.master_port()
        return next(node for node in (self.master, self.replica) if node.port == port)

    def flush(self) -> None:
        with redis.Redis(port=self.current_master().port, socket_timeout=2) as client:
            client.flushall()

    def keys(self, pattern: str) -> list[bytes]:
        """The keys matching ``pattern`` on the master."""
        with redis.Redis(port=self.current_master().port, socket_timeout=2) as client:
            return list(client.keys(pattern))

    def kill_master(self) -> int:
        """SIGKILL the master; its port."""
        node = self.current_master()
        node.kill()
        return node.port

    def wait_promoted(self, old_port: int, timeout_s: float = 30.0) -> float:
        """Wait until the sentinels name another master and it answers as one; the
        monotonic time at which that was first seen."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            port = self.master_port()
            if port is not None and port != old_port:
                try:
                    with redis.Redis(port=port, socket_timeout=1) as client:
                        if client.info("replication")["role"] == "master":
                            return time.monotonic()
                except redis.RedisError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"the sentinels promoted no replica in {timeout_s} s")


@contextmanager
def run_redis_sentinel(workdir: Path) -> Iterator[RedisSentinelProcesses]:
    """Start the master, its replica and three sentinels; stop them all on exit."""
    with ExitStack() as stack:
        master = stack.enter_context(start_redis(workdir / "master", free_port_pair()))
        replica = stack.enter_context(
            start_redis(
                workdir / "replica",
                free_port_pair(),
                "--replicaof",
                "127.0.0.1",
                str(master.port),
            )
        )
        sentinels = []
        for index in range(3):
            config = "\n".join(
                [
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 2",
                    f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    "",
                ]
            )
            sentinels.append(
                stack.enter_context(
                    start_redis(
                        workdir / f"sentinel-{index}",
                        free_port_pair(),
                        "--sentinel",
                        config=config,
                    )
                )
            )
        setup = RedisSentinelProcesses(master, replica, sentinels)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(setup):
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinels did not find the replica and each other")
            time.sleep(0.1)
        yield setup


def _ready(setup: RedisSentinelProcesses) -> bool:
    """The replica is in sync, and every sentinel knows it and the two other sentinels
    (else a failover could not be agreed)."""
    with redis.Redis(port=setup.replica.port, socket_timeout=1) as client:
        if client.info("replication").get("master_link_status") != "up":
            return False
    for sentinel in setup.sentinels:
        with redis.Redis(port=sentinel.port, socket_timeout=1) as client:
            replicas = client.sentinel_slaves(MASTER_NAME)
            others = client.sentinel_sentinels(MASTER_NAME)
        if len(replicas) != 1 or len(others) != len(setup.sentinels) - 1:
            return False
    return True
