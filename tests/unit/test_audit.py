"""Audit records do not depend on LOG_LEVEL: at ``warning`` the app's other info lines
are dropped, and every audit record is still written."""

from __future__ import annotations

import pytest
import structlog
from structlog.testing import capture_logs

from app.audit import AuditRecord, AuditTrail, now_iso
from app.main import create_app
from app.observability.metrics import Metrics
from app.settings import Settings


def record(decision: str = "minted") -> AuditRecord:
    return AuditRecord(
        time=now_iso(),
        request_id="req-1",
        route="links",
        user="hashed",
        via="api_key",
        event_id="E1",
        stream_name="HLS",
        kind="raw",
        link="hls",
        country="FR",
        ip=None,
        decision=decision,  # type: ignore[arg-type]
        code=None,
        transaction_id="tx-1",
    )


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_audit_records_are_written_at_every_log_level(level: str) -> None:
    create_app(Settings(igm_mode="simulator", log_level=level))  # configures logging
    trail = AuditTrail(
        redis=None, stream=None, max_len=100, raw_ip=False, user_id_key=None, metrics=Metrics()
    )
    with capture_logs() as logs:
        structlog.get_logger("app").info("an_info_line")
        trail.record(record())
    audit = [line for line in logs if line["event"] == "audit"]
    assert len(audit) == 1
    assert audit[0]["decision"] == "minted"
    assert audit[0]["log_level"] == "info"
    info_shown = any(line["event"] == "an_info_line" for line in logs)
    assert info_shown is (level in ("debug", "info"))  # the control: the level does apply
