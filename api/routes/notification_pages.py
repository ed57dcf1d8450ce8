"""The bell's page (in-app notifications), notification preferences, county_admin's outbox and
working-day calendar, and moving a task's due date from its task page."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import DbSession, RowId
from api.page_support import PageUser, check_csrf, render
from api.routes.pages import _task_context
from registry import notifications, reminders, working_days
from registry.errors import PermissionDenied, RuleViolation, msg
from registry.notifications import OutboxView, Preferences
from registry.org_units import OrgKind, OrgUnit
from registry.users import Role, User

router = APIRouter(include_in_schema=False)
PAGE_SIZE = notifications.PAGE_SIZE


def _page(page: int) -> int:
    return max(page, 1)


@router.get("/notifications")
def notifications_page(request: Request, session: DbSession, user: PageUser, unread: bool = False,
                       page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    rows, total = notifications.list_mine(session, actor=user, unread_only=unread, limit=PAGE_SIZE,
                                          offset=(_page(page) - 1) * PAGE_SIZE)
    return render(request, "notifications.html", {
        "user": user, "items": rows, "total": total, "unread": unread, "page": page,
        "pages": -(-total // PAGE_SIZE), "kinds": notifications.KIND_LABELS,
        "is_admin": notifications.may_read_outbox(user)})


@router.post("/notifications/read-all")
def read_all(request: Request, session: DbSession, user: PageUser,
             csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    notifications.mark_all_read(session, actor=user)
    session.commit()
    return RedirectResponse("/notifications", status_code=303)


@router.post("/notifications/{notification_id}/read")
def read_one(request: Request, notification_id: RowId, session: DbSession, user: PageUser,
             csrf: Annotated[str, Form(alias="csrf_token")] = "", go: Annotated[str, Form(max_length=300)] = "") -> Response:
    check_csrf(request, csrf)
    row = notifications.mark_read(session, actor=user, notification_id=notification_id)
    session.commit()
    # "查看" marks it read and opens what it is about; only our own paths.
    target = row.link if go and row.link and row.link.startswith("/") and not row.link.startswith("//") else "/notifications"
    return RedirectResponse(target, status_code=303)


def _preferences_page(request: Request, user: User, preferences: Preferences, *, errors: dict[str, str] | None = None,
                      message: str | None = None, saved: bool = False, status_code: int = 200) -> Response:
    return render(request, "notification_preferences.html", {
        "user": user, "prefs": preferences, "errors": errors or {}, "message": message, "saved": saved,
        "channels": notifications.CHANNEL_LABELS}, status_code=status_code)


@router.get("/notifications/preferences")
def preferences_page(request: Request, session: DbSession, user: PageUser) -> Response:
    return _preferences_page(request, user, notifications.preferences_of(session, user_id=user.id),
                             saved=request.query_params.get("saved") == "1")


@router.post("/notifications/preferences")
def preferences_save(request: Request, session: DbSession, user: PageUser,
                     csrf: Annotated[str, Form(alias="csrf_token")] = "",
                     in_app: Annotated[str, Form()] = "", email: Annotated[str, Form()] = "",
                     email_address: Annotated[str, Form(max_length=254)] = "", webhook: Annotated[str, Form()] = "",
                     webhook_url: Annotated[str, Form(max_length=500)] = "", digest: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    wanted = Preferences(in_app=bool(in_app), email=bool(email), email_address=email_address.strip() or None,
                         webhook=bool(webhook), webhook_url=webhook_url.strip() or None, digest=bool(digest))
    try:
        notifications.update_preferences(session, actor=user, preferences=wanted)
    except RuleViolation as err:
        session.rollback()
        errors = {d["field"]: d["message"] for d in err.details or [] if isinstance(d, dict)}
        return _preferences_page(request, user, wanted, errors=errors, message=err.message, status_code=422)
    session.commit()
    return RedirectResponse("/notifications/preferences?saved=1", status_code=303)


@router.get("/notifications/outbox")
def outbox_page(request: Request, session: DbSession, user: PageUser, view: OutboxView = OutboxView.outbox,
                page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    rows, total = notifications.outbox(session, actor=user, view=view, limit=PAGE_SIZE,
                                       offset=(_page(page) - 1) * PAGE_SIZE)
    return render(request, "notification_outbox.html", {
        "user": user, "rows": rows, "total": total, "view": view, "page": page, "pages": -(-total // PAGE_SIZE),
        "failed": notifications.failed_count(session, actor=user), "statuses": notifications.STATUS_LABELS,
        "channels": notifications.CHANNEL_LABELS, "kinds": notifications.KIND_LABELS,
        "reminder_errors": reminders.reminder_errors(session, actor=user),
        "smtp": bool(request.app.state.settings.smtp_host)})


@router.post("/notifications/{notification_id}/retry")
def retry_page(request: Request, notification_id: RowId, session: DbSession, user: PageUser,
               csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    notifications.retry(session, actor=user, notification_id=notification_id)
    session.commit()
    return RedirectResponse("/notifications/outbox?view=failed", status_code=303)


# --- the county's working-day calendar ---------------------------------------------------------------

def _county(user: User) -> OrgUnit:
    for grant in user.grants:
        if grant.role == Role.county_admin and grant.org_unit.kind == OrgKind.county:
            return grant.org_unit
    raise PermissionDenied(msg("只有县教育局系统管理员可以维护工作日历"))


def _calendar_page(request: Request, session: DbSession, user: User, *, message: str | None = None,
                   status_code: int = 200) -> Response:
    county = _county(user)
    days, years = working_days.county_days(session, actor=user, county=county)
    return render(request, "work_calendar.html", {"user": user, "county": county, "days": days, "years": years,
                                                   "message": message}, status_code=status_code)


@router.get("/calendar")
def calendar_page(request: Request, session: DbSession, user: PageUser) -> Response:
    return _calendar_page(request, session, user)


@router.post("/calendar")
def calendar_add(request: Request, session: DbSession, user: PageUser,
                 csrf: Annotated[str, Form(alias="csrf_token")] = "", day: Annotated[str, Form(max_length=10)] = "",
                 working: Annotated[str, Form()] = "", note: Annotated[str, Form(max_length=100)] = "",
                 year: Annotated[str, Form(max_length=4)] = "") -> Response:
    check_csrf(request, csrf)
    county = _county(user)
    try:
        if year:
            if not year.isdigit():
                raise RuleViolation(msg("年份：应为四位数字"), details=[{"field": "year", "message": msg("年份无效")}])
            working_days.declare_year(session, actor=user, county=county, year=int(year), note=note)
        else:
            try:
                parsed = date.fromisoformat(day)
            except ValueError:
                raise RuleViolation(msg("日期：请按 2026-10-08 的格式填写"),
                                    details=[{"field": "day", "message": msg("日期无效")}]) from None
            working_days.set_day(session, actor=user, county=county, day=parsed, working=working == "1", note=note)
    except RuleViolation as err:
        session.rollback()
        return _calendar_page(request, session, user, message=err.message, status_code=err.status)
    session.commit()
    return RedirectResponse("/calendar", status_code=303)


@router.post("/calendar/{day_id}/delete")
def calendar_remove(request: Request, day_id: RowId, session: DbSession, user: PageUser,
                    csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    county = _county(user)
    working_days.remove_day(session, actor=user, county=county, day_id=day_id)
    session.commit()
    return RedirectResponse("/calendar", status_code=303)


# --- a task's due date ---------------------------------------------------------------------------------

@router.post("/tasks/{task_id}/due")
def task_due(request: Request, task_id: RowId, session: DbSession, user: PageUser,
             csrf: Annotated[str, Form(alias="csrf_token")] = "", due_date: Annotated[str, Form(max_length=10)] = "",
             reason: Annotated[str, Form(max_length=200)] = "") -> Response:
    check_csrf(request, csrf)
    try:
        try:
            due_on = date.fromisoformat(due_date)
        except ValueError:
            raise RuleViolation(msg("新的截止日期：请选择日期"), details=[{"field": "due_date", "message": msg("日期无效")}]) from None
        reminders.change_due_date(session, actor=user, task_id=task_id, due_on=due_on, reason=reason)
    except RuleViolation as err:
        session.rollback()
        context = _task_context(session, user, task_id)
        context["due_error"] = err.message
        return render(request, "task.html", context, status_code=422)
    session.commit()
    return RedirectResponse(f"/tasks/{task_id}?due_changed=1", status_code=303)
