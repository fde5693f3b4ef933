"""Settings from the environment: what production insists on, what the simulator mode
fills in, how lists parse, and how a bad configuration is reported (naming settings,
never echoing secrets) - down to ``uvicorn --factory app.main:create_app`` exiting."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.main import create_app
from app.settings import Settings, SettingsError, load_settings
from app.settings.checks import SIMULATOR_API_KEY, SIMULATOR_CUSTOMER_UID, SIMULATOR_JWT_SECRET
from tests.support.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
UID = "uid-93b1f0aa-SETTINGS-SECRET"
API_KEY_ONE = "key-ONE-d2c4e6f8a0-0123456789abcdef01"
API_KEY_TWO = "key-TWO-1a3b5c7d9e-0123456789abcdef01"
AUDIT_KEY = "audit-KEY-5e6f7a8b9c-0123456789abcdef"
# What production mode asks of an operator besides credentials.
SAFE = {"AUDIT_USER_ID_KEY": AUDIT_KEY, "REDIRECT_ALLOWED_HOSTS": "www.operator.example"}
GOOD = {
    "IGM_CUSTOMER_UID": UID,
    "IGM_SERVER_IP": "203.0.113.10",
    "API_KEYS": f"{API_KEY_ONE},{API_KEY_TWO}",
    **SAFE,
}
SECRETS = (UID, API_KEY_ONE, API_KEY_TWO, AUDIT_KEY)
SETTINGS_ENV = sorted(name.upper() for name in Settings.model_fields)

Env = Callable[..., Settings]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    """``env(NAME=value, ...)`` loads settings from exactly those variables (no ``.env``:
    the working directory is an empty temporary one)."""
    monkeypatch.chdir(tmp_path)
    for name in os.environ:
        if name.upper() in SETTINGS_ENV:
            monkeypatch.delenv(name)

    def load(**variables: str) -> Settings:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return load


def problem(env: Env, **variables: str) -> str:
    with pytest.raises(SettingsError) as caught:
        env(**variables)
    message = str(caught.value)
    assert message.startswith("invalid configuration: ")
    assert "\n" not in message
    for secret in SECRETS:
        assert secret not in message
    return message


# --- production --------------------------------------------------------------------------


def test_production_with_credentials(env: Env) -> None:
    settings = env(**GOOD)
    assert settings.igm_mode == "production"
    assert settings.customer_uid.get_secret_value() == UID
    assert settings.server_ip == "203.0.113.10"
    assert not settings.embedded_simulator


@pytest.mark.parametrize(
    ("variables", "named", "not_named"),
    [
        ({}, ["IGM_CUSTOMER_UID", "IGM_SERVER_IP"], []),
        ({"IGM_SERVER_IP": "203.0.113.10"}, ["IGM_CUSTOMER_UID"], ["IGM_SERVER_IP"]),
        ({"IGM_CUSTOMER_UID": UID}, ["IGM_SERVER_IP"], ["IGM_CUSTOMER_UID"]),
        ({"IGM_CUSTOMER_UID": "", "IGM_SERVER_IP": "203.0.113.10"}, ["IGM_CUSTOMER_UID"], []),
        ({"IGM_MODE": "production", "API_KEYS": API_KEY_ONE}, ["IGM_CUSTOMER_UID"], []),
    ],
    ids=["both-missing", "uid-missing", "server-ip-missing", "uid-blank", "explicit-mode"],
)
def test_production_names_missing_credentials(
    env: Env, variables: dict[str, str], named: list[str], not_named: list[str]
) -> None:
    message = problem(env, **variables)
    for name in named:
        assert name in message
    for name in not_named:
        assert name not in message
    assert "IGM_MODE=simulator" in message  # the way out for a demo


MALFORMED: list[tuple[str, str]] = [
    ("IGM_SERVER_IP", "not-an-ip"),
    ("IGM_SERVER_IP", "203.0.113.300"),
    ("LINK_RATE_PER_S", "-1"),
    ("LINK_RATE_PER_S", "fast"),
    ("TRUSTED_PROXIES", "10.0.0.0/33"),
    ("TRUSTED_PROXIES", "10.0.0.0/8,not-a-network"),
    ("IGM_API_URL", "not a url"),
    ("IGM_MODE", "staging"),
    ("LOG_LEVEL", "verbose"),
    ("LOG_FORMAT", "xml"),
    ("IGM_READ_TIMEOUT_S", "0"),
    ("LINK_QUEUE_HOLD_S", "99999"),
    ("REPLICA_COUNT", "0"),
    ("LINK_FALLBACK", "open"),
    ("GEO_UNKNOWN_ALLOWED", "perhaps"),
    ("DEFAULT_REDIRECT_URL", "ftp:/x"),
    ("PLAY_LADDER_WEB", "HLS"),
    ("PLAY_LADDER_APP", "HLS:raw,HLS:raw"),
    ("LINK_TTL_S", "0"),
    ("THEOLIVE_TOKEN_TTL_S", "soon"),
    ("WATCH_REQUIRE_CLAIMS", "funded:"),
    ("WATCH_CALLBACK_URL", "not a url"),
    ("WATCH_CALLBACK_FAILURE", "maybe"),
    ("AUDIT_REDIS_STREAM", "bad stream name"),
    ("AUDIT_REDIS_STREAM_MAXLEN", "10"),
    ("IGM_KEEPALIVE_EXPIRY_S", "-1"),
    ("IGM_MAX_CONNECTIONS", "0"),
    ("IGM_CA_BUNDLE", "/nonexistent/ca-bundle.pem"),
]


@pytest.mark.parametrize(("name", "value"), MALFORMED, ids=[f"{n}={v}" for n, v in MALFORMED])
def test_a_malformed_setting_is_named_without_secrets(env: Env, name: str, value: str) -> None:
    message = problem(env, **(GOOD | {name: value}))
    assert name in message
    others = {n for n, _ in MALFORMED} - {name}
    assert not any(f"{other}:" in message for other in others)


def test_every_problem_is_reported_at_once(env: Env) -> None:
    message = problem(env, **GOOD, LINK_RATE_PER_S="-1", LOG_LEVEL="verbose", LINK_BURST="0")
    for name in ("LINK_RATE_PER_S", "LOG_LEVEL", "LINK_BURST"):
        assert f"{name}: " in message


PASTED_SECRET = "pasted-SECRET-7c1e55aa"


@pytest.mark.parametrize(
    "name",
    [
        "IGM_SERVER_IP",
        "IGM_API_URL",
        "LINK_RATE_PER_S",
        "IGM_MODE",
        "LOG_FORMAT",
        "CATALOGUE_DAYS_AHEAD",
        "TRUSTED_PROXIES",
    ],
)
def test_a_bad_value_is_never_echoed(env: Env, name: str) -> None:
    """A secret pasted into the wrong variable must not end up in the error either."""
    message = problem(env, **(GOOD | {name: PASTED_SECRET}))
    assert name in message
    assert PASTED_SECRET not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LINK_RATE_PER_S", "-1"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("IGM_API_URL", "not a url"),
        ("IGM_SERVER_IP", "not-an-ip"),
    ],
)
def test_each_problem_reads_name_colon_reason(env: Env, name: str, value: str) -> None:
    message = problem(env, **(GOOD | {name: value}))
    problems = message.removeprefix("invalid configuration: ").split("; ")
    assert [p.split(": ", 1)[0] for p in problems] == [name]


# --- who may mint links -------------------------------------------------------------------

NO_AUTH = {"IGM_CUSTOMER_UID": UID, "IGM_SERVER_IP": "203.0.113.10", **SAFE}


def test_production_without_link_auth_is_refused(env: Env) -> None:
    message = problem(env, **NO_AUTH)
    for name in ("API_KEYS", "AUTH_JWT_SECRET", "AUTH_JWT_PUBLIC_KEY", "AUTH_JWKS_URL"):
        assert name in message
    assert "LINKS_ENABLED=false" in message  # the way out for a read-only gateway


@pytest.mark.parametrize(
    "variables",
    [
        {"LINKS_ENABLED": "false"},
        {"API_KEYS": API_KEY_ONE},
        {"AUTH_JWT_SECRET": "a-jwt-secret-of-at-least-thirty-two-bytes"},
        {
            "AUTH_JWKS_URL": "https://idp.example/.well-known/jwks.json",
            "AUTH_JWT_ISSUER": "https://idp.example/",
            "AUTH_JWT_AUDIENCE": "gateway",
        },
    ],
    ids=["links-disabled", "api-key", "jwt-secret", "jwks-url"],
)
def test_production_with_a_way_to_authenticate_or_without_links(
    env: Env, variables: dict[str, str]
) -> None:
    settings = env(**NO_AUTH, **variables)
    assert settings.links_enabled == ("LINKS_ENABLED" not in variables)


@pytest.mark.parametrize(
    ("variables", "tokens"),
    [
        ({}, False),
        ({"DEMO_PAGE": "true"}, False),
        ({"DEMO_PAGE": "true", "DEMO_TOKEN_ISSUER": "true"}, True),
        ({"DEMO_TOKEN_ISSUER": "true"}, False),  # no page, no issuer
    ],
    ids=["plain-production", "page-only", "page-and-issuer", "issuer-without-page"],
)
def test_demo_tokens_in_production_only_by_opt_in(
    env: Env, variables: dict[str, str], tokens: bool
) -> None:
    secret = "a-jwt-secret-of-at-least-thirty-two-bytes"
    settings = env(**NO_AUTH, AUTH_JWT_SECRET=secret, **variables)
    assert settings.demo_tokens is tokens
    assert settings.demo_enabled is (variables.get("DEMO_PAGE") == "true")


def test_demo_token_issuer_needs_a_jwt_secret(env: Env) -> None:
    message = problem(env, **GOOD, DEMO_PAGE="true", DEMO_TOKEN_ISSUER="true")
    assert "DEMO_TOKEN_ISSUER" in message
    assert "AUTH_JWT_SECRET" in message


# --- simulator mode --------------------------------------------------------------------


def test_simulator_mode_fills_the_demo_credentials(env: Env) -> None:
    settings = env(IGM_MODE="simulator")
    assert settings.customer_uid.get_secret_value() == SIMULATOR_CUSTOMER_UID
    assert settings.server_ip == "127.0.0.1"
    assert [key.get_secret_value() for key in settings.api_keys] == [SIMULATOR_API_KEY]
    assert settings.embedded_simulator
    # the demo page's tokens, and a redirect URL so that link requests may leave it out
    assert settings.demo_tokens
    assert settings.demo_enabled
    assert str(settings.default_redirect_url) == "https://www.example.com/"


def test_simulator_mode_keeps_what_is_given(env: Env) -> None:
    settings = env(
        IGM_MODE="simulator",
        IGM_CUSTOMER_UID=UID,
        IGM_SERVER_IP="10.1.2.3",
        IGM_API_URL="http://127.0.0.1:8081/api",
        AUTH_JWT_SECRET="a-jwt-secret-of-some-length",
    )
    assert settings.customer_uid.get_secret_value() == UID
    assert settings.server_ip == "10.1.2.3"
    assert settings.api_keys == []  # a JWT secret is configured: no demo key
    assert not settings.embedded_simulator  # an external simulator


@pytest.mark.parametrize(
    ("variables", "uid", "server_ip"),
    [
        ({"IGM_MODE": "simulator", "IGM_CUSTOMER_UID": ""}, SIMULATOR_CUSTOMER_UID, "127.0.0.1"),
        ({"IGM_MODE": "simulator", "IGM_SERVER_IP": ""}, SIMULATOR_CUSTOMER_UID, "127.0.0.1"),
        ({"IGM_CUSTOMER_UID": "   ", "IGM_SERVER_IP": "203.0.113.10"}, None, None),
    ],
    ids=["simulator-blank-uid", "simulator-blank-ip", "production-whitespace-uid"],
)
def test_blank_means_unset(
    env: Env, variables: dict[str, str], uid: str | None, server_ip: str | None
) -> None:
    if uid is None:
        problem(env, **variables)
        return
    settings = env(**variables)
    assert settings.customer_uid.get_secret_value() == uid
    assert settings.server_ip == server_ip


def test_upstream_connection_settings(env: Env, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")  # read at start-up, not here
    defaults = env(**GOOD)
    assert (defaults.igm_ca_bundle, defaults.igm_keepalive_expiry_s) == (None, 5.0)
    assert defaults.igm_max_connections == 16
    configured = env(
        **GOOD,
        IGM_CA_BUNDLE=str(bundle),
        IGM_KEEPALIVE_EXPIRY_S="30",
        IGM_MAX_CONNECTIONS="64",
    )
    assert configured.igm_ca_bundle == bundle
    assert configured.igm_keepalive_expiry_s == 30.0
    assert configured.igm_max_connections == 64
    assert env(**GOOD, IGM_CA_BUNDLE="").igm_ca_bundle is None  # blank means unset


# --- lists and secrets ---------------------------------------------------------------------


def test_comma_lists(env: Env) -> None:
    settings = env(
        **GOOD
        | {
            "API_KEYS": f" {API_KEY_ONE} ,, {API_KEY_TWO}, ",
            "REDIRECT_ALLOWED_HOSTS": "Operator.Example, sub.operator.example",
        },
        TRUSTED_PROXIES="10.0.0.0/8, 192.168.1.1 ,2001:db8::/32",
        CORS_ALLOW_ORIGINS="https://a.example,https://b.example",
    )
    assert [key.get_secret_value() for key in settings.api_keys] == [API_KEY_ONE, API_KEY_TWO]
    assert settings.trusted_proxies == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
        ipaddress.ip_network("2001:db8::/32"),
    ]
    assert settings.redirect_allowed_hosts == ["operator.example", "sub.operator.example"]
    assert settings.cors_allow_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("value", ["", " , ,"])
def test_empty_lists(env: Env, value: str) -> None:
    settings = env(**GOOD | {"API_KEYS": value}, TRUSTED_PROXIES=value, LINKS_ENABLED="false")
    assert settings.api_keys == []
    assert settings.trusted_proxies == []


def test_secrets_stay_hidden(env: Env) -> None:
    settings = env(**GOOD, AUTH_JWT_SECRET="jwt-SECRET-5566778899")
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in (*SECRETS, "jwt-SECRET-5566778899"):
        assert secret not in shown
    assert isinstance(settings.igm_customer_uid, SecretStr)


def test_a_dotenv_in_the_working_directory_is_read(env: Env, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"IGM_CUSTOMER_UID={UID}\nIGM_SERVER_IP=203.0.113.10\nAPI_KEYS={API_KEY_ONE}\n"
        f"AUDIT_USER_ID_KEY={AUDIT_KEY}\nREDIRECT_ALLOW_ANY=true\n"
    )
    assert env().customer_uid.get_secret_value() == UID


# --- the application refuses to start --------------------------------------------------------


def test_create_app_prints_one_line_and_exits_3(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in (GOOD | {"IGM_SERVER_IP": "not-an-ip"}).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as caught:
        create_app()
    assert caught.value.code == 3  # uvicorn's STARTUP_FAILURE: no worker restarts
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("oneplatform-gateway: invalid configuration: IGM_SERVER_IP")
    for secret in SECRETS:
        assert secret not in captured.err


@pytest.mark.parametrize(
    "variables",
    [GOOD | {"IGM_SERVER_IP": "not-an-ip"}, {"API_KEYS": API_KEY_ONE}],
    ids=["malformed-server-ip", "credentials-missing"],
)
def test_uvicorn_factory_exits_with_one_line(tmp_path: Path, variables: dict[str, str]) -> None:
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        **variables,
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
        "--host", "127.0.0.1", "--port", str(free_port()),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, env=child_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("oneplatform-gateway:")] == lines[:1]
    assert len(lines) == 1, done.stderr
    assert "IGM_" in lines[0]
    assert "Traceback" not in done.stderr
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr


def test_an_admin_key_may_not_be_a_link_key(env: Env) -> None:
    message = problem(env, **(GOOD | {"ADMIN_API_KEYS": f"admin-only-key,{API_KEY_TWO}"}))
    assert "ADMIN_API_KEYS" in message
    assert "admin-only-key" not in message


def test_play_ladders_per_device(env: Env) -> None:
    settings = env(**(GOOD | {"PLAY_LADDER_TV": "HLS:player, HLS:raw"}))
    ladders = settings.play_ladders()
    assert [(s.stream_name, s.kind) for s in ladders["tv"]] == [("HLS", "player"), ("HLS", "raw")]
    assert [(s.stream_name, s.kind) for s in ladders["app"]] == [("HLS", "raw")]


# --- unsafe production settings, refused unless opted out of explicitly ------------------

UNSAFE: list[tuple[dict[str, str], list[str]]] = [
    ({"REPLICA_COUNT": "3"}, ["REDIS_URL must be set when REPLICA_COUNT=3"]),
    ({"WEB_CONCURRENCY": "2"}, ["REDIS_URL must be set when WEB_CONCURRENCY=2"]),
    ({"REDIRECT_ALLOWED_HOSTS": ""}, ["REDIRECT_ALLOWED_HOSTS", "REDIRECT_ALLOW_ANY=true"]),
    ({"API_KEYS": "short-api-key"}, ["API_KEYS must hold keys of at least 32 characters"]),
    (
        {"API_KEYS": f"{API_KEY_ONE},{'x' * 31}"},
        ["API_KEYS must hold keys of at least 32 characters"],
    ),
    ({"ADMIN_API_KEYS": "short-admin-key"}, ["ADMIN_API_KEYS must hold keys of at least 32"]),
    ({"AUDIT_USER_ID_KEY": ""}, ["AUDIT_USER_ID_KEY must be set in production mode"]),
    ({"API_KEYS": SIMULATOR_API_KEY}, ["API_KEYS holds the public demo key"]),
    ({"AUTH_JWT_SECRET": SIMULATOR_JWT_SECRET}, ["AUTH_JWT_SECRET is the public demo secret"]),
    (
        {"REPLICA_COUNT": "2", "AUDIT_USER_ID_KEY": "", "REDIRECT_ALLOWED_HOSTS": ""},
        ["REPLICA_COUNT=2", "AUDIT_USER_ID_KEY", "REDIRECT_ALLOWED_HOSTS"],
    ),
]


@pytest.mark.parametrize(
    ("change", "named"),
    UNSAFE,
    ids=[
        "fleet-without-redis",
        "workers-without-redis",
        "open-redirect",
        "short-api-key",
        "one-short-api-key",
        "short-admin-key",
        "no-audit-key",
        "demo-api-key",
        "demo-jwt-secret",
        "all-at-once",
    ],
)
def test_production_refuses_unsafe_settings_in_one_line(
    env: Env, change: dict[str, str], named: list[str]
) -> None:
    message = problem(env, **(GOOD | change))
    for words in named:
        assert words in message
    assert "short-api-key" not in message
    assert "short-admin-key" not in message


SAFE_CHOICES: list[dict[str, str]] = [
    {"REPLICA_COUNT": "3", "REDIS_URL": "redis://redis.internal:6379/0"},
    {"WEB_CONCURRENCY": "4", "REDIS_URL": "redis://redis.internal:6379/0"},
    {
        "REPLICA_COUNT": "3",
        "REDIS_MODE": "sentinel",
        "REDIS_SENTINELS": "s1:26379",
        "REDIS_SENTINEL_MASTER": "m",
    },
    {"REPLICA_COUNT": "1"},
    {"REDIRECT_ALLOWED_HOSTS": "", "REDIRECT_ALLOW_ANY": "true"},
    {"REDIRECT_ALLOWED_HOSTS": "", "LINKS_ENABLED": "false", "API_KEYS": ""},
    {"API_KEYS": "k" * 32, "ADMIN_API_KEYS": "a" * 32},
]


@pytest.mark.parametrize(
    "change",
    SAFE_CHOICES,
    ids=[
        "fleet-with-redis",
        "workers-with-redis",
        "fleet-with-sentinel",
        "one-replica",
        "any-redirect-by-choice",
        "read-only-gateway",
        "keys-of-32",
    ],
)
def test_production_accepts_the_safe_or_explicit_choice(env: Env, change: dict[str, str]) -> None:
    env(**(GOOD | change))


def test_the_embedded_simulator_needs_none_of_it(env: Env) -> None:
    settings = env(IGM_MODE="simulator", REPLICA_COUNT="1")
    assert settings.audit_user_id_key is None
    assert settings.redirect_allowed_hosts == []


# --- the demo's public credentials exist only with the built-in simulator ----------------

EXTERNAL = {"IGM_MODE": "simulator", "IGM_API_URL": "https://upstream.example/api"}


def test_simulator_mode_against_an_upstream_of_its_own_gets_no_demo_credentials(
    env: Env,
) -> None:
    settings = env(**EXTERNAL, API_KEYS=API_KEY_ONE)
    assert not settings.embedded_simulator
    assert [key.get_secret_value() for key in settings.api_keys] == [API_KEY_ONE]
    assert settings.auth_jwt_secret is None  # no public demo secret
    assert settings.demo_tokens is False  # no /_demo/token
    assert settings.default_redirect_url is None


def test_simulator_mode_against_an_upstream_of_its_own_needs_credentials(env: Env) -> None:
    message = problem(env, **EXTERNAL)
    assert "API_KEYS" in message
    assert "built-in simulator" in message
    assert env(**EXTERNAL, LINKS_ENABLED="false").api_keys == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"API_KEYS": SIMULATOR_API_KEY}, "API_KEYS holds the public demo key"),
        (
            {"AUTH_JWT_SECRET": SIMULATOR_JWT_SECRET},
            "AUTH_JWT_SECRET is the public demo secret",
        ),
    ],
    ids=["demo-api-key", "demo-jwt-secret"],
)
def test_the_public_demo_credentials_are_refused_against_an_upstream_of_its_own(
    env: Env, change: dict[str, str], named: str
) -> None:
    assert named in problem(env, **EXTERNAL, **change)


def test_the_token_route_needs_the_built_in_simulator_or_an_explicit_opt_in(env: Env) -> None:
    secret = "a-jwt-secret-of-at-least-thirty-two-bytes"
    assert env(IGM_MODE="simulator").demo_tokens
    assert not env(**EXTERNAL, AUTH_JWT_SECRET=secret).demo_tokens
    opted_in = env(**EXTERNAL, AUTH_JWT_SECRET=secret, DEMO_PAGE="true", DEMO_TOKEN_ISSUER="true")
    assert opted_in.demo_tokens


# --- asymmetric JWTs name their issuer and audience --------------------------------------

JWKS = {"AUTH_JWKS_URL": "https://idp.example/.well-known/jwks.json"}


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, ["AUTH_JWT_AUDIENCE", "AUTH_JWT_ISSUER"]),
        ({"AUTH_JWT_ISSUER": "https://idp.example/"}, ["AUTH_JWT_AUDIENCE"]),
        ({"AUTH_JWT_AUDIENCE": "gateway"}, ["AUTH_JWT_ISSUER"]),
    ],
    ids=["neither", "no-audience", "no-issuer"],
)
@pytest.mark.parametrize("mode", ["production", "simulator"])
def test_a_jwks_url_needs_audience_and_issuer(
    env: Env, given: dict[str, str], missing: list[str], mode: str
) -> None:
    base = GOOD if mode == "production" else EXTERNAL
    message = problem(env, **(base | JWKS | given))
    for name in missing:
        assert f"{name}" in message
    assert all(name not in message.split("must be set")[0] for name in given)


def test_a_jwks_url_with_audience_issuer_and_max_age(env: Env) -> None:
    settings = env(
        **(GOOD | JWKS),
        AUTH_JWT_ISSUER="https://idp.example/",
        AUTH_JWT_AUDIENCE="gateway",
        AUTH_JWT_MAX_AGE_S="3600",
    )
    assert settings.auth_jwt_max_age_s == 3600.0
    assert env(**GOOD, AUTH_JWT_MAX_AGE_S="").auth_jwt_max_age_s is None
    assert "AUTH_JWT_MAX_AGE_S" in problem(env, **GOOD, AUTH_JWT_MAX_AGE_S="0")
