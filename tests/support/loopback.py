"""Small real servers on loopback for the outbound-connection tests: an ASGI app served
by uvicorn in a thread (plain or TLS) and a self-signed certificate made with
``cryptography``. The same app stands in for a forward proxy: uvicorn accepts the
absolute-form requests a client sends to a proxy, and the app answers for whatever
origin it is asked for (the ``Host`` it records).

Every request a server sees is recorded with the client port it came from, so a test
can count the TCP connections a client opened.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import Receive, Scope, Send

from tests.support.redis_server import free_port

START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    method: str
    host: str  # the Host header: the origin the client asked for
    path: str
    query: str
    client_port: int
    headers: dict[str, str]


Answer = Callable[[Seen], object]  # the JSON body to send back


@dataclass
class Recorder:
    """An ASGI app that records every request and answers ``answer(seen)`` as JSON,
    after ``delay_s`` (so that concurrent requests overlap)."""

    answer: Answer
    delay_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        while (await receive()).get("more_body"):
            pass
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        seen = Seen(
            method=scope["method"],
            host=headers.get("host", ""),
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            client_port=scope["client"][1],
            headers=headers,
        )
        self.seen.append(seen)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        body = orjson.dumps(self.answer(seen))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @property
    def connections(self) -> set[int]:
        return {seen.client_port for seen in self.seen}


@contextmanager
def serve(
    app: Recorder, *, certfile: Path | None = None, keyfile: Path | None = None
) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL (https with a cert)."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        loop="asyncio",  # a plain loop in its own thread, closed with the thread
        log_config=None,
        access_log=False,
        proxy_headers=False,  # the client sends X-Forwarded-For: keep the real peer
        timeout_keep_alive=60,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"loopback-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if certfile else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)


@dataclass(frozen=True)
class Certificate:
    certfile: Path  # the PEM certificate, also the CA bundle that trusts it
    keyfile: Path


def self_signed(directory: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile = directory / "loopback-cert.pem"
    keyfile = directory / "loopback-key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(certfile, keyfile)
