"""The process administrator's pages (/processes): processes and their versions, the modeler, the
difference between two versions, migrating running instances, and operating instances."""

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from api import i18n
from api.deps import DbSession, RowId
from api.page_support import PageUser, check_csrf, render
from registry import diagrams, process_admin
from registry.errors import DomainError, NotFound, PermissionDenied, RuleViolation
from registry.users import ROLE_LABELS, User
from registry.workflows import InstanceStatus

router = APIRouter(include_in_schema=False)

Csrf = Annotated[str, Form(alias="csrf_token")]
PAGE = 50
Reason = Annotated[str, Form(max_length=process_admin.MAX_NOTE)]

def _json(value: Any) -> Markup:
    """JSON for a <script type="application/json"> block: `<` escaped so no `</script>` can end it."""
    return Markup(json.dumps(value, ensure_ascii=False).replace("<", "\\u003c"))


def _labels() -> dict[str, Any]:
    return {"status_labels": {str(k): v for k, v in process_admin.STATUS_LABELS.items()},
            "role_labels": {str(k): v for k, v in ROLE_LABELS.items()}, "action_labels": process_admin.ACTION_LABELS}


@router.get("/processes")
def processes_page(request: Request, session: DbSession, user: PageUser) -> Response:
    found = process_admin.list_processes(session, actor=user)
    _, errors = process_admin.list_instances(
        session, actor=user, where=process_admin.InstanceFilter(status=InstanceStatus.error), limit=1)
    starting = {p.process_id: process_admin.starting_role_of(session, process_id=p.process_id) for p in found}
    return render(request, "processes.html", {"user": user, "processes": found, "errors": errors,
                                              "may_edit": process_admin.is_process_admin(user),
                                              "starting_roles": starting, **_labels()})


def _modeler(request: Request, session: DbSession, user: User, *, process_id: str | None, bpmn: str,
             base_version: int | None) -> Response:
    if not process_admin.is_process_admin(user):
        raise PermissionDenied("只有流程管理员可以编辑流程")
    forms = process_admin.form_files(session)
    setup = {"process_id": process_id, "base_version": base_version, "bpmn": bpmn,
             "forms": forms, "roles": {str(k): v for k, v in ROLE_LABELS.items()}}
    return render(request, "process_modeler.html", {"user": user, "process_id": process_id,
                                                    "base_version": base_version, "setup": _json(setup)})


@router.get("/processes/new")
def new_process_page(request: Request, session: DbSession, user: PageUser) -> Response:
    return _modeler(request, session, user, process_id=None, bpmn=process_admin.NEW_PROCESS_TEMPLATE,
                    base_version=None)


@router.get("/processes/instances")
def instances_page(request: Request, session: DbSession, user: PageUser, offset: Annotated[int, Query(ge=0)] = 0,
                   process_id: Annotated[str, Query(max_length=80)] = "",
                   version: Annotated[str, Query(max_length=10)] = "",
                   status: Annotated[str, Query(max_length=20)] = "",
                   org_unit: Annotated[str, Query(max_length=100)] = "",
                   older_than_days: Annotated[str, Query(max_length=10)] = "") -> Response:
    errors: dict[str, str] = {}
    if status and status not in process_admin.STATUS_LABELS:
        errors["status"], status = "未知状态", ""
    for name, raw in (("version", version), ("older_than_days", older_than_days)):
        if raw.strip() and not raw.strip().isdigit():
            errors[name] = "请填写整数"
    where = process_admin.InstanceFilter(
        process_id=process_id or None, status=status or None, org_unit=org_unit.strip() or None,
        version=int(version) if version.strip().isdigit() and "version" not in errors else None,
        older_than_days=int(older_than_days) if older_than_days.strip().isdigit() else None)
    rows, total = process_admin.list_instances(session, actor=user, where=where, offset=offset, limit=PAGE)
    kept = {k: v for k, v in request.query_params.items() if k != "offset"}

    def page(at: int) -> str:
        return "/processes/instances?" + urlencode({**kept, "offset": at})
    return render(request, "processes_instances.html", {
        "user": user, "rows": rows, "total": total,
        "prev_url": page(max(offset - PAGE, 0)) if offset > 0 else None,
        "next_url": page(offset + PAGE) if offset + PAGE < total else None,
        "errors_by_instance": process_admin.last_errors(session, [r.id for r in rows if r.status == "error"]),
        "filters": {"process_id": process_id, "version": version, "status": status, "org_unit": org_unit,
                    "older_than_days": older_than_days}, "field_errors": errors,
        "processes": process_admin.list_processes(session, actor=user), **_labels()})


def _instance_context(session: DbSession, user: User, instance_id: int, *, message: str | None = None,
                      error: str | None = None, reason: str = "") -> dict[str, Any]:
    detail = process_admin.instance_detail(session, actor=user, instance_id=instance_id)
    return {"user": user, "detail": detail, "instance": detail.instance,
            "progress": diagrams.progress_of(session, detail.instance),
            "data_json": json.dumps(detail.data, ensure_ascii=False, indent=2, sort_keys=True, default=str),
            "is_process_admin": process_admin.is_process_admin(user), "message": message, "error": error,
            "reason": reason, **_labels()}


@router.get("/processes/instances/{instance_id}")
def instance_admin_page(request: Request, instance_id: RowId, session: DbSession, user: PageUser) -> Response:
    done = request.query_params.get("done", "")
    messages = {"suspend": "已暂停。", "resume": "已恢复。", "cancel": "已取消。", "retry": "已重试。",
                "migrate": "已迁移到新版本。", "retry-failed": "重试后仍然出错，见下方错误信息。"}
    if done == "retry-failed":
        return render(request, "process_instance.html",
                      _instance_context(session, user, instance_id, error=messages[done]))
    return render(request, "process_instance.html",
                  _instance_context(session, user, instance_id, message=messages.get(done)))


@router.post("/processes/instances/{instance_id}/{operation}")
def operate_page(request: Request, instance_id: RowId, operation: str, session: DbSession, user: PageUser,
                 csrf: Csrf = "", reason: Reason = "", to_version: Annotated[str, Form(max_length=10)] = "") -> Response:
    check_csrf(request, csrf)
    done = operation
    try:
        if operation == "suspend":
            process_admin.suspend(session, actor=user, instance_id=instance_id, reason=reason)
        elif operation == "resume":
            process_admin.resume(session, actor=user, instance_id=instance_id, reason=reason)
        elif operation == "cancel":
            process_admin.cancel(session, actor=user, instance_id=instance_id, reason=reason)
        elif operation == "retry":
            if process_admin.retry(session, actor=user, instance_id=instance_id).status == InstanceStatus.error:
                done = "retry-failed"
        elif operation == "migrate":
            if not to_version.isdigit():
                raise RuleViolation("目标版本：请选择", details=[{"field": "to_version", "message": "必填"}])
            detail = process_admin.instance_detail(session, actor=user, instance_id=instance_id)
            (outcome,) = process_admin.migrate_instances(
                session, actor=user, process_id=detail.instance.process_id, to_version=int(to_version),
                instance_ids=[instance_id]) or [None]
            if outcome is None or not outcome.movable:
                reasons = "；".join(b.message for b in outcome.blockers) if outcome else "实例不在旧版本上"
                raise RuleViolation(f"不能迁移：{reasons}", details=[{"field": "to_version", "message": reasons}])
        else:
            raise NotFound(f"没有操作 {operation}")
    except DomainError as err:
        session.rollback()
        return render(request, "process_instance.html",
                      _instance_context(session, user, instance_id, error=err.message, reason=reason),
                      status_code=err.status)
    session.commit()
    return RedirectResponse(f"/processes/instances/{instance_id}?done={done}", status_code=303)


def _versions_context(request: Request, session: DbSession, user: User, process_id: str, *,
                      error: str | None = None) -> dict[str, Any]:
    rows = process_admin.list_versions(session, actor=user, process_id=process_id)
    in_use = [r.version for r in rows if r.version.retired_at is None]
    return {"user": user, "process_id": process_id, "rows": rows, "latest": in_use[0] if in_use else rows[0].version,
            "in_use": len(in_use), "may_edit": process_admin.is_process_admin(user),
            "deployed": request.query_params.get("deployed"), "error": error, **_labels()}


@router.get("/processes/{process_id}")
def versions_page(request: Request, process_id: str, session: DbSession, user: PageUser) -> Response:
    return render(request, "process_versions.html", _versions_context(request, session, user, process_id))


@router.post("/processes/{process_id}/versions/{version}/{operation}")
def version_operation_page(request: Request, process_id: str, version: RowId, operation: str, session: DbSession,
                           user: PageUser, csrf: Csrf = "", reason: Reason = "") -> Response:
    check_csrf(request, csrf)
    try:
        if operation == "retire":
            process_admin.retire_version(session, actor=user, process_id=process_id, version=version, reason=reason)
        elif operation == "reinstate":
            process_admin.reinstate_version(session, actor=user, process_id=process_id, version=version)
        else:
            raise NotFound(f"没有操作 {operation}")
    except DomainError as err:
        session.rollback()
        return render(request, "process_versions.html",
                      _versions_context(request, session, user, process_id, error=err.message), status_code=err.status)
    session.commit()
    return RedirectResponse(f"/processes/{process_id}", status_code=303)


@router.get("/processes/{process_id}/edit")
def edit_page(request: Request, process_id: str, session: DbSession, user: PageUser,
              version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    found = process_admin.get_version(session, process_id=process_id, version=version)
    return _modeler(request, session, user, process_id=process_id, bpmn=found.bpmn, base_version=found.version)


@router.get("/processes/{process_id}/diff")
def diff_page(request: Request, process_id: str, session: DbSession, user: PageUser,
              old: Annotated[int, Query(ge=1)], new: Annotated[int, Query(ge=1)]) -> Response:
    changes = process_admin.version_diff(session, actor=user, process_id=process_id, old=old, new=new)
    newer = process_admin.get_version(session, process_id=process_id, version=new)
    marks = {"added": [e.id for e in changes.added], "changed": [e.id for e in changes.changed]}
    return render(request, "process_diff.html", {
        "user": user, "process_id": process_id, "old": old, "new": new, "changes": changes, "name": newer.name,
        "diagram": _json({"bpmn": newer.bpmn, "marks": marks,
                          "lane_labels": {str(k): i18n.gettext(v) for k, v in ROLE_LABELS.items()},
                          "names": i18n.diagram_names(newer.bpmn)})})


def _migration_context(session: DbSession, user: User, process_id: str, to: int, *,
                       done: list[process_admin.MigrationCheck] | None = None) -> dict[str, Any]:
    target = process_admin.get_version(session, process_id=process_id, version=to)
    plan = done if done is not None else process_admin.migration_plan(session, actor=user, process_id=process_id,
                                                                      to_version=to)
    return {"user": user, "process_id": process_id, "target": target, "plan": plan, "done": done is not None,
            "movable": sum(1 for c in plan if c.movable), **_labels()}


@router.get("/processes/{process_id}/migrate")
def migration_page(request: Request, process_id: str, session: DbSession, user: PageUser,
                   to: Annotated[int, Query(ge=1)]) -> Response:
    return render(request, "process_migrate.html", _migration_context(session, user, process_id, to))


@router.post("/processes/{process_id}/migrate")
def migrate_page(request: Request, process_id: str, session: DbSession, user: PageUser,
                 to: Annotated[int, Query(ge=1)], csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    done = process_admin.migrate_instances(session, actor=user, process_id=process_id, to_version=to)
    session.commit()
    return render(request, "process_migrate.html", _migration_context(session, user, process_id, to, done=done))
