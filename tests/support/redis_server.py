"""Start a real ``redis-server`` on a free loopback port for the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis


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
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--databases",  # one per suite that starts its own gateways (fresh_database)
            "64",
            "--dir",
            str(workdir),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
