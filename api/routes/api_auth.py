from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api import tokens
from api.deps import CurrentUser, DbSession, NotAuthenticated
from api.schemas import me_read
from registry.audit import record
from registry.errors import msg
from registry.users import authenticate

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/token")
def token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], session: DbSession) -> dict[str, str]:
    user = authenticate(session, username=form.username, password=form.password)
    if user is None:
        raise NotAuthenticated(msg("用户名或密码错误"))
    record(session, actor=user, action="auth.token", object_type="user", object_id=user.id)
    session.commit()
    return {"access_token": tokens.issue(request.app.state.secret, user.id), "token_type": "bearer"}


@router.get("/me")
def me(user: CurrentUser) -> dict[str, Any]:
    return me_read(user)
