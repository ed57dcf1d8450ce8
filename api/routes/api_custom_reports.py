"""Custom reports, XLSX exports of the Art. 12 reports, other departments' statistics (Art. 12, 18) as JSON.

Included before api_reports: /api/reports/school/{code}.xlsx would otherwise be read as a school code.
"""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Form, Query, Response, UploadFile

from api.deps import CurrentUser, DbSession, RowId
from registry import custom_reports, external_statistics, report_exports, reports
from registry.errors import RuleViolation, msg

router = APIRouter(prefix="/api", tags=["reports"])

Year = Annotated[int, Query(ge=2000, le=2100, description="the school year from September, or with month a calendar year")]
Month = Annotated[int | None, Query(ge=1, le=12)]
OptionalYear = Annotated[int | None, Query(ge=2000, le=2100)]
EXAMPLE = {"dimensions": ["school", "month"], "measures": ["students_total", "beneficiaries", "subsidy_total"],
           "filters": {"sex": ["2"]}, "year": 2025, "month": None}


def xlsx_response(data: bytes, name: str, fallback: str) -> Response:
    # filename* (RFC 5987) carries the Chinese name; the plain one is for clients that ignore it.
    return Response(data, media_type=report_exports.XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store"})


def _saved_fields(body: dict[str, Any]) -> tuple[Any, Any, Any]:
    shared = body.get("shared")
    if shared is not None and not isinstance(shared, bool):
        raise RuleViolation(msg("共享：应为 true 或 false"), details=[{"field": "shared", "message": msg("应为 true 或 false")}])
    return body.get("name"), body.get("definition"), shared


@router.post("/reports/custom/run")
def run_custom_report(session: DbSession, user: CurrentUser,
                      body: Annotated[dict[str, Any], Body(examples=[EXAMPLE])]) -> dict[str, Any]:
    definition = custom_reports.ReportDefinition.parse(body)
    return custom_reports.run(session, actor=user, definition=definition).as_json()


@router.get("/reports/custom")
def list_custom_reports(session: DbSession, user: CurrentUser) -> dict[str, Any]:
    rows = custom_reports.list_definitions(session, actor=user)
    return {"items": [r.as_json(user) for r in rows], "total": len(rows)}


@router.post("/reports/custom", status_code=201)
def create_custom_report(session: DbSession, user: CurrentUser, body: Annotated[dict[str, Any], Body(
        examples=[{"name": "各校按月受益人数", "shared": True, "definition": EXAMPLE}])]) -> dict[str, Any]:
    name, definition, shared = _saved_fields(body)
    saved = custom_reports.create_definition(session, actor=user, name=name, definition=definition,
                                             shared=bool(shared))
    session.commit()
    return saved.as_json(user)


@router.get("/reports/custom/{report_id}.xlsx")
def custom_report_xlsx(report_id: RowId, session: DbSession, user: CurrentUser, year: OptionalYear = None,
                       month: Month = None) -> Response:
    saved, table = custom_reports.run_saved(session, actor=user, report_id=report_id, year=year, month=month)
    return xlsx_response(report_exports.table_xlsx(table), report_exports.table_file_name(table, saved.name),
                         f"custom-report-{saved.id}.xlsx")


@router.get("/reports/custom/{report_id}/result")
def custom_report_result(report_id: RowId, session: DbSession, user: CurrentUser, year: OptionalYear = None,
                         month: Month = None) -> dict[str, Any]:
    saved, table = custom_reports.run_saved(session, actor=user, report_id=report_id, year=year, month=month)
    return {**table.as_json(), "report": saved.as_json(user)}


@router.get("/reports/custom/{report_id}")
def get_custom_report(report_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    return custom_reports.get_definition(session, actor=user, report_id=report_id).as_json(user)


@router.put("/reports/custom/{report_id}")
def update_custom_report(report_id: RowId, session: DbSession, user: CurrentUser,
                         body: Annotated[dict[str, Any], Body(examples=[{"name": "新名称", "shared": False}])]
                         ) -> dict[str, Any]:
    name, definition, shared = _saved_fields(body)
    saved = custom_reports.update_definition(session, actor=user, report_id=report_id, name=name,
                                             definition=definition, shared=shared)
    session.commit()
    return saved.as_json(user)


@router.delete("/reports/custom/{report_id}", status_code=204)
def delete_custom_report(report_id: RowId, session: DbSession, user: CurrentUser) -> Response:
    custom_reports.delete_definition(session, actor=user, report_id=report_id)
    session.commit()
    return Response(status_code=204)


@router.get("/reports/school/{school_code}.xlsx")
def school_report_xlsx(school_code: str, session: DbSession, user: CurrentUser, year: Year,
                       month: Month = None) -> Response:
    report = reports.school_report(session, actor=user, school_code=school_code, year=year, month=month)
    return xlsx_response(report_exports.report_xlsx(report), report_exports.report_file_name(report),
                         f"report-{report.unit.code}-{year}{f'-{month:02d}' if month else ''}.xlsx")


@router.get("/reports/county.xlsx")
def county_report_xlsx(session: DbSession, user: CurrentUser, year: Year, month: Month = None) -> Response:
    report = reports.county_report(session, actor=user, year=year, month=month)
    return xlsx_response(report_exports.report_xlsx(report), report_exports.report_file_name(report),
                         f"report-{report.unit.code}-{year}{f'-{month:02d}' if month else ''}.xlsx")


@router.post("/external-statistics", status_code=201)
def import_external_statistics(session: DbSession, user: CurrentUser, file: UploadFile,
                               school_year: Annotated[int, Form(ge=2000, le=2100)]) -> dict[str, Any]:
    # One byte past the limit is enough to refuse an oversize file without holding all of it.
    data = file.file.read(external_statistics.MAX_UPLOAD_BYTES + 1)
    result = external_statistics.import_statistics(session, actor=user, school_year=school_year, data=data)
    session.commit()
    return {"school_year": result.school_year, "rows": result.rows, "indicators": result.indicators,
            "replaced": result.replaced}


@router.get("/external-statistics/template.xlsx")
def external_statistics_template(session: DbSession, user: CurrentUser) -> Response:
    return xlsx_response(external_statistics.template(session, actor=user), "外部统计数据导入模板.xlsx",
                         "external-statistics-template.xlsx")


@router.get("/external-statistics")
def external_statistics_comparison(session: DbSession, user: CurrentUser, year: Year) -> dict[str, Any]:
    rows = external_statistics.comparisons(session, actor=user, school_year=year)
    return {"school_year": year, "thresholds": {"high": float(external_statistics.RATIO_HIGH),
                                                 "low": float(external_statistics.RATIO_LOW)},
            "items": [c.as_json() for c in rows], "total": len(rows)}
