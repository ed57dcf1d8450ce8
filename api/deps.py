"""Request dependencies: the unit-of-work session, the caller, CSRF."""

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from sqlalchemy.orm import Session

from api import tokens
from registry.errors import NotFound, msg
from registry.settings import Settings
from registry.users import User, get_user

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# Row ids are PostgreSQL `integer`: a larger number in a URL is refused as invalid (422), never a database error.
MAX_ID = 2_147_483_647
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="row id")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


def get_session(request: Request) -> Iterator[Session]:
    # The route owns the transaction: it commits; anything not committed is rolled back here.
    with request.app.state.sessions() as session:
        # The page header's unread count (api/templating.py) reads with the request's own session.
        request.state.db = session
        yield session


DbSession = Annotated[Session, Depends(get_session)]


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(get_settings_dep)]


class NotAuthenticated(HTTPException):
    def __init__(self, message: str = msg("未登录或登录已过期")) -> None:
        super().__init__(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and submitted and secrets.compare_digest(expected, submitted))


def _user_id(request: Request, settings: Settings) -> int | None:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated(msg("Authorization 头格式应为 Bearer <token>"))
        uid = tokens.read(request.app.state.secret, token.strip(), max_age=settings.token_max_age_seconds)
        if uid is None:
            raise NotAuthenticated(msg("令牌无效或已过期"))
        return uid
    uid = request.session.get("uid")
    if uid is not None and request.method in UNSAFE_METHODS and request.url.path.startswith("/api/"):
        # A cookie rides along on cross-site requests; an API write by cookie must prove it came from our page.
        if not csrf_ok(request, request.headers.get("x-csrf-token")):
            raise HTTPException(status_code=403, detail="缺少或错误的 CSRF 令牌")
    return uid


def current_user(request: Request, session: DbSession, settings: AppSettings) -> User:
    uid = _user_id(request, settings)
    if uid is None:
        raise NotAuthenticated()
    try:
        return get_user(session, user_id=uid)
    except NotFound:
        raise NotAuthenticated(msg("用户不存在或已停用")) from None


CurrentUser = Annotated[User, Depends(current_user)]


def optional_user(request: Request, session: DbSession) -> User | None:
    uid = request.session.get("uid")
    if uid is None:
        return None
    try:
        return get_user(session, user_id=uid)
    except NotFound:
        request.session.clear()
        return None
