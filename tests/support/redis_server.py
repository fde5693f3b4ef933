"""Start a real ``redis-server`` on a free loopback port for the tests."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis

from tests.support.redis_processes import start_redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


@contextmanager
def run_redis_server(workdir: Path, port: int | None = None) -> Iterator[str]:
    """Run redis-server (no persistence) and yield its URL; stop it on exit."""
    port = port or free_port()
    # One database per suite that starts its own gateways (fresh_database).
    with start_redis(workdir, port, "--databases", "64"):
        yield f"redis://127.0.0.1:{port}/0"


def database_url(server_url: str, db: int) -> str:
    """The URL of database ``db`` on the same server."""
    return f"{server_url.rsplit('/', 1)[0]}/{db}"


def fresh_database(server_url: str, db: int) -> str:
    """The URL of database ``db`` on the same server, emptied: suites that start their
    own gateway processes each use their own database number."""
    url = database_url(server_url, db)
    with redis.Redis.from_url(url) as store:
        store.flushdb()
    return url


class RestartableRedis:
    """A redis-server on a fixed port that a test stops and starts again (empty), as a
    store restart or an outage looks to the gateways using it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._stack: ExitStack | None = None

    def start(self) -> None:
        assert self._stack is None
        self._stack = ExitStack()
        self._stack.enter_context(run_redis_server(self._workdir, self.port))

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)
