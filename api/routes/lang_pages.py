"""The language switch in the page header: remembers the choice in the `lang` cookie and goes back."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api import i18n
from registry.errors import NotFound, msg

router = APIRouter(include_in_schema=False)
ONE_YEAR = 365 * 24 * 3600


def _own_path(target: str | None) -> str:
    # Only our own paths: "//evil.example", "/\evil.example" (browsers read it as "//") and absolute URLs
    # would make the switch an open redirect.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/lang/{locale}")
def switch_language(request: Request, locale: str, next: str = "/") -> Response:
    if locale not in i18n.SUPPORTED:
        raise NotFound(msg("没有这种界面语言"))
    response = RedirectResponse(_own_path(next), status_code=303)
    response.set_cookie(i18n.COOKIE, locale, max_age=ONE_YEAR, path="/", samesite="lax", httponly=True,
                        secure=request.app.state.settings.env == "production")
    return response
