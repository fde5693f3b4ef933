"""The deployment files agree with the app and with each other.

No Docker engine runs the compose file or the manifests here, so this reads them (with
PyYAML) and checks what a broken deployment would get wrong: environment names that
are not settings, ports and probe paths the app does not serve, start commands that
skip ``scripts/serve`` (and its ``--no-proxy-headers``), addresses that do not line up
between nginx, the gateways and the simulator, metric names that do not exist.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from starlette.types import Receive, Scope, Send

from app.main import create_app
from app.observability.metrics import Metrics
from app.settings import Settings
from tests.support.gateway import SERVE_KEEP_ALIVE_S
from tests.support.topology import nginx_binary, render_nginx_conf

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
GATEWAYS = ("gateway-1", "gateway-2")
SETTINGS_ENV = frozenset(name.upper() for name in Settings.model_fields)
# Read by scripts/serve (or prometheus_client), not by Settings.
SERVE_ENV = frozenset({"HOST", "PORT", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "PYTHON"})
JOB = "oneplatform-gateway"


# --- loading -------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(REPO / "docker-compose.yml")
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


@pytest.fixture(scope="module")
def k8s() -> dict[str, Any]:
    """Every manifest in deploy/kubernetes by kind (one of each)."""
    by_kind: dict[str, Any] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in by_kind, f"two {document['kind']} in {K8S}"
            by_kind[document["kind"]] = document
    return by_kind


async def served_paths(candidates: Sequence[str]) -> set[str]:
    """Those of ``candidates`` the app (demo mode, lifespan running) does not 404."""
    app = create_app(Settings(igm_mode="simulator", _env_file=None))
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})  # what a server does with lifespan state
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            assert (await client.get("/no-such-path")).status_code == 404
            return {path for path in candidates if (await client.get(path)).status_code != 404}


@pytest.fixture(scope="module")
def routes() -> set[str]:
    """The operations paths the deployment refers to, that the app really answers."""
    candidates = ("/healthz", "/readyz", "/metrics", "/livez", "/health", "/ready")
    return asyncio.run(served_paths(candidates))


def test_routes_are_the_apps_operations_endpoints(routes: set[str]) -> None:
    assert routes == {"/healthz", "/readyz", "/metrics"}


def serve_command() -> str:
    """The uvicorn command line at the end of scripts/serve (comments left out)."""
    text = (REPO / "scripts" / "serve").read_text()
    return text[text.rindex("\nexec ") :]


def serve_option(name: str) -> str:
    """The value scripts/serve passes to uvicorn for ``--name``."""
    match = re.search(rf"--{name} (\S+)", serve_command())
    assert match is not None, f"scripts/serve passes no --{name}"
    return match.group(1)


def serve_default(variable: str) -> str:
    match = re.search(rf"\$\{{{variable}:-([^}}]+)\}}", (REPO / "scripts" / "serve").read_text())
    assert match is not None, f"scripts/serve has no default for {variable}"
    return match.group(1)


def exposed_metrics() -> dict[str, tuple[str, ...]]:
    """Name as scraped (``_total``, ``_bucket``...) -> label names, for every metric."""
    names: dict[str, tuple[str, ...]] = {}
    for metric, labels in Metrics().label_names.items():
        (family,) = metric.describe()
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
        }[family.type]
        names |= {family.name + suffix: labels for suffix in suffixes}
    return names


def settings_from(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Settings:
    """``Settings`` as the app would read them from exactly ``env``."""
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def env_of(service: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in service.get("environment", {}).items()}


# --- docker compose ------------------------------------------------------------------


def test_compose_has_the_fleet(services: dict[str, Any]) -> None:
    assert set(services) == {"redis", "simulator", *GATEWAYS, "nginx", "prometheus", "grafana"}


@pytest.mark.parametrize("name", GATEWAYS)
def test_compose_gateway_env_names_are_settings(services: dict[str, Any], name: str) -> None:
    unknown = set(env_of(services[name])) - SETTINGS_ENV - SERVE_ENV
    assert unknown == set()


@pytest.mark.parametrize("name", GATEWAYS)
def test_compose_gateway_env_is_valid_production_config(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_of(services[name])
    settings = settings_from(monkeypatch, {k: v for k, v in env.items() if k in SETTINGS_ENV})
    assert settings.igm_mode == "production"
    assert settings.replica_id == name
    assert settings.redis_url == "redis://redis:6379/0"
    assert urlsplit(str(settings.igm_api_url)).hostname == "simulator"


def test_compose_addresses_line_up(services: dict[str, Any], compose: dict[str, Any]) -> None:
    def address(name: str) -> ipaddress.IPv4Address:
        return ipaddress.IPv4Address(services[name]["networks"]["fleet"]["ipv4_address"])

    ipam = compose["networks"]["fleet"]["ipam"]["config"][0]
    subnet = ipaddress.IPv4Network(ipam["subnet"])
    dynamic = ipaddress.IPv4Network(ipam["ip_range"])
    sim_env = env_of(services["simulator"])
    whitelisted = set(sim_env["SIM_SERVER_IPS"].split(","))
    nginx = address("nginx")
    for name in GATEWAYS:
        env = env_of(services[name])
        # The gateways believe X-Forwarded-For from nginx, and from nobody else.
        assert [ipaddress.ip_network(n) for n in env["TRUSTED_PROXIES"].split(",")] == [
            ipaddress.ip_network(f"{nginx}/32")
        ]
        # The simulator accepts each gateway's server IP.
        assert env["IGM_SERVER_IP"] == str(address(name))
        assert env["IGM_SERVER_IP"] in whitelisted
        assert env["IGM_CUSTOMER_UID"] == sim_env["SIM_CUSTOMER_UID"]
    for name in (*GATEWAYS, "nginx"):
        assert address(name) in subnet
        assert address(name) not in dynamic, f"{name} could collide with a dynamic address"
    assert len({address(name) for name in (*GATEWAYS, "nginx")}) == 3


def test_compose_replica_count_counts_processes(services: dict[str, Any]) -> None:
    ids = [env_of(services[name])["REPLICA_ID"] for name in GATEWAYS]
    assert len(set(ids)) == len(GATEWAYS)
    for name in GATEWAYS:
        env = env_of(services[name])
        assert int(env["REPLICA_COUNT"]) == len(GATEWAYS) * int(env["WEB_CONCURRENCY"])


def test_compose_gateways_point_at_the_simulator_and_redis(services: dict[str, Any]) -> None:
    command = services["simulator"]["command"]
    assert command[:3] == ["python", "-m", "app.simulator"]
    sim_port = int(command[command.index("--port") + 1])
    for name in GATEWAYS:
        env = env_of(services[name])
        for url in (env["IGM_API_URL"], env["IGM_PLAYER_API_URL"]):
            parts = urlsplit(url)
            assert (parts.hostname, parts.port) == ("simulator", sim_port)
        assert urlsplit(env["REDIS_URL"]).hostname == "redis"
        assert set(services[name]["depends_on"]) == {"redis", "simulator"}


def test_compose_app_services_share_one_image_and_the_start_command(
    services: dict[str, Any],
) -> None:
    images = {services[name]["image"] for name in ("simulator", *GATEWAYS)}
    assert len(images) == 1
    for name in ("simulator", *GATEWAYS):
        assert services[name]["build"] == "."
    for name in GATEWAYS:
        # No command or entrypoint: the image's CMD, scripts/serve, starts them.
        assert "command" not in services[name]
        assert "entrypoint" not in services[name]


def test_compose_third_party_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        assert re.search(r":v?\d+\.\d+\.\d+[\w.-]*$|@sha256:[0-9a-f]{64}$", image), (name, image)


@pytest.mark.parametrize("name", [*GATEWAYS, "simulator"])
def test_compose_healthchecks_hit_real_routes(
    services: dict[str, Any], routes: set[str], name: str
) -> None:
    test = " ".join(services[name]["healthcheck"]["test"])
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]+)", test)
    assert match is not None
    port, path = match.groups()
    if name == "simulator":
        command = services[name]["command"]
        assert (port, path) == (command[command.index("--port") + 1], "/_sim/stats")
    else:
        assert port == serve_default("PORT")
        assert path == "/readyz"
        assert path in routes


# --- nginx ---------------------------------------------------------------------------


def nginx_template() -> str:
    return (DEPLOY / "nginx" / "nginx.conf").read_text()


def test_compose_renders_the_nginx_template(services: dict[str, Any]) -> None:
    nginx = services["nginx"]
    env = env_of(nginx)
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"
    assert env["NGINX_ENVSUBST_FILTER"] == "LB_"
    assert (
        "./deploy/nginx/nginx.conf:/etc/nginx/templates/nginx.conf.template:ro"
        in (nginx["volumes"])
    )
    rendered = render_nginx_conf(nginx_template(), env)
    assert not re.search(r"\$\{?LB_\w", rendered)
    servers = re.findall(r"^\s*server (\S+) ", rendered, flags=re.MULTILINE)
    assert servers == [f"{name}:{serve_default('PORT')}" for name in GATEWAYS]
    listen = re.search(r"^\s*listen (\S+);", rendered, flags=re.MULTILINE)
    assert listen is not None
    assert nginx["ports"] == [f"127.0.0.1:8080:{listen.group(1)}"]


def test_nginx_sets_forwarding_headers() -> None:
    template = nginx_template()
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in template
    assert "proxy_set_header X-Request-ID $request_id;" in template
    assert "proxy_pass http://gateways;" in template


def test_nginx_drops_idle_connections_before_uvicorn() -> None:
    match = re.search(r"keepalive_timeout (\d+)s;", nginx_template())
    assert match is not None
    assert int(match.group(1)) < int(serve_option("timeout-keep-alive"))


def test_render_nginx_conf_refuses_missing_values() -> None:
    with pytest.raises(KeyError, match="LB_GATEWAY_2"):
        render_nginx_conf(nginx_template(), {"LB_LISTEN": "1", "LB_GATEWAY_1": "a:1"})


def test_nginx_accepts_the_rendered_template(tmp_path: Path) -> None:
    binary = nginx_binary()
    assert binary is not None, "nginx is required: apt-get install -y nginx-light"
    values = {
        "LB_LISTEN": "127.0.0.1:18080",
        "LB_GATEWAY_1": "127.0.0.1:18001",
        "LB_GATEWAY_2": "127.0.0.1:18002",
        "LB_RUN_DIR": str(tmp_path),
    }
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx_conf(nginx_template(), values))
    result = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# --- start command and image -----------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_dockerfile_base_images_are_pinned() -> None:
    args = dict(
        arg.split("=", 1) for op, arg in dockerfile_instructions() if op == "ARG" and "=" in arg
    )
    froms = [arg.split()[0] for op, arg in dockerfile_instructions() if op == "FROM"]
    assert len(froms) >= 2, "a multi-stage build"
    for image in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        # python for the service; node only to npm ci the demo page's player libraries
        assert re.fullmatch(
            r"python:3\.11\.\d+-slim-bookworm|node:20\.\d+\.\d+-bookworm-slim", image
        ), image
    assert froms[-1] == "${PYTHON_IMAGE}", "the runtime is the python image"


def test_dockerfile_runtime_stage() -> None:
    stage = final_stage()
    users = [arg for op, arg in stage if op == "USER"]
    assert users, "the runtime stage sets USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert ("EXPOSE", serve_default("PORT")) in stage
    healthchecks = [arg for op, arg in stage if op == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/healthz" in healthchecks[0]
    assert "python" in healthchecks[0]
    cmd = json.loads(next(arg for op, arg in stage if op == "CMD"))
    assert cmd[0].endswith("scripts/serve")
    env_text = " ".join(arg for op, arg in stage if op == "ENV")
    assert "WEB_CONCURRENCY=2" in env_text
    runs = [arg for op, arg in stage if op == "RUN"]
    assert not any(re.search(r"apt-get|gcc|build-essential|pip install", arg) for arg in runs)
    copies = [arg for op, arg in stage if op == "COPY"]
    assert any("--from=builder /opt/venv" in arg for arg in copies)


def pip_installs(commands: Sequence[str]) -> list[str]:
    """Each ``pip install ...`` in ``commands`` (shell lines or RUN arguments)."""
    return [
        found.strip()
        for command in commands
        for found in re.findall(r"pip install ([^&;\n]*)", command)
    ]


def test_dockerfile_installs_the_locked_dependencies_then_the_project() -> None:
    instructions = dockerfile_instructions()
    installs = pip_installs([arg for op, arg in instructions if op == "RUN"])
    assert installs[0] == "--require-hashes -r requirements.lock"
    # the demo extra only when built for the demo (DEMO_STORE=true), then the project,
    # which resolves nothing: the locks have it all
    assert installs[1:] == ["--require-hashes -r requirements-demo.lock", "--no-deps ."]
    demo = next(arg for op, arg in instructions if op == "RUN" and "requirements-demo" in arg)
    assert demo.startswith('if [ "$DEMO_STORE" = true ]; then ')
    assert ("ARG", "DEMO_STORE=false") in instructions
    lock_copied = next(
        i for i, (op, arg) in enumerate(instructions) if op == "COPY" and "requirements.lock" in arg
    )
    lock_installed = next(
        i for i, (op, arg) in enumerate(instructions) if op == "RUN" and "requirements.lock" in arg
    )
    assert lock_copied < lock_installed
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "!requirements.lock" in ignore
    assert "!requirements-demo.lock" in ignore


def test_scripts_test_installs_the_locked_dev_dependencies_then_the_project() -> None:
    lines = [
        line
        for line in (REPO / "scripts" / "test").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    installs = [i for i in pip_installs(lines) if "--upgrade pip" not in i]
    assert installs == ["-q --require-hashes -r requirements-dev.lock", "-q --no-deps -e ."]


def test_dockerfile_and_dockerignore_hold_no_secret() -> None:
    text = " ".join(arg for op, arg in dockerfile_instructions() if op in {"ENV", "ARG"})
    for name in ("IGM_CUSTOMER_UID", "API_KEYS", "AUTH_JWT_SECRET", "REDIS_URL"):
        assert name not in text
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[[line.startswith("#") for line in ignore].index(False)] == "*"
    assert "!.env" not in ignore


def test_serve_is_the_one_start_command() -> None:
    serve = (REPO / "scripts" / "serve").read_text()
    assert serve.startswith("#!/bin/sh\n")
    assert "\nset -eu\n" in serve
    for flag in ("--factory app.main:create_app", "--no-proxy-headers", "--no-access-log"):
        assert flag in serve_command()
    assert int(serve_option("timeout-graceful-shutdown")) > 0
    assert serve_option("timeout-keep-alive") == SERVE_KEEP_ALIVE_S  # the test fleets' too
    assert (REPO / "scripts" / "serve").stat().st_mode & 0o111


def launchers() -> Iterator[Path]:
    yield from (REPO / "scripts").iterdir()
    yield REPO / "Dockerfile"
    yield REPO / "docker-compose.yml"
    yield from K8S.glob("*.yaml")


def test_every_launch_of_the_app_disables_uvicorn_proxy_headers() -> None:
    checked = 0
    for path in launchers():
        if path.is_file() and "app.main:create_app" in path.read_text():
            checked += 1
            assert "--no-proxy-headers" in path.read_text(), path
    assert checked >= 2  # scripts/serve and scripts/demo


# --- Prometheus, alerts, Grafana ---------------------------------------------------------


def test_prometheus_scrapes_every_gateway(services: dict[str, Any], routes: set[str]) -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB
    assert job.get("metrics_path", "/metrics") in routes
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == [f"{name}:{serve_default('PORT')}" for name in GATEWAYS]
    mounts = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    for rule_file in config["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in mounts


def alert_rules() -> list[dict[str, Any]]:
    config = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    return [rule for group in config["groups"] for rule in group["rules"]]


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        expr = rule["expr"]
        for opening, closing in ("()", "{}", "[]"):
            assert expr.count(opening) == expr.count(closing), rule["alert"]
    watched = {name for rule in rules for name in re.findall(r"\bgateway_\w+", rule["expr"])}
    assert watched >= {
        "gateway_upstream_calls_total",  # 429 from ONEPlatform
        "gateway_http_requests_total",  # 5xx ratio
        "gateway_catalogue_age_seconds",  # stale catalogue
        "gateway_degraded",  # Redis unreachable
        "gateway_redis_errors_total",
        "gateway_budget_decisions_total",  # link budget saturated
        "gateway_refresh_leader",  # no leader
    }
    assert any(f'up{{job="{JOB}"}}' in rule["expr"] for rule in rules)


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(
        (DEPLOY / "grafana" / "dashboards" / "gateway.json").read_text()
    )
    return board


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def app_source() -> str:
    return "\n".join(path.read_text() for path in (REPO / "app").rglob("*.py"))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param((DEPLOY / "prometheus" / "alerts.yml").read_text(), id="alerts"),
        pytest.param("\n".join(dashboard_exprs()), id="dashboard"),
    ],
)
def test_metric_names_labels_and_values_exist(text: str) -> None:
    metrics = exposed_metrics()
    source = app_source()
    used = re.findall(r"\bgateway_\w+", text)
    assert used
    assert set(used) <= set(metrics)
    for name, matchers in re.findall(r"\b(gateway_\w+)\{([^}]*)\}", text):
        for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', matchers):
            if label in {"instance", "job"}:
                continue
            assert label in metrics[name], f"{name} has no label {label}"
            for alternative in value.split("|") if op in {"=~", "!~"} else [value]:
                if re.fullmatch(r"[\w/]+", alternative):
                    assert f'"{alternative}"' in source, f'{name}{{{label}="{alternative}"}}'


def test_dashboard_shows_every_metric() -> None:
    shown = {name for expr in dashboard_exprs() for name in re.findall(r"\bgateway_\w+", expr)}
    bases = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in shown}
    every = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in exposed_metrics()}
    assert bases == every


def test_grafana_provisioning_matches_compose(services: dict[str, Any]) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    (provider,) = load_yaml(provisioning / "dashboards" / "gateway.yml")["providers"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert urlsplit(datasource["url"]).hostname == "prometheus"
    uids = {
        source["uid"]
        for panel in dashboard()["panels"]
        for source in [
            panel.get("datasource"),
            *[t["datasource"] for t in panel.get("targets", [])],
        ]
        if source is not None
    }
    assert uids == {datasource["uid"]}


# --- Kubernetes ------------------------------------------------------------------------


def container(k8s: dict[str, Any]) -> dict[str, Any]:
    (found,) = k8s["Deployment"]["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = found
    return result


def test_kustomization_lists_every_manifest_but_the_secret_example(k8s: dict[str, Any]) -> None:
    listed = set(k8s["Kustomization"]["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == on_disk
    assert set(k8s) == {
        "Kustomization",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
        "ServiceMonitor",
    }


def test_k8s_env_names_are_settings(k8s: dict[str, Any]) -> None:
    names = set(k8s["ConfigMap"]["data"]) | set(k8s["Secret"]["stringData"])
    names |= {item["name"] for item in container(k8s).get("env", [])}
    assert names - SETTINGS_ENV - SERVE_ENV == set()


def test_k8s_config_and_secret_example_make_valid_settings(
    k8s: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dict(k8s["ConfigMap"]["data"]) | dict(k8s["Secret"]["stringData"])
    settings = settings_from(monkeypatch, {k: str(v) for k, v in env.items()})
    assert settings.igm_mode == "production"
    assert settings.trusted_proxies  # X-Forwarded-For is believed from the ingress only
    replicas = k8s["HorizontalPodAutoscaler"]["spec"]["maxReplicas"]
    assert settings.replica_count == replicas * int(env["WEB_CONCURRENCY"])


def test_k8s_deployment_probes_ports_and_start_command(
    k8s: dict[str, Any], routes: set[str]
) -> None:
    main = container(k8s)
    assert "command" not in main
    assert "args" not in main  # the image's CMD: scripts/serve
    (port,) = main["ports"]
    assert port["containerPort"] == int(serve_default("PORT"))
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert main[probe]["httpGet"]["path"] in routes
        assert main[probe]["httpGet"]["port"] == port["name"]
    assert not re.search(r":latest$|^[^:]+$", main["image"])


def test_k8s_deployment_rolls_and_drains_safely(k8s: dict[str, Any]) -> None:
    spec = k8s["Deployment"]["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = spec["template"]["spec"]
    command = container(k8s)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    drain = int(command[1]) + int(serve_option("timeout-graceful-shutdown"))
    assert pod["terminationGracePeriodSeconds"] > drain


def test_k8s_pod_is_locked_down(k8s: dict[str, Any]) -> None:
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    main = container(k8s)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    tmp = "/tmp"  # noqa: S108 - the pod's emptyDir, not this machine's
    assert "emptyDir" in volumes[next(n for n, p in mounts.items() if p == tmp)]
    env = {item["name"]: item.get("value") for item in main["env"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith(tmp + "/")
    for kind in ("requests", "limits"):
        assert set(main["resources"][kind]) == {"cpu", "memory"}


def test_k8s_objects_select_each_other(k8s: dict[str, Any], routes: set[str]) -> None:
    deployment = k8s["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = k8s["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == container(k8s)["ports"][0]["name"]
    pdb = k8s["PodDisruptionBudget"]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = k8s["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["kind"] == "Deployment"
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert pdb["minAvailable"] < hpa["minReplicas"]
    monitor = k8s["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] == service_port["name"]
    assert endpoint["path"] in routes
    # The job label the operator gives these targets is the Service's name.
    assert service["metadata"]["name"] == JOB


def test_secret_example_holds_placeholders_only(k8s: dict[str, Any]) -> None:
    secret = k8s["Secret"]
    assert "data" not in secret
    for name, value in secret["stringData"].items():
        assert re.search(r"<[a-z0-9-]+>", value), f"{name} is not a <placeholder>"
        without = re.sub(r"<[^>]*>", "", value)
        assert not re.search(r"[A-Za-z0-9+/=_-]{16,}", without), f"{name} looks real"
    configmap_text = (K8S / "configmap.yaml").read_text()
    for name in secret["stringData"]:
        assert f"{name}:" not in configmap_text
