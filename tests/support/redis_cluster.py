"""Start a real Redis Cluster on loopback for the tests: three masters, one replica each.

Six ``redis-server --cluster-enabled yes`` processes, joined by
``redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes``; ready once
every node reports ``cluster_state:ok``. A short ``cluster-node-timeout`` makes a
killed master's replica take over within a few seconds (``kill_master_of``,
``wait_promoted``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from tests.support.redis_processes import RedisProcess, free_port_pair, start_redis

NODE_TIMEOUT_MS = 1000
START_TIMEOUT_S = 30.0


@dataclass
class RedisClusterProcesses:
    nodes: list[RedisProcess]
    killed: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A seed node URL, as ``REDIS_URL`` takes it (any node will do)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def alive(self) -> list[RedisProcess]:
        return [node for node in self.nodes if node not in self.killed]

    def master_port_of(self, key: str) -> int:
        """The port of the master that serves ``key``'s slot now."""
        slot = key_slot(key.encode())
        for node in self.alive():
            try:
                with redis.Redis(port=node.port, socket_timeout=1) as client:
                    for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                        if int(start) <= slot <= int(end):
                            return int(master[1])
            except redis.RedisError:
                continue
        raise RuntimeError(f"no live node knows slot {slot}")

    def flush(self) -> None:
        """Empty every master (the tests share one cluster per session)."""
        for node in self.alive():
            with redis.Redis(port=node.port, socket_timeout=2) as client:
                if client.info("replication")["role"] == "master":
                    client.flushall()

    def keys(self, pattern: str) -> list[bytes]:
        """The keys matching ``pattern`` on every live master."""
        found: list[bytes] = []
        for node in self.alive():
            with redis.Redis(port=node.port, socket_timeout=2) as client:
                if client.info("replication")["role"] == "master":
                    found.extend(client.keys(pattern))
        return found

    def kill_master_of(self, key: str) -> int:
        """SIGKILL the master serving ``key``; its port (its replica takes over)."""
        port = self.master_port_of(key)
        node = next(node for node in self.nodes if node.port == port)
        node.kill()
        self.killed.append(node)
        return port

    def wait_promoted(self, old_port: int, key: str, timeout_s: float = 30.0) -> float:
        """Wait until another node serves ``key`` and the cluster is ok; the monotonic
        time at which that was first seen."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.master_port_of(key) != old_port and self.state_ok():
                    return time.monotonic()
            except RuntimeError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"no replica took over from port {old_port} in {timeout_s} s")

    def state_ok(self) -> bool:
        for node in self.alive():
            try:
                with redis.Redis(port=node.port, socket_timeout=1) as client:
                    info = client.cluster("info")
            except redis.RedisError:
                return False
            if info.get("cluster_state") != "ok":
                return False
        return True


def cluster_tools_available() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


@contextmanager
def run_redis_cluster(workdir: Path, masters: int = 3) -> Iterator[RedisClusterProcesses]:
    """Start ``masters`` masters with one replica each; stop them all on exit."""
    redis_cli = shutil.which("redis-cli")
    if redis_cli is None:
        raise RuntimeError("redis-cli is not installed (apt-get install -y redis-tools)")
    with ExitStack() as stack:
        nodes: list[RedisProcess] = []
        for index in range(masters * 2):
            port = free_port_pair(offset=10000)  # the cluster bus listens on port + 10000
            node_dir = workdir / f"node-{index}"
            nodes.append(
                stack.enter_context(
                    start_redis(
                        node_dir,
                        port,
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(node_dir / "nodes.conf"),
                        "--cluster-node-timeout",
                        str(NODE_TIMEOUT_MS),
                        # a replica may always take over, however long it was cut off
                        "--cluster-replica-validity-factor",
                        "0",
                    )
                )
            )
        subprocess.run(
            [
                redis_cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        cluster = RedisClusterProcesses(nodes)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (cluster.state_ok() and _replicas_attached(nodes, masters)):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        yield cluster


def _replicas_attached(nodes: list[RedisProcess], masters: int) -> bool:
    """Every replica has finished its first sync (else a failover could not happen)."""
    synced = 0
    for node in nodes:
        with redis.Redis(port=node.port, socket_timeout=1) as client:
            info = client.info("replication")
        if info["role"] == "slave" and info.get("master_link_status") == "up":
            synced += 1
    return synced == masters
