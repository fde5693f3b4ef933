"""ONEPlatform's own words never reach a viewer: whatever it answers (an operation
code with its message, a 5xx), the problem carries the gateway's detail for the code,
and the operator's log line carries the upstream text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from app.problem_types import PROBLEMS
from app.simulator.messages import MESSAGES
from tests.support.inprocess import Gateway, gateway


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with gateway() as running:
        await running.warm()
        yield running


@pytest.mark.parametrize("operation_code", [300, 301, 305, 307, 308])
async def test_a_refused_link_answers_the_tables_detail(gw: Gateway, operation_code: int) -> None:
    event_id = (await gw.client.get("/v1/events/open")).json()["events"][0]["eventId"]
    name = (await gw.client.get(f"/v1/events/{event_id}/streams")).json()["streams"][0]["name"]
    await gw.fault("stream_link", "operation", operationCode=operation_code)
    with capture_logs() as logs:
        answer = await gw.client.post(
            f"/v1/events/{event_id}/links", json={"streamName": name}, headers=gw.viewer()
        )
    problem = answer.json()
    assert problem["operationCode"] == operation_code
    assert problem["detail"] == PROBLEMS[problem["code"]].detail
    upstream_text = MESSAGES[operation_code].rstrip(".")
    assert upstream_text not in answer.text
    logged = [str(e.get("error")) for e in logs if e.get("method") == "stream_link"]
    assert any(upstream_text in line for line in logged), logs


async def test_a_failing_list_answers_no_upstream_text(gw: Gateway) -> None:
    await gw.fault("sports", "operation", operationCode=303)
    answer = await gw.client.get("/v1/sports")
    problem = answer.json()
    assert (answer.status_code, problem["code"]) == (502, "upstream_rejected_server_ip")
    assert problem["detail"] == PROBLEMS["upstream_rejected_server_ip"].detail
    assert MESSAGES[303].rstrip(".") not in answer.text
