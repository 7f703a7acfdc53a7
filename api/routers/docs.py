"""The interactive API docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``) from the package.

FastAPI's default pages load Swagger UI and ReDoc from a CDN and stay blank offline; these
pages are FastAPI's own (``get_swagger_ui_html``, ``get_redoc_html``) pointed at the copies
vendored under ``static/vendor`` (``web/package.json``: swagger-ui-dist, Apache-2.0; redoc,
MIT), so the docs work on a machine without internet.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from api.deps import public

VENDOR = "/ui/vendor"
NO_OUTSIDE_IMAGES = (
    b'<head>\n<meta http-equiv="Content-Security-Policy" content="img-src \'self\' data: blob:">'
)
router = APIRouter(tags=["docs"], dependencies=[Depends(public)])


@router.get("/docs", include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for the OpenAPI document, with the assets served from the package."""
    app = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/ui/favicon.svg",
        # the default validator badge asks an outside host about the document
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/docs/oauth2-redirect", include_in_schema=False)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc for the OpenAPI document, without web fonts from outside."""
    app = request.app
    page = get_redoc_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url="/ui/favicon.svg",
        with_google_fonts=False,
    )
    # ReDoc's footer shows its maker's logo from their CDN; images from this host only.
    body = bytes(page.body).replace(b"<head>", NO_OUTSIDE_IMAGES, 1)
    return HTMLResponse(body)
