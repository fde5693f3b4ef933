"""The committed ``openapi/openapi.json`` is what the app serves, and every operation
documents its problem+json answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPORT = REPO / "scripts" / "export_openapi.py"
COMMITTED = REPO / "openapi" / "openapi.json"
OPERATIONS_ENDPOINTS = {"/healthz", "/readyz", "/metrics"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXPORT), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_committed_document_matches_a_fresh_export() -> None:
    result = export("--check")
    assert result.returncode == 0, (
        result.stderr + "\nregenerate: .venv/bin/python scripts/export_openapi.py"
    )


def test_check_fails_with_a_message_when_the_file_differs(tmp_path: Path) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text(COMMITTED.read_text().replace('"ONEPlatform Gateway"', '"Old title"'))
    result = export("--check", "--output", str(stale))
    assert result.returncode == 1
    assert "out of date" in result.stderr
    assert "scripts/export_openapi.py" in result.stderr


def test_export_writes_sorted_keys_and_a_trailing_newline(tmp_path: Path) -> None:
    target = tmp_path / "out" / "openapi.json"
    assert export("--output", str(target)).returncode == 0
    text = target.read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert text == COMMITTED.read_text()


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    document = json.loads(COMMITTED.read_text())
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_the_document_has_the_gateway_operations() -> None:
    paths = {path for path, _, _ in operations()}
    assert {"/healthz", "/readyz", "/v1/events/open", "/v1/sports"} <= paths
    assert "/metrics" not in paths  # a scrape endpoint, not part of the API


@pytest.mark.parametrize(
    ("path", "method", "operation"),
    [
        pytest.param(path, method, operation, id=f"{method.upper()} {path}")
        for path, method, operation in operations()
        if path not in OPERATIONS_ENDPOINTS
    ],
)
def test_every_operation_documents_a_problem_response(
    path: str, method: str, operation: dict[str, Any]
) -> None:
    problems = {
        status: response["content"]["application/problem+json"]
        for status, response in operation["responses"].items()
        if "application/problem+json" in response.get("content", {})
    }
    assert problems, f"{method.upper()} {path} documents no problem+json response"
    for status, content in problems.items():
        assert int(status) >= 400
        assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
