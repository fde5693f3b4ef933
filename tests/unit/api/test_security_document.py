"""The OpenAPI document's security: the schemes Swagger UI's *Authorize* fills in, each
viewer operation needing the JWT or the API key with the user id, the admin key only
where the admin API is shown, and the demo token's route and hint only in demo mode."""

from __future__ import annotations

from typing import Any

import pytest

from app.main import create_app
from app.settings import Settings

VIEWER: list[dict[str, list[str]]] = [{"viewerJwt": []}, {"apiKey": [], "userId": []}]
VIEWER_OPERATIONS = {
    ("get", "/v1/events/live"),
    ("post", "/v1/events/{eventId}/links"),
    ("post", "/v1/events/{eventId}/play"),
    ("post", "/v1/sessions/{sessionId}/heartbeat"),
    ("delete", "/v1/sessions/{sessionId}"),
}


def document(**values: object) -> dict[str, Any]:
    schema: dict[str, Any] = create_app(Settings(**values)).openapi()  # type: ignore[arg-type]
    return schema


def production(**values: object) -> dict[str, Any]:
    return document(
        igm_customer_uid="uid-not-used-here",
        igm_server_ip="127.0.0.1",
        igm_api_url="http://127.0.0.1:9/api",
        api_keys="k" * 40,
        redirect_allowed_hosts="www.example.com",
        audit_user_id_key="a" * 40,
        **values,
    )


def secured(schema: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        (method, path): operation["security"]
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "security" in operation
    }


def test_demo_mode_says_where_a_token_comes_from() -> None:
    schema = document(igm_mode="simulator")
    schemes = schema["components"]["securitySchemes"]
    assert schemes["viewerJwt"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["viewerJwt"]["description"],
    }
    assert "GET /_demo/token" in schemes["viewerJwt"]["description"]
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    assert (schemes["userId"]["in"], schemes["userId"]["name"]) == ("header", "X-User-Id")
    assert secured(schema) == dict.fromkeys(VIEWER_OPERATIONS, VIEWER)
    token = schema["paths"]["/_demo/token"]["get"]
    assert token["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DemoTokenOut"
    }
    assert "/_demo/token" in schema["info"]["description"]


@pytest.mark.parametrize("admin_shown", [False, True])
def test_production_has_no_demo_and_the_admin_key_only_with_the_admin_api(
    admin_shown: bool,
) -> None:
    schema = production(admin_in_openapi=admin_shown)
    schemes = schema["components"]["securitySchemes"]
    assert "/_demo/token" not in schema["paths"]
    assert "_demo" not in schemes["viewerJwt"]["description"]
    assert "_demo" not in schema["info"]["description"]
    assert ("adminKey" in schemes) is admin_shown
    admin = {key: value for key, value in secured(schema).items() if key[1].startswith("/admin")}
    assert all(value == [{"adminKey": []}] for value in admin.values())
    assert bool(admin) is admin_shown
