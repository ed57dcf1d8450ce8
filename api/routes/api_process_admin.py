"""Process administration over JSON: versions, deploy, diff, migration, and operating instances."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field

from api.deps import CurrentUser, DbSession, Offset, RowId
from api.schemas import StrictBody, instance_read
from engine import definitions
from registry import process_admin
from registry.errors import PermissionDenied, RuleViolation
from registry.users import Role
from registry.workflows import ProcessVersion

router = APIRouter(prefix="/api", tags=["process administration"])

MAX_BPMN_CHARS = 5 * 1024 * 1024
ProcessId = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")]


class DeployBody(StrictBody):
    bpmn: str = Field(min_length=1, max_length=MAX_BPMN_CHARS)
    note: str = Field(default="", max_length=process_admin.MAX_NOTE)
    # New or edited form files (JSON Schema) by name, deployed with the process.
    forms: dict[str, dict[str, Any]] = Field(default_factory=dict, max_length=50)


class CheckBody(StrictBody):
    bpmn: str = Field(min_length=1, max_length=MAX_BPMN_CHARS)
    forms: dict[str, dict[str, Any]] = Field(default_factory=dict, max_length=50)


class MigrateBody(StrictBody):
    to_version: int = Field(ge=1, le=100_000)
    instance_ids: list[int] | None = Field(default=None, max_length=10_000)


class ReasonBody(StrictBody):
    reason: str = Field(default="", max_length=process_admin.MAX_NOTE)


def version_read(version: ProcessVersion) -> dict[str, Any]:
    return {"id": version.id, "process_id": version.process_id, "version": version.version, "name": version.name,
            "sha256": version.sha256, "note": version.note, "deployed_by_id": version.deployed_by_id,
            "deployed_at": version.deployed_at.isoformat(),
            "retired_at": version.retired_at.isoformat() if version.retired_at else None}


def _checks(checks: list[process_admin.MigrationCheck]) -> dict[str, Any]:
    items = [{"instance_id": c.instance.id, "version": c.instance.version.version, "status": c.instance.status,
              "subject": c.instance.subject_label, "org_unit": c.instance.org_unit.name, "movable": c.movable,
              "reasons": [{"element_id": b.element_id, "message": b.message} for b in c.blockers]} for c in checks]
    return {"items": items, "total": len(items), "movable": sum(1 for c in checks if c.movable)}


@router.get("/processes")
def list_processes(session: DbSession, user: CurrentUser) -> dict[str, Any]:
    found = process_admin.list_processes(session, actor=user)
    items = [{"process_id": p.process_id, "name": p.name, "latest": version_read(p.latest), "versions": p.versions,
              "unfinished_instances": p.unfinished} for p in found]
    return {"items": items, "total": len(items)}


@router.post("/processes", status_code=201)
def deploy_new(body: DeployBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    version, created = process_admin.deploy_version(session, actor=user, bpmn=body.bpmn.encode("utf-8"),
                                                    note=body.note, forms=body.forms)
    session.commit()
    return {**version_read(version), "created": created}


@router.post("/process-definitions/check")
def check(body: CheckBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    """As /process-definitions/validate, with form files not deployed yet (edited in the modeler)."""
    forms = {**process_admin.form_files(session), **body.forms}
    return definitions.validate(body.bpmn.encode("utf-8"), roles=set(Role), forms=forms)


@router.get("/process-forms")
def list_forms(session: DbSession, user: CurrentUser) -> dict[str, Any]:
    if not process_admin.may_operate(user):
        raise PermissionDenied("只有流程管理员或系统管理员可以查看流程管理")
    forms = process_admin.form_files(session)
    return {"items": [{"name": n, "schema": forms[n]} for n in sorted(forms)], "total": len(forms)}


@router.get("/processes/{process_id}/versions")
def list_versions(process_id: str, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    rows = process_admin.list_versions(session, actor=user, process_id=process_id)
    items = [{**version_read(r.version), "deployed_by": r.deployed_by, "instances": r.by_status} for r in rows]
    return {"items": items, "total": len(items)}


@router.post("/processes/{process_id}/versions", status_code=201)
def deploy(process_id: str, body: DeployBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    version, created = process_admin.deploy_version(session, actor=user, bpmn=body.bpmn.encode("utf-8"),
                                                    note=body.note, forms=body.forms, process_id=process_id)
    session.commit()
    return {**version_read(version), "created": created}


@router.post("/processes/{process_id}/versions/{version}/retire")
def retire(process_id: str, version: RowId, body: ReasonBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    found = process_admin.retire_version(session, actor=user, process_id=process_id, version=version,
                                         reason=body.reason)
    session.commit()
    return version_read(found)


@router.post("/processes/{process_id}/versions/{version}/reinstate")
def reinstate(process_id: str, version: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    found = process_admin.reinstate_version(session, actor=user, process_id=process_id, version=version)
    session.commit()
    return version_read(found)


@router.get("/processes/{process_id}/versions/{version}/bpmn")
def download(process_id: str, version: RowId, session: DbSession, user: CurrentUser) -> Response:
    if not process_admin.may_operate(user):
        raise PermissionDenied("只有流程管理员或系统管理员可以下载流程定义")
    found = process_admin.get_version(session, process_id=process_id, version=version)
    return Response(found.bpmn, media_type="application/xml", headers={
        "Content-Disposition": f'attachment; filename="{found.process_id}.v{found.version}.bpmn"'})


@router.get("/processes/{process_id}/diff")
def diff(process_id: str, session: DbSession, user: CurrentUser, old: Annotated[int, Query(ge=1)],
         new: Annotated[int, Query(ge=1)]) -> dict[str, Any]:
    return process_admin.version_diff(session, actor=user, process_id=process_id, old=old, new=new).as_dict()


@router.get("/processes/{process_id}/migration")
def migration_plan(process_id: str, session: DbSession, user: CurrentUser,
                   to: Annotated[int, Query(ge=1, le=100_000)]) -> dict[str, Any]:
    return _checks(process_admin.migration_plan(session, actor=user, process_id=process_id, to_version=to))


@router.post("/processes/{process_id}/migration")
def migrate(process_id: str, body: MigrateBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    done = process_admin.migrate_instances(session, actor=user, process_id=process_id, to_version=body.to_version,
                                           instance_ids=body.instance_ids)
    session.commit()
    return _checks(done)


@router.get("/instances")
def list_instances(session: DbSession, user: CurrentUser, offset: Offset = 0,
                   process_id: Annotated[str | None, Query(max_length=80)] = None,
                   version: Annotated[int | None, Query(ge=1)] = None,
                   status: Annotated[str | None, Query(max_length=20)] = None,
                   org_unit: Annotated[str | None, Query(max_length=100)] = None,
                   older_than_days: Annotated[int | None, Query(ge=0, le=10_000)] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    if status and status not in process_admin.STATUS_LABELS:
        raise RuleViolation(f"状态：只能是 {', '.join(process_admin.STATUS_LABELS)}",
                            details=[{"field": "status", "message": "未知状态"}])
    where = process_admin.InstanceFilter(process_id=process_id or None, version=version, status=status or None,
                                         org_unit=org_unit or None, older_than_days=older_than_days)
    rows, total = process_admin.list_instances(session, actor=user, where=where, limit=limit, offset=offset)
    errors = process_admin.last_errors(session, [r.id for r in rows if r.status == "error"])
    return {"items": [{**instance_read(r), "error": errors.get(r.id)} for r in rows], "total": total}


@router.post("/instances/{instance_id}/suspend")
def suspend(instance_id: RowId, body: ReasonBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    instance = process_admin.suspend(session, actor=user, instance_id=instance_id, reason=body.reason)
    session.commit()
    return instance_read(instance)


@router.post("/instances/{instance_id}/resume")
def resume(instance_id: RowId, body: ReasonBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    instance = process_admin.resume(session, actor=user, instance_id=instance_id, reason=body.reason)
    session.commit()
    return instance_read(instance)


@router.post("/instances/{instance_id}/cancel")
def cancel(instance_id: RowId, body: ReasonBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    instance = process_admin.cancel(session, actor=user, instance_id=instance_id, reason=body.reason)
    session.commit()
    return instance_read(instance)


@router.post("/instances/{instance_id}/retry")
def retry(instance_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    instance = process_admin.retry(session, actor=user, instance_id=instance_id)
    session.commit()
    session.refresh(instance)
    return instance_read(instance)
