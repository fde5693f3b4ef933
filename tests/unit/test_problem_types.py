"""The table of problems is the one catalogue: its rows are consistent, every
operationCode of the guide has its row, and every problem written in the code
(``problem("code")`` or a literal ``GatewayError(status, "code", "title", …)``) is a row,
with the row's status and title."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.errors import OPERATION_PROBLEMS, UPSTREAM_CODES, problem
from app.problem_types import PROBLEMS
from app.upstream.errors import OPERATION_ERRORS

APP = Path(__file__).resolve().parents[2] / "app"


def test_rows_are_consistent() -> None:
    operation_codes = [k.operation_code for k in PROBLEMS.values() if k.operation_code]
    assert len(operation_codes) == len(set(operation_codes))
    for code, kind in PROBLEMS.items():
        assert kind.code == code
        assert all(400 <= status < 600 for status in kind.statuses), code
        assert kind.title
        assert kind.detail.endswith("."), code


def test_every_operation_code_of_the_guide_has_its_row() -> None:
    assert set(OPERATION_ERRORS) == set(OPERATION_PROBLEMS)
    assert set(OPERATION_PROBLEMS.values()) <= set(UPSTREAM_CODES)
    assert set(UPSTREAM_CODES) <= set(PROBLEMS)


def test_a_problem_is_made_from_its_row() -> None:
    error = problem("geo_blocked", extra={"country": "GB"})
    row = PROBLEMS["geo_blocked"]
    assert (error.status, error.title, error.detail) == (row.status, row.title, row.detail)
    assert error.operation_code == 306
    assert error.body()["country"] == "GB"
    assert problem("geo_blocked", "Not here.").detail == "Not here."
    assert problem("upstream_unavailable", status=502).status == 502
    with pytest.raises(ValueError, match="not answered with 418"):
        problem("geo_blocked", status=418)


def _literal(node: ast.expr) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def written_problems() -> list[tuple[str, int, object, object, object]]:
    """(where, line, status, code, title) of every problem written in app/ (literals,
    else None)."""
    found: list[tuple[str, int, object, object, object]] = []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            where = str(path.relative_to(APP.parent))
            args = [_literal(arg) for arg in node.args]
            if node.func.id == "problem" and args:
                found.append((where, node.lineno, None, args[0], None))
            elif node.func.id == "GatewayError" and len(args) >= 3:
                found.append((where, node.lineno, args[0], args[1], args[2]))
    return found


def test_every_problem_written_in_the_code_is_a_row() -> None:
    written = written_problems()
    assert len(written) > 20  # the scan finds them
    for where, line, status, code, title in written:
        if not isinstance(code, str):
            continue  # a code taken from the table itself
        assert code in PROBLEMS, f"{where}:{line}: {code} is not in app/problem_types.py"
        row = PROBLEMS[code]
        if isinstance(status, int):
            assert status in row.statuses, f"{where}:{line}: {code} is answered {row.statuses}"
        if isinstance(title, str):
            assert title == row.title, f"{where}:{line}: {code}'s title is {row.title!r}"
