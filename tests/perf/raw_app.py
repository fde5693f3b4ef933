"""The baseline for the read benchmark: a bare ASGI app that answers every request
with the same pre-serialised bytes the gateway serves (``RAW_BODY_FILE``) and, when
``RAW_HEADERS_FILE`` names a JSON list of ``[name, value]`` pairs, the same headers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

BODY = Path(os.environ["RAW_BODY_FILE"]).read_bytes() if "RAW_BODY_FILE" in os.environ else b"{}"
if "RAW_HEADERS_FILE" in os.environ:
    pairs = json.loads(Path(os.environ["RAW_HEADERS_FILE"]).read_text())
    HEADERS = [(name.encode(), value.encode()) for name, value in pairs]
else:
    HEADERS = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
