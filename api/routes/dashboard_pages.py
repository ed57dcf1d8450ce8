"""/dashboard: charts of the school year for whoever oversees schools, each with its table for those who
would rather read (and for a page read with JavaScript off)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import DbSession
from api.page_support import PageUser, render
from api.routes.report_pages import FIRST_YEAR, _int, _years
from api.schemas import local_today
from registry import dashboard
from registry.county_policy import school_year_of

router = APIRouter(tags=["pages"])


@router.get("/dashboard")
def dashboard_page(request: Request, session: DbSession, user: PageUser, year: str | None = None) -> Response:
    today = local_today()
    chosen = _int(year, FIRST_YEAR, school_year_of(today) + 1) or school_year_of(today)
    charts = dashboard.dashboard(session, actor=user, year=chosen)
    return render(request, "dashboard.html", {"user": user, "year": chosen, "years": _years(today), "month": None,
                                              "charts": charts, "charts_json": [c.as_json() for c in charts]})
