"""The lock files pin, with hashes, every dependency pyproject.toml declares.

scripts/lock makes them; the image installs requirements.lock, scripts/demo
requirements-demo.lock (the embedded store) and scripts/test requirements-dev.lock, with
``pip install --require-hashes``. A dependency added to
pyproject.toml without running scripts/lock fails here, not in a build next month.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)\s*$")


def pins(lock: str) -> dict[str, Version]:
    """Name -> pinned version; every requirement must be ``name==version`` with hashes."""
    text = (REPO / lock).read_text()
    entries = re.sub(r"\s*\\\n\s*", " ", text).splitlines()
    found: dict[str, Version] = {}
    for entry in entries:
        if not entry.strip() or entry.lstrip().startswith("#"):
            continue
        match = PIN.match(entry)
        assert match is not None, f"{lock}: not an exact pin with hashes: {entry[:80]}"
        found[canonicalize_name(match.group(1))] = Version(match.group(2))
    return found


def declared(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    raw = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(line) for line in raw]


@pytest.mark.parametrize(
    ("lock", "extras"),
    [
        ("requirements.lock", ()),
        ("requirements-demo.lock", ("demo",)),
        ("requirements-dev.lock", ("demo", "dev")),
    ],
)
def test_every_declared_dependency_is_pinned_within_its_range(
    lock: str, extras: tuple[str, ...]
) -> None:
    pinned = pins(lock)
    wanted = declared() + [r for extra in extras for r in declared(extra)]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in {lock}: run scripts/lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, outside {requirement}: run scripts/lock"
        )


def test_the_dev_lock_runs_the_same_runtime_versions_as_the_image() -> None:
    runtime, demo, dev = (
        pins("requirements.lock"),
        pins("requirements-demo.lock"),
        pins("requirements-dev.lock"),
    )
    assert {name: dev.get(name) for name in runtime} == runtime
    assert {name: dev.get(name) for name in demo} == demo
    assert {name: demo.get(name) for name in runtime} == runtime
    assert "pytest" not in runtime
    assert "pytest" not in demo


def test_the_embedded_store_is_no_runtime_dependency() -> None:
    """A production image shares a Redis: fakeredis comes only with the demo extra."""
    assert "fakeredis" not in pins("requirements.lock")
    assert "fakeredis" in pins("requirements-demo.lock")
    assert "fakeredis" in pins("requirements-dev.lock")
