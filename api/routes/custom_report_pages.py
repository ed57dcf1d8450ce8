"""/reports/custom (the custom report builder, saved and shared definitions, XLSX) and /reports/external
(other departments' statistics beside the beneficiaries, Art. 18). A bad form comes back with its values
and the message next to the field, never an error page."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import MultiDict

from api.deps import DbSession, RowId
from api.page_support import PageUser, check_csrf, render
from api.routes.api_custom_reports import xlsx_response
from api.schemas import local_today
from registry import custom_reports, external_statistics, report_exports
from registry.access import holds, oversees
from registry.code_tables import load_code_tables
from registry.county_policy import county_of_user, school_year_of
from registry.errors import DomainError, RuleViolation, join_messages, msg
from registry.users import User

router = APIRouter(include_in_schema=False)

FIRST_YEAR = 2011  # the plan began in autumn 2011
SCHOOL_MONTHS = (9, 10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8)
DEFAULT_DIMENSIONS = ["school"]
DEFAULT_MEASURES = list(custom_reports.MEASURES)


def _years() -> list[int]:
    return list(range(school_year_of(local_today()), FIRST_YEAR - 1, -1))


def _form_state(params: MultiDict[str] | Any) -> dict[str, Any]:
    """What the form holds, as typed: kept as it is when it comes back with an error."""
    filters: dict[str, list[str]] = {}
    for name in custom_reports.DIMENSIONS:
        values = [v for v in params.getlist(f"f_{name}")]
        if name == "class":
            values = [p.strip() for v in values for p in v.replace("，", ",").replace("、", ",").split(",")]
        values = [v for v in values if v.strip() or (name in custom_reports.BLANK_LABELS and v == "")]
        if values:
            filters[name] = values
    return {"dimensions": params.getlist("d"), "measures": params.getlist("m"), "year": params.get("year", ""),
            "month": params.get("month", ""), "filters": filters}


def _definition(state: dict[str, Any]) -> custom_reports.ReportDefinition:
    """The form's school year and month (Sep … Aug) as a definition's calendar year and month."""
    problems = []
    year_text, month_text = str(state["year"]).strip(), str(state["month"]).strip()
    year = int(year_text) if year_text.isdigit() and len(year_text) == 4 else None
    if year is None:
        problems.append({"field": "year", "message": msg("学年：请选择学年")})
    month = int(month_text) if month_text.isdigit() and 1 <= int(month_text) <= 12 else None
    if month_text and month is None:
        problems.append({"field": "month", "message": msg("月份：应为 1 到 12")})
    if problems:
        raise RuleViolation(msg("报表定义有误"), details=problems)
    assert year is not None
    calendar_year = year if month is None or month >= 9 else year + 1
    return custom_reports.ReportDefinition.parse({**state, "year": calendar_year, "month": month})


def _state_of(saved: custom_reports.CustomReport) -> dict[str, Any]:
    data = saved.definition
    month = data.get("month")
    school_year = data["year"] if month is None or month >= 9 else data["year"] - 1
    return {"dimensions": data["dimensions"], "measures": data["measures"], "year": str(school_year),
            "month": str(month or ""), "filters": data.get("filters", {})}


def _options(session: DbSession, user: User, state: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """The values each filter offers: the caller's schools and townships, code tables, months of the year."""
    codes = load_code_tables()
    schools, townships = custom_reports.places(session, actor=user)
    options: dict[str, list[tuple[str, str]]] = {
        "school": [(s.code, s.name) for s in schools], "township": [(t.code, t.name) for t in townships],
        "grade": [(str(g), f"{g} 年级") for g in range(1, 10)],
        "allowance": list(custom_reports.ALLOWANCE_LABELS.items()),
    }
    for name, table in custom_reports.CODE_TABLES.items():
        options[name] = [(item.code, item.label) for item in codes.table(table)]
        if name in custom_reports.BLANK_LABELS:
            options[name].append(("", custom_reports.BLANK_LABELS[name]))
    year = int(state["year"]) if str(state["year"]).isdigit() else school_year_of(local_today())
    options["month"] = [(f"{year + (m < 9)}-{m:02d}", f"{year + (m < 9)}年{m}月") for m in SCHOOL_MONTHS]
    return options


def _builder(request: Request, session: DbSession, user: User, state: dict[str, Any], *,
             run: bool, saved: custom_reports.CustomReport | None = None, errors: dict[str, str] | None = None,
             save: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    errors = dict(errors or {})
    table = None
    if run and not errors:
        try:
            table = custom_reports.run(session, actor=user, definition=_definition(state))
        except RuleViolation as err:
            errors.update({d["field"]: d["message"] for d in err.details or []} or {"definition": err.message})
            status_code = 422
    query = request.url.query
    return render(request, "custom_report.html", {
        "user": user, "state": state, "table": table, "errors": errors, "saved": saved,
        "definitions": custom_reports.list_definitions(session, actor=user), "years": _years(),
        "dimensions": custom_reports.DIMENSIONS, "measures": custom_reports.MEASURES,
        "options": _options(session, user, state), "save": save or {"name": saved.name if saved else "",
                                                                     "shared": False},
        "export": None if table is None else f"/api/reports/custom/{saved.id}.xlsx" if saved is not None
        else f"/reports/custom.xlsx?{query}",
    }, status_code=status_code)


@router.get("/reports/custom")
def custom_report_page(request: Request, session: DbSession, user: PageUser) -> Response:
    params = request.query_params
    saved_id = params.get("saved", "")
    if saved_id.isdigit() and 0 < int(saved_id) < 2**31:
        saved = custom_reports.get_definition(session, actor=user, report_id=int(saved_id))
        return _builder(request, session, user, _state_of(saved), run=True, saved=saved)
    if "run" not in params:
        state = {"dimensions": DEFAULT_DIMENSIONS, "measures": DEFAULT_MEASURES,
                 "year": str(school_year_of(local_today())), "month": "", "filters": {}}
        return _builder(request, session, user, state, run=False)
    return _builder(request, session, user, _form_state(params), run=True)


@router.get("/reports/custom.xlsx")
def custom_report_export(request: Request, session: DbSession, user: PageUser) -> Response:
    state = _form_state(request.query_params)
    try:
        table = custom_reports.run(session, actor=user, definition=_definition(state))
    except RuleViolation:
        return _builder(request, session, user, state, run=True, status_code=422)
    return xlsx_response(report_exports.table_xlsx(table), report_exports.table_file_name(table),
                         "custom-report.xlsx")


async def _posted(request: Request) -> MultiDict[str]:
    """The form with its repeated fields (the checkboxes): read here, so the route runs off the event loop."""
    return MultiDict([(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)])


@router.post("/reports/custom")
def save_custom_report(request: Request, session: DbSession, user: PageUser,
                       form: Annotated[MultiDict[str], Depends(_posted)]) -> Response:
    check_csrf(request, str(form.get("csrf_token") or ""))
    state = _form_state(form)
    save = {"name": str(form.get("name") or ""), "shared": form.get("shared") == "1"}
    try:
        definition = _definition(state)
        saved = custom_reports.create_definition(session, actor=user, name=save["name"],
                                                 definition=definition.as_json(), shared=save["shared"])
    except RuleViolation as err:
        session.rollback()
        errors = {d["field"]: d["message"] for d in err.details or []} or {"name": err.message}
        return _builder(request, session, user, state, run=False, errors=errors, save=save, status_code=422)
    session.commit()
    return RedirectResponse(f"/reports/custom?saved={saved.id}&created=1", status_code=303)


@router.post("/reports/custom/{report_id}/delete")
def delete_custom_report_page(request: Request, report_id: RowId, session: DbSession, user: PageUser,
                              csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    custom_reports.delete_definition(session, actor=user, report_id=report_id)
    session.commit()
    return RedirectResponse("/reports/custom?deleted=1", status_code=303)


# Other departments' statistics ---------------------------------------------------------------------


def _external(request: Request, session: DbSession, user: User, year: int, *, error: str | None = None,
              imported: str | None = None, status_code: int = 200) -> Response:
    county = county_of_user(session, user)
    may_import = any(holds(user, role, county) for role in external_statistics.IMPORT_ROLES)
    tables = external_statistics.comparisons(session, actor=user, school_year=year) if oversees(user, county) else None
    return render(request, "external_statistics.html", {
        "user": user, "year": year, "years": _years(), "tables": tables, "may_import": may_import,
        "error": error, "imported": imported, "high": external_statistics.RATIO_HIGH,
        "low": external_statistics.RATIO_LOW}, status_code=status_code)


@router.get("/reports/external")
def external_statistics_page(request: Request, session: DbSession, user: PageUser,
                             year: str | None = None) -> Response:
    chosen = int(year) if year and year.isdigit() and FIRST_YEAR <= int(year) <= 2100 else None
    return _external(request, session, user, chosen or school_year_of(local_today()))


@router.post("/reports/external")
def import_external_statistics_page(request: Request, session: DbSession, user: PageUser,
                                    file: UploadFile | None = None, school_year: Annotated[str, Form()] = "",
                                    csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    year = int(school_year) if school_year.isdigit() and FIRST_YEAR <= int(school_year) <= 2100 else None
    shown = year or school_year_of(local_today())
    if year is None:
        return _external(request, session, user, shown, error="学年：请选择学年", status_code=422)
    if file is None or not file.filename:
        return _external(request, session, user, shown, error="文件：请选择按模板填写的 XLSX 文件", status_code=422)
    data = file.file.read(external_statistics.MAX_UPLOAD_BYTES + 1)
    try:
        result = external_statistics.import_statistics(session, actor=user, school_year=year, data=data)
    except DomainError as err:
        session.rollback()
        details = [d["message"] for d in err.details or [] if isinstance(d, dict) and "row" in d]
        message = err.message if not details else msg("文件有 {count} 处错误，未导入任何数据：{problems}",
                                                       count=len(details), problems=join_messages(details[:20]))
        return _external(request, session, user, shown, error=message, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/reports/external?year={year}&imported={result.rows}", status_code=303)
