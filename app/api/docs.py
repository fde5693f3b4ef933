"""The API documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served
with no internet: their scripts and styles come from the ``fastapi-standalone-docs``
package (swagger-ui-dist and ReDoc's standalone bundle, with their licences), mounted
at ``/docs/assets``, and not from a CDN.

Each page has its own Content-Security-Policy: scripts and styles from this origin
only, the inline Swagger UI start-up script and ReDoc's inline style reset allowed by
hash, ``connect-src 'self'`` for ``/openapi.json``. ReDoc also needs inline styles
(its styled components inject ``<style>`` elements at run time: it stops with an
error without them) and a worker started from a ``blob:`` URL (its search index).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, RedirectResponse

from app.api.content_policy import API_POLICY, ContentSecurityPolicy, WithPolicy, html_page

ASSETS_URL = "/docs/assets"
ASSETS_PACKAGE = ("fastapi_standalone_docs", "static")

_COMMON = {
    "default-src": ["'none'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
}
SWAGGER_POLICY = ContentSecurityPolicy(
    {**_COMMON, "script-src": ["'self'"], "style-src": ["'self'"]}
)
REDOC_POLICY = ContentSecurityPolicy(
    {
        **_COMMON,
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "worker-src": ["blob:"],
    }
)
# A script or a stylesheet is not a document: the API's policy fits it (and a file
# opened on its own runs nothing).
ASSETS_POLICY = API_POLICY

# Swagger UI's validator badge would send the document's URL to validator.swagger.io.
SWAGGER_PARAMETERS = {"validatorUrl": None}


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets to ``app`` (created with
    ``docs_url=None, redoc_url=None``)."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        return

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/fastapi/favicon.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
        return html_page(bytes(page.body).decode(), SWAGGER_POLICY)

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/fastapi/favicon.png",
            with_google_fonts=False,
        )
        return html_page(bytes(page.body).decode(), REDOC_POLICY)

    async def redoc_logo(request: Request) -> RedirectResponse:
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}{ASSETS_URL}/redoc/logo-mini.svg", status_code=308)

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    # ReDoc's footer asks for its logo at the page's own path plus "/logo-mini.svg".
    app.add_api_route("/redoc/logo-mini.svg", redoc_logo, methods=["GET"], include_in_schema=False)
    assets = StaticFiles(packages=[ASSETS_PACKAGE])
    app.mount(ASSETS_URL, WithPolicy(assets, ASSETS_POLICY), name="docs-assets")
