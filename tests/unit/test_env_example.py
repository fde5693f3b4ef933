"""``.env.example`` documents every setting, and names nothing that is not one."""

from __future__ import annotations

from pathlib import Path

from app.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def documented() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            names.add(line.split("=", 1)[0].strip())
    return names


def test_every_setting_is_documented() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - documented() == set()
    assert documented() - settings == set()


def test_no_secret_value_is_filled_in() -> None:
    values = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    }
    for secret in ("IGM_CUSTOMER_UID", "AUTH_JWT_SECRET", "AUTH_JWT_PUBLIC_KEY", "API_KEYS"):
        assert values[secret] == ""
