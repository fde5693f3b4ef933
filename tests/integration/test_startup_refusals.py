"""Unsafe production settings stop a real process at start-up with one line naming the
setting (never a secret's value): uvicorn's factory as the image runs it, and
``scripts/serve`` for several workers without a shared store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.redis_server import free_port
from tests.support.topology import SERVE, child_env

REPO_ROOT = Path(__file__).resolve().parents[2]
UID = "uid-5d1c-REFUSALS-SECRET"
API_KEY = "refusals-api-key-0123456789abcdef01234"
AUDIT_KEY = "refusals-audit-key-0123456789abcdef0123"
SAFE_PRODUCTION = {
    "IGM_MODE": "production",
    "IGM_CUSTOMER_UID": UID,
    "IGM_SERVER_IP": "203.0.113.10",
    "API_KEYS": API_KEY,
    "AUDIT_USER_ID_KEY": AUDIT_KEY,
    "REDIRECT_ALLOWED_HOSTS": "www.operator.example",
}
SECRETS = (UID, API_KEY, AUDIT_KEY, "short-key")


def one_line(done: subprocess.CompletedProcess[str], prefix: str, code: int = 3) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(prefix)
    assert "Traceback" not in done.stdout + done.stderr
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr
    return lines[0]


def run_uvicorn(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    child = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        **env,
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
        "--host", "127.0.0.1", "--port", str(free_port()),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=tmp_path, env=child, capture_output=True, text=True, timeout=60
    )


REFUSED = [
    pytest.param({"REPLICA_COUNT": "3"}, ["REDIS_URL", "REPLICA_COUNT=3"], id="fleet-no-redis"),
    pytest.param(
        {"REDIRECT_ALLOWED_HOSTS": ""},
        ["REDIRECT_ALLOWED_HOSTS", "REDIRECT_ALLOW_ANY=true"],
        id="open-redirect",
    ),
    pytest.param({"API_KEYS": "short-key"}, ["API_KEYS", "32 characters"], id="short-key"),
    pytest.param({"AUDIT_USER_ID_KEY": ""}, ["AUDIT_USER_ID_KEY"], id="no-audit-key"),
    pytest.param(
        {"IGM_MODE": "simulator", "IGM_API_URL": "https://upstream.example/api", "API_KEYS": ""},
        ["API_KEYS", "built-in simulator"],
        id="demo-credentials-against-a-real-upstream",
    ),
]


@pytest.mark.parametrize(("change", "named"), REFUSED)
def test_the_factory_refuses_an_unsafe_setting_with_one_line(
    tmp_path: Path, change: dict[str, str], named: list[str]
) -> None:
    done = run_uvicorn(tmp_path, SAFE_PRODUCTION | change)
    line = one_line(done, "oneplatform-gateway: invalid configuration: ")
    for name in named:
        assert name in line


def test_uvicorn_workers_without_redis_stop_instead_of_restarting(tmp_path: Path) -> None:
    """uvicorn reads WEB_CONCURRENCY itself: each worker refuses, and the failed start
    stops its supervisor (no restart loop; run_uvicorn's timeout would fail the test).
    uvicorn's parent then exits 0: hence scripts/serve's own refusal, before uvicorn."""
    done = run_uvicorn(tmp_path, SAFE_PRODUCTION | {"WEB_CONCURRENCY": "2"})
    assert "failed to start, stopping the parent process" in done.stderr
    ours = [line for line in done.stderr.splitlines() if "oneplatform-gateway:" in line]
    assert ours
    assert all("REDIS_URL must be set when WEB_CONCURRENCY=2" in line for line in ours)
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr


def test_the_factory_starts_once_the_setting_is_safe(tmp_path: Path) -> None:
    """The control: the same settings with the store shared start (and are stopped
    here at once by a bad port, after the settings were read)."""
    env = SAFE_PRODUCTION | {"REPLICA_COUNT": "3", "REDIS_URL": "redis://127.0.0.1:1/0"}
    child = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT), **env}
    code = (
        "from app.settings import load_settings; s = load_settings(); "
        "print(s.replica_count, s.store_config.shared)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=child, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "True"]


def test_serve_refuses_several_workers_without_redis_in_production(tmp_path: Path) -> None:
    env = child_env(
        SAFE_PRODUCTION
        | {"WEB_CONCURRENCY": "3", "PORT": str(free_port()), "PYTHON": sys.executable}
    )
    done = subprocess.run(
        [str(SERVE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    line = one_line(done, "scripts/serve: ", code=2)
    assert "REDIS_URL must be set when WEB_CONCURRENCY=3" in line


@pytest.mark.parametrize(
    "env",
    [{"IGM_MODE": "simulator"}, SAFE_PRODUCTION],
    ids=["demo", "production-one-process"],
)
def test_without_the_demo_extra_no_redis_url_is_one_line(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """An image without the demo extra (no fakeredis) and no REDIS_URL: one line naming
    the setting and the extra, instead of a traceback from the lifespan."""
    hide_fakeredis = (
        "import sys; sys.modules['fakeredis'] = None\n"  # as if it were not installed
        "from app.main import create_app\n"
        "create_app()\n"
    )
    child = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT), **env}
    done = subprocess.run(
        [sys.executable, "-c", hide_fakeredis],
        cwd=tmp_path,
        env=child,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = one_line(done, "oneplatform-gateway: REDIS_URL must be set")
    assert "oneplatform-gateway[demo]" in line
