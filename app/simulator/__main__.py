"""``python -m app.simulator --host 127.0.0.1 --port 8081`` (settings from ``SIM_*``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import uvicorn

from app.simulator.app import create_simulator
from app.simulator.config import SimulatorConfig


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app.simulator", description="Run the ONEPlatform simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = SimulatorConfig.from_env(os.environ)
    uvicorn.run(create_simulator(config), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
