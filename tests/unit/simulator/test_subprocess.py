"""The simulator as a real process: ``python -m app.simulator`` via ``run_simulator``."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.support.simulator import run_simulator


def test_a_day_of_events_over_http() -> None:
    env = {"SIM_CUSTOMER_UID": "proc-customer", "SIM_SERVER_IPS": "10.1.1.1,127.0.0.1"}
    with run_simulator(env) as sim:
        assert sim.api_url == f"{sim.url}/api"
        assert sim.customer_uid == "proc-customer"
        assert sim.server_ip == "10.1.1.1"
        today = datetime.now(UTC).strftime("%d-%m-%Y")
        with httpx.Client(base_url=sim.api_url, headers=sim.api_headers, timeout=5) as api:
            events = api.get(f"/event/all/{sim.customer_uid}/{today}").json()["events"]
            assert 20 <= len(events) <= 40
            assert {e["eventStatusCode"] for e in events} <= {"P", "O", "C", "V"}
            assert api.get(f"/event/all/{sim.customer_uid}/{today}").status_code == 429
            wrong = api.get("/sport/all/demo-customer-uid")
            assert wrong.json() == {
                "message": "Your customer details are invalid, please contact support.",
                "operationCode": 300,
            }

            sim.configure(link_rate_per_s=1)
            sim.load_scenario(
                [{"eventId": "E-1", "eventStatusCode": "O", "startTime": "2026-11-22T10:00:00"}]
            )
            sim.set_status("E-1", "O")
            sim.set_ip_countries({"100.64.0.0/10": "US-NJ"})
            params = {
                "customerUid": sim.customer_uid,
                "userId": "u",
                "userIp": "100.64.1.1",
                "eventId": "E-1",
                "streamName": "HLS",
                "redirectUrl": "https://operator.example/",
            }
            first = api.post("/stream/link", params=params).json()
            assert {k.lower(): v for k, v in first.items()}["operationcode"] == 200
            assert api.post("/stream/link", params=params).status_code == 429

            sim.inject_fault("sports", "reset", count=1)
            with pytest.raises(httpx.TransportError):
                api.get(f"/sport/all/{sim.customer_uid}")
            sim.inject_fault("sports", "status", status=502)
            assert api.get(f"/sport/all/{sim.customer_uid}").status_code == 502
            sim.clear_faults()
            assert api.get(f"/sport/all/{sim.customer_uid}").status_code == 200

        calls = sim.calls()
        assert [c["method"] for c in calls][:3] == ["event_all", "event_all", "sports"]
        assert calls[1]["violation"] is True
        assert "proc-customer" not in str(calls)
        assert len(sim.calls("stream_link")) == 2
        stats = sim.stats()
        assert stats["calls"]["sports"] == 4
        assert stats["violations"] == {
            "event_all": 1,
            "event_open": 0,
            "streams": 0,
            "sports": 0,
            "stream_link": 1,
            "live_stream": 0,
        }
        sim.reset()
        assert sim.calls() == []
