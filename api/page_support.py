"""What every server-rendered page route needs: the signed-in user, rendering with a CSRF token,
the CSRF check, and a form read off the event loop."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from api.deps import NotAuthenticated, csrf_ok, csrf_token, optional_user
from api.templating import templates
from registry.errors import PermissionDenied, msg
from registry.users import User


def page_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    # Not signed in: the 401 handler sends a page request to /login?next=… (api/app.py).
    if user is None:
        raise NotAuthenticated()
    return user


PageUser = Annotated[User, Depends(page_user)]


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    context.setdefault("csrf_token", csrf_token(request))
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def check_csrf(request: Request, token: str | None) -> None:
    if not csrf_ok(request, token):
        raise PermissionDenied(msg("表单已过期或来源不明（CSRF 校验失败），请刷新页面后重新提交"))


async def posted_fields(request: Request) -> dict[str, str]:
    """A form whose fields come from a JSON Schema: read it here, so the route itself runs off the event loop."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


PostedFields = Annotated[dict[str, str], Depends(posted_fields)]


async def posted_uploads(request: Request) -> dict[str, list[tuple[str, bytes]]]:
    """The files a form sent, by field name (only a form with a file field is multipart)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return {}
    uploads: dict[str, list[tuple[str, bytes]]] = {}
    for name, value in (await request.form()).multi_items():
        if isinstance(value, UploadFile):
            if value.filename:
                uploads.setdefault(name, []).append((value.filename, await value.read()))
            await value.close()  # read whole: the spooled temporary file is done with
    return uploads


PostedUploads = Annotated[dict[str, list[tuple[str, bytes]]], Depends(posted_uploads)]
