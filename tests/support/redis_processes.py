"""One ``redis-server`` process (node, replica or sentinel) for the cluster and
Sentinel test set-ups: started on loopback without persistence, stopped on exit."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RedisProcess:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write, as a crashed host."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(offset: int = 0) -> int:
    """A free loopback port below the ephemeral range whose ``port + offset`` is free
    too (Redis Cluster's bus listens on port + 10000)."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        if _bindable(port) and (offset == 0 or _bindable(port + offset)):
            return port
    raise RuntimeError("no free port pair on loopback")


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def start_redis(
    workdir: Path, port: int, *args: str, config: str | None = None
) -> Iterator[RedisProcess]:
    """``redis-server [config] --port N ... args``; ``config`` is written to a file first
    (Sentinel rewrites its configuration, so it needs one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    command = [binary]
    if config is not None:
        config_path = workdir / "redis.conf"
        config_path.write_text(config)
        command.append(str(config_path))
    command += [
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--loglevel",
        "notice",
        "--logfile",
        str(workdir / "redis.log"),
        *args,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    node = RedisProcess(port, proc, workdir)
    try:
        deadline = time.monotonic() + 10
        while not ping(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield node
    finally:
        node.stop()
