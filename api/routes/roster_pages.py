"""The beneficiary roster (受益学生花名册, Art. 16) of a school: a print-styled page and its PDF."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import AppSettings, DbSession
from api.page_support import PageUser, render
from registry import rosters

router = APIRouter(include_in_schema=False)

Year = Annotated[int | None, Query(ge=2000, le=2100, description="school year: September of this year on")]
Month = Annotated[int | None, Query(ge=1, le=12)]
# "class" in the URL; the form's 全部班级 sends it empty.
ClassName = Annotated[str, Query(alias="class", max_length=40)]


@router.get("/schools/{code}/roster")
def roster_page(request: Request, code: str, session: DbSession, user: PageUser, year: Year = None,
                month: Month = None, class_name: ClassName = "") -> Response:
    roster = rosters.roster(session, actor=user, school_code=code, year=year, month=month,
                            class_name=class_name or None, medium="html")
    session.commit()
    return render(request, "roster.html", {"user": user, "roster": roster,
                                           "years": sorted({roster.school_year, *rosters.recent_school_years()},
                                                           reverse=True)})


@router.get("/schools/{code}/roster.pdf")
def roster_pdf(code: str, session: DbSession, user: PageUser, settings: AppSettings, year: Year = None,
               month: Month = None, class_name: ClassName = "") -> Response:
    roster = rosters.roster(session, actor=user, school_code=code, year=year, month=month,
                            class_name=class_name or None, medium="pdf")
    pdf = rosters.roster_pdf(roster, font=settings.pdf_font)
    session.commit()
    # filename* (RFC 5987) carries the Chinese name; the plain one is for clients that ignore it.
    fallback = f"roster-{roster.school.code}-{roster.month}.pdf"
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(roster.file_name)}",
        "Cache-Control": "no-store"})
