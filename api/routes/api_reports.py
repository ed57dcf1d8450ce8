"""The Art. 12 reports and the subsidy as JSON (DESIGN.md "Contracts": /api/reports/…, /api/students/{id}/subsidy)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from api.deps import CurrentUser, DbSession, Offset
from api.schemas import local_today
from registry import report_submissions, reports, subsidy
from registry.access import mask_id_number, may_see_full_id
from registry.county_policy import county_of_user
from registry.errors import RuleViolation, join_messages, msg
from registry.students import Student

router = APIRouter(prefix="/api", tags=["reports"])

Year = Annotated[int, Query(ge=2000, le=2100, description="the school year from September, or with month a calendar year")]
Month = Annotated[int | None, Query(ge=1, le=12)]
Figure = Annotated[str, Query(description="one of " + ", ".join(reports.COUNTED))]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _pupil(student: Student, user: Any) -> dict[str, Any]:
    full = may_see_full_id(user, student.school)
    return {"id": student.id, "name": student.name, "sex": student.sex, "school_code": student.school.code,
            "school_name": student.school.name, "grade": student.grade, "class_name": student.class_name,
            "id_number": student.id_number if full else mask_id_number(student.id_number),
            "boarding_mode": student.boarding_mode, "boarding_allowance": student.boarding_allowance,
            "status": student.status}


@router.get("/reports/school/{school_code}")
def school_report(school_code: str, session: DbSession, user: CurrentUser, year: Year,
                  month: Month = None) -> dict[str, Any]:
    report = reports.school_report(session, actor=user, school_code=school_code, year=year, month=month)
    submitted = report_submissions.latest(session, unit=report.unit, year=year, month=month)
    return {**report.school_json(), "submitted": submitted.as_json() if submitted else None}


@router.get("/reports/school/{school_code}/students")
def school_figure_students(school_code: str, session: DbSession, user: CurrentUser, year: Year, figure: Figure,
                           month: Month = None, limit: Limit = 200, offset: Offset = 0) -> dict[str, Any]:
    report = reports.school_report(session, actor=user, school_code=school_code, year=year, month=month)
    rows, total = reports.figure_students(session, report, figure, school_code=school_code, limit=limit,
                                          offset=offset)
    return {"items": [_pupil(s, user) for s in rows], "total": total}


@router.post("/reports/school/{school_code}/submit", status_code=201)
def submit_school_report(school_code: str, session: DbSession, user: CurrentUser,
                         body: Annotated[dict[str, Any], Body(examples=[{"year": 2026}])]) -> dict[str, Any]:
    year, month = body.get("year"), body.get("month")
    problems = []
    if not (isinstance(year, int) and 2000 <= year <= 2100):
        problems.append({"field": "year", "message": msg("年份应为 2000 到 2100 的整数")})
    if month is not None and not (isinstance(month, int) and 1 <= month <= 12):
        problems.append({"field": "month", "message": msg("月份应为 1 到 12 的整数")})
    if problems:
        raise RuleViolation(msg("上报内容有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    snapshot = report_submissions.submit_school_report(session, actor=user, school_code=school_code, year=year,
                                                       month=month)
    session.commit()
    return snapshot.as_json()


@router.get("/reports/county")
def county_report(session: DbSession, user: CurrentUser, year: Year, month: Month = None) -> dict[str, Any]:
    return reports.county_report(session, actor=user, year=year, month=month).county_json()


@router.get("/reports/county/students")
def county_figure_students(session: DbSession, user: CurrentUser, year: Year, figure: Figure, month: Month = None,
                           school_code: str | None = None, limit: Limit = 200,
                           offset: Offset = 0) -> dict[str, Any]:
    report = reports.county_report(session, actor=user, year=year, month=month)
    rows, total = reports.figure_students(session, report, figure, school_code=school_code, limit=limit,
                                          offset=offset)
    return {"items": [_pupil(s, user) for s in rows], "total": total}


@router.get("/reports/submissions")
def submissions(session: DbSession, user: CurrentUser, year: Year) -> dict[str, Any]:
    rows = report_submissions.submissions(session, actor=user, year=year)
    return {"items": [r.as_json() for r in rows], "total": len(rows)}


@router.get("/students/{student_id}/subsidy")
def student_subsidy(student_id: int, session: DbSession, user: CurrentUser,
                    year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> dict[str, Any]:
    result = subsidy.student_subsidy(session, actor=user, student_id=student_id, year=year, today=local_today())
    return subsidy.subsidy_json(result)


@router.get("/subsidy/rates")
def rates(session: DbSession, user: CurrentUser) -> dict[str, Any]:
    county = county_of_user(session, user)
    rows = subsidy.rates_of(session, county)
    return {"items": [subsidy.rate_json(r) for r in rows], "total": len(rows)}


@router.post("/subsidy/rates", status_code=201)
def set_rate(session: DbSession, user: CurrentUser,
             body: Annotated[dict[str, Any], Body(examples=[{"kind": "topup", "effective_month": "2026-09",
                                                            "per_day": "1.00", "days_per_year": 200}])]) -> dict[str, Any]:
    county = county_of_user(session, user)
    row = subsidy.set_county_rate(session, actor=user, county=county, kind=str(body.get("kind")),
                                  effective_month=body.get("effective_month"), per_day=str(body.get("per_day")),
                                  days_per_year=body.get("days_per_year"), note=body.get("note"))
    session.commit()
    return subsidy.rate_json(row)


@router.put("/subsidy/calendar/{year}")
def set_calendar(year: int, session: DbSession, user: CurrentUser,
                 days: Annotated[dict[str, Any], Body(examples=[{"2026-09": 21, "2026-10": 16}])]) -> dict[str, Any]:
    county = county_of_user(session, user)
    subsidy.set_school_calendar(session, actor=user, county=county, year=year, days=days)
    session.commit()
    return {"year": year, "days": subsidy.calendar_of(session, county, year)}
