"""/reports: the Art. 12 reports on paper-like pages, the pupils behind each figure, a pupil's subsidy months."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import DbSession, RowId
from api.page_support import PageUser, check_csrf, render
from api.schemas import local_today
from registry import annual_cycle, report_submissions, reports, subsidy
from registry.access import holds, mask_id_number, may_see_full_id
from registry.code_tables import load_code_tables
from registry.county_policy import school_year_of
from registry.errors import RuleViolation, msg
from registry.org_units import OrgKind
from registry.students import get_student
from registry.users import Role, User

router = APIRouter(tags=["pages"])

FIRST_YEAR = 2011  # the plan began in autumn 2011
PAGE = 200


def _years(today: date) -> list[int]:
    return list(range(school_year_of(today), FIRST_YEAR - 1, -1))


def _int(value: str | None, low: int, high: int) -> int | None:
    """A query value as a number in range, else None: a hand-edited URL gets the default, not an error page."""
    return int(value) if value and value.isdigit() and low <= int(value) <= high else None


def _own_school(user: User) -> str | None:
    """The school of a user whose every grant is at one school: their report is that school's."""
    schools = {g.org_unit.code for g in user.grants if g.org_unit.kind == OrgKind.school}
    wider = any(g.org_unit.kind != OrgKind.school for g in user.grants)
    return next(iter(schools)) if len(schools) == 1 and not wider else None


def _calendar_year(school_year: int, month: int | None) -> int:
    """The pages pick a school year and a month in it; the reports take the calendar year of that month."""
    return school_year if month is None or month >= 9 else school_year + 1


def _may_submit(user: User, report: reports.Report) -> bool:
    return any(holds(user, role, report.unit) for role in (Role.school_registrar, Role.school_principal))


@router.get("/reports")
def reports_page(request: Request, session: DbSession, user: PageUser, year: str | None = None,
                 month: str | None = None, school: str | None = None) -> Response:
    today = local_today()
    chosen_year = _int(year, FIRST_YEAR, school_year_of(today) + 1) or school_year_of(today)
    chosen_month = _int(month, 1, 12)
    context: dict[str, Any] = {"user": user, "years": _years(today), "year": chosen_year, "month": chosen_month,
                               "figures": reports.FIGURES, "counted": reports.COUNTED, "codes": load_code_tables()}
    code = school or _own_school(user)
    if code:
        report = reports.school_report(session, actor=user, school_code=code,
                                       year=_calendar_year(chosen_year, chosen_month), month=chosen_month)
        context.update(report=report, row=report.school_json(), school_code=code,
                       may_submit=_may_submit(user, report) and chosen_month is None,
                       snapshots=report_submissions.history(session, unit=report.unit, year=chosen_year,
                                                            month=chosen_month),
                       due=report_submissions.due_for(session, unit=report.unit, year=chosen_year),
                       back=_own_school(user) is None)
        return render(request, "report_school.html", context)
    report = reports.county_report(session, actor=user, year=_calendar_year(chosen_year, chosen_month),
                                   month=chosen_month)
    submitted = ({s.unit.code: s for s in report_submissions.submissions(session, actor=user, year=chosen_year,
                                                                          report=report)}
                 if chosen_month is None else {})
    filed = (annual_cycle.filed_rosters(session, units=[s.school.org_unit for s in report.schools], year=chosen_year)
             if chosen_month is None else {})
    context.update(report=report, data=report.county_json(), submitted=submitted, filed=filed)
    return render(request, "report_county.html", context)


@router.post("/reports/submit")
def submit_report(request: Request, session: DbSession, user: PageUser,
                  csrf: Annotated[str, Form(alias="csrf_token")] = "", school: Annotated[str, Form()] = "",
                  year: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    chosen_year = _int(year, FIRST_YEAR, 2100)
    if chosen_year is None:
        raise RuleViolation(msg("学年有误"), details=[{"field": "year", "message": msg("学年有误")}])
    snapshot = report_submissions.submit_school_report(session, actor=user, school_code=school, year=chosen_year)
    session.commit()
    return RedirectResponse(f"/reports?school={school}&year={chosen_year}&submitted={snapshot.id}", status_code=303)


@router.get("/reports/students")
def figure_students_page(request: Request, session: DbSession, user: PageUser,
                         figure: str, year: str | None = None, month: str | None = None, school: str | None = None,
                         offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:
    today = local_today()
    chosen_year = _int(year, FIRST_YEAR, school_year_of(today) + 1) or school_year_of(today)
    chosen_month = _int(month, 1, 12)
    calendar_year = _calendar_year(chosen_year, chosen_month)
    if school:
        report = reports.school_report(session, actor=user, school_code=school, year=calendar_year, month=chosen_month)
    else:
        report = reports.county_report(session, actor=user, year=calendar_year, month=chosen_month)
    rows, total = reports.figure_students(session, report, figure, school_code=school, limit=PAGE, offset=offset)
    pupils = [{"student": s, "id_number": s.id_number if may_see_full_id(user, s.school)
               else mask_id_number(s.id_number)} for s in rows]
    return render(request, "report_students.html", {
        "user": user, "report": report, "figure": figure, "figure_label": reports.FIGURES[figure],
        "school": school, "year": chosen_year, "month": chosen_month, "pupils": pupils, "total": total,
        "offset": offset, "page": PAGE, "codes": load_code_tables()})


@router.get("/students/{student_id}/subsidy")
def student_subsidy_page(request: Request, student_id: RowId, session: DbSession, user: PageUser,
                         year: str | None = None) -> Response:
    student = get_student(session, actor=user, student_id=student_id)
    chosen_year = _int(year, FIRST_YEAR, 2100)
    result = subsidy.explain(session, student, year=chosen_year, today=local_today())
    return render(request, "student_subsidy.html", {
        "user": user, "student": student, "result": result, "year": chosen_year, "years": _years(local_today()),
        "codes": load_code_tables()})
