"""The FastAPI application: JSON API under /api, server-rendered pages elsewhere."""

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware

from api.assets import StaticAssets
from api.deps import csrf_token
from api.i18n import LocaleMiddleware, translated, translated_details
from api.routes import (
    api_auth,
    api_custom_reports,
    api_imports,
    api_notifications,
    api_process_admin,
    api_processes,
    api_releases,
    api_reports,
    api_schools,
    api_spot_checks,
    api_students,
    api_tasks,
    change_pages,
    custom_report_pages,
    dashboard_pages,
    import_pages,
    inbox_pages,
    instance_pages,
    lang_pages,
    notification_pages,
    pages,
    process_admin_pages,
    release_pages,
    report_pages,
    roster_pages,
    spot_check_pages,
    transfer_pages,
)
from api.templating import templates
from registry.db import make_engine, make_sessionmaker
from registry.errors import Conflict, DomainError, msg
from registry.file_store import local_file_store
from registry.settings import Settings, get_settings
from registry.users import User, get_user

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

_HTTP_CODES = {400: "bad_request", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "rule_violation"}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/healthz" or \
        "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", "")


def _error(request: Request, status: int, code: str, message: str, details: Any = None,
           headers: dict[str, str] | None = None) -> Response:
    # A registry message (registry/errors.py) in the request's language: JSON only carries text.
    message, details = translated(message), translated_details(details)
    if _wants_json(request):
        return JSONResponse({"code": code, "message": message, "details": details}, status_code=status,
                            headers=headers)
    if status == 401:
        return Response(status_code=303, headers={"Location": f"/login?next={quote(request.url.path)}"})
    # With the navigation of a signed-in user, so that an error page is not a dead end; a fresh session,
    # since the request's own may be closed or in a failed transaction by now.
    with request.app.state.sessions() as session:
        request.state.db = session
        context = {"status": status, "message": message, "details": details, "user": _signed_in(request, session),
                   "csrf_token": csrf_token(request)}
        return templates.TemplateResponse(request, "error.html", context, status_code=status)


def _signed_in(request: Request, session: Session) -> User | None:
    uid = request.session.get("uid") if "session" in request.scope else None
    if uid is None:
        return None
    try:
        return get_user(session, user_id=uid)
    except (DomainError, SQLAlchemyError):
        return None


def create_app(settings: Settings | None = None, sessions: sessionmaker[Session] | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="mealroll 营养改善计划实名制学生信息管理系统", version="0.1.0",
                  openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None)
    app.state.settings = settings
    app.state.secret = settings.session_secret()
    app.state.sessions = sessions or make_sessionmaker(make_engine(settings.db_url))
    app.state.files = local_file_store(settings)
    app.add_middleware(SessionMiddleware, secret_key=app.state.secret, session_cookie="mealroll_session",
                       max_age=settings.token_max_age_seconds, same_site="lax",
                       https_only=settings.env == "production")
    app.add_middleware(LocaleMiddleware)

    # Starlette walks the exception's class hierarchy: one handler covers every DomainError.
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return _error(request, exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> Response:
        return _error(request, Conflict.status, Conflict.code, msg("数据已被他人同时修改，请刷新后重试"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        details = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                    "message": e.get("msg", "")} for e in exc.errors()]
        return _error(request, 422, "invalid_request", msg("请求格式错误：{problems}", problems="；".join(
            f"{d['field']} {d['message']}" for d in details)), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, _HTTP_CODES.get(exc.status_code, "error"),
                      exc.detail if isinstance(exc.detail, str) else str(exc.detail),
                      headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(request, 500, "internal_error", msg("系统内部错误，已记录，请联系管理员"))

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> Response:
        try:
            with request.app.state.sessions() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            log.exception("health check: database unreachable")
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    # Compressed on the way out: the diagram viewer is 186 KB as a file, 52 KB on the wire. Static files only:
    # pages carry a CSRF token next to reflected input, which compression would expose (BREACH).
    app.mount("/static", GZipMiddleware(StaticAssets(directory=HERE / "static"), minimum_size=1024), name="static")
    # pages last: its /tasks/{task_id} would otherwise take /tasks/batch and /tasks/views.
    for router in (api_auth.router, api_tasks.router, api_processes.router, api_students.router, api_schools.router,
                   api_imports.router, inbox_pages.router, import_pages.router, instance_pages.router,
                   transfer_pages.router, change_pages.router, api_releases.router, release_pages.router,
                   api_spot_checks.router, spot_check_pages.router, api_notifications.router,
                   notification_pages.router, lang_pages.router, roster_pages.router,
                   api_custom_reports.router, api_reports.router, report_pages.router, custom_report_pages.router,
                   dashboard_pages.router, api_process_admin.router, process_admin_pages.router,
                   pages.router):
        app.include_router(router)
    return app
