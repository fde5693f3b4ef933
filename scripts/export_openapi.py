"""Write the gateway's OpenAPI document to ``openapi/openapi.json``.

    .venv/bin/python scripts/export_openapi.py           # (re)write the file
    .venv/bin/python scripts/export_openapi.py --check   # exit 1 if it is out of date

The document comes from ``create_app(Settings(igm_mode="simulator"))``: no credentials,
no network, and nothing is started (the lifespan does not run).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "openapi" / "openapi.json"

if str(REPO_ROOT) not in sys.path:  # run as a script: make ``app`` importable
    sys.path.insert(0, str(REPO_ROOT))

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource  # noqa: E402

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402


def document_settings() -> Settings:
    """Demo-mode settings from defaults only: no environment variable, no ``.env``."""

    class DocumentSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    return DocumentSettings(igm_mode="simulator")


def render_openapi() -> str:
    """The document as committed: sorted keys, 2-space indent, trailing newline."""
    app = create_app(document_settings())
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    fresh = render_openapi()
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else None
        if current != fresh:
            print(
                f"{output} is out of date with the app's routes; "
                "run: .venv/bin/python scripts/export_openapi.py",
                file=sys.stderr,
            )
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(fresh, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
