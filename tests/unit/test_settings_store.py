"""REDIS_MODE, REDIS_URL, REDIS_SENTINELS and REDIS_SENTINEL_MASTER: what each mode
needs, how a bad combination is reported (one line naming the setting, no secret),
and the store configuration the lifespan builds from them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, load_settings
from app.store import StoreConfig

PASSWORD = "redis-PASSWORD-5e7a91"
BASE = {"IGM_MODE": "simulator"}

Env = Callable[..., Settings]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    monkeypatch.chdir(tmp_path)
    names = {name.upper() for name in Settings.model_fields}
    for name in os.environ:
        if name.upper() in names:
            monkeypatch.delenv(name)

    def load(**variables: str) -> Settings:
        for name, value in (BASE | variables).items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return load


VALID: list[tuple[str, dict[str, str], StoreConfig]] = [
    ("default-embedded", {}, StoreConfig()),
    (
        "standalone-url",
        {"REDIS_URL": "redis://127.0.0.1:6379/0"},
        StoreConfig(url="redis://127.0.0.1:6379/0"),
    ),
    (
        "cluster-tls-seed",
        {"REDIS_MODE": "cluster", "REDIS_URL": f"rediss://:{PASSWORD}@10.0.0.5:7000"},
        StoreConfig(mode="cluster", url=f"rediss://:{PASSWORD}@10.0.0.5:7000"),
    ),
    (
        "sentinel",
        {
            "REDIS_MODE": "sentinel",
            "REDIS_SENTINELS": "10.0.0.1:26379, sentinel-2:26380,[::1]:26381",
            "REDIS_SENTINEL_MASTER": "gateway",
        },
        StoreConfig(
            mode="sentinel",
            sentinels=(("10.0.0.1", 26379), ("sentinel-2", 26380), ("::1", 26381)),
            sentinel_master="gateway",
        ),
    ),
    (
        "sentinel-with-credentials",
        {
            "REDIS_MODE": "sentinel",
            "REDIS_URL": f"rediss://:{PASSWORD}@ignored/2",
            "REDIS_SENTINELS": "10.0.0.1:26379",
            "REDIS_SENTINEL_MASTER": "gateway",
        },
        StoreConfig(
            mode="sentinel",
            url=f"rediss://:{PASSWORD}@ignored/2",
            sentinels=(("10.0.0.1", 26379),),
            sentinel_master="gateway",
        ),
    ),
]


@pytest.mark.parametrize(
    ("variables", "expected"), [v[1:] for v in VALID], ids=[v[0] for v in VALID]
)
def test_store_config_per_mode(env: Env, variables: dict[str, str], expected: StoreConfig) -> None:
    settings = env(**variables)
    assert settings.store_config == expected
    assert settings.store_config.shared == (expected.url is not None or expected.mode == "sentinel")


INVALID: list[tuple[str, dict[str, str], str]] = [
    ("cluster-without-url", {"REDIS_MODE": "cluster"}, "REDIS_URL"),
    (
        "cluster-unix-socket",
        {"REDIS_MODE": "cluster", "REDIS_URL": "unix:///run/r.sock"},
        "REDIS_URL",
    ),
    ("sentinel-without-anything", {"REDIS_MODE": "sentinel"}, "REDIS_SENTINELS"),
    (
        "sentinel-without-master",
        {"REDIS_MODE": "sentinel", "REDIS_SENTINELS": "10.0.0.1:26379"},
        "REDIS_SENTINEL_MASTER",
    ),
    (
        "sentinel-without-sentinels",
        {"REDIS_MODE": "sentinel", "REDIS_SENTINEL_MASTER": "gateway"},
        "REDIS_SENTINELS",
    ),
    ("sentinels-in-standalone", {"REDIS_SENTINELS": "10.0.0.1:26379"}, "REDIS_SENTINELS"),
    (
        "master-in-cluster",
        {"REDIS_MODE": "cluster", "REDIS_URL": "redis://a:1", "REDIS_SENTINEL_MASTER": "m"},
        "REDIS_SENTINEL_MASTER",
    ),
    ("unknown-mode", {"REDIS_MODE": "replicated"}, "REDIS_MODE"),
    ("sentinel-without-port", {"REDIS_SENTINELS": "10.0.0.1"}, "REDIS_SENTINELS"),
    ("sentinel-port-out-of-range", {"REDIS_SENTINELS": "h:70000"}, "REDIS_SENTINELS"),
    ("url-scheme", {"REDIS_URL": f"http://:{PASSWORD}@10.0.0.5:6379"}, "REDIS_URL"),
]


@pytest.mark.parametrize(
    ("variables", "named"), [v[1:] for v in INVALID], ids=[v[0] for v in INVALID]
)
def test_a_bad_store_combination_is_one_line_naming_the_setting(
    env: Env, variables: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        env(**variables)
    message = str(caught.value)
    assert message.startswith("invalid configuration: ")
    assert "\n" not in message
    assert named in message
    assert PASSWORD not in message
