from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from api import i18n
from api.deps import CurrentUser, DbSession, RowId
from api.schemas import DataBody, findings, instance_read, task_read
from engine import definitions
from registry import diagrams, workflows
from registry.errors import RuleViolation
from registry.users import ROLE_LABELS, Role

router = APIRouter(prefix="/api", tags=["processes"])

MAX_BPMN_BYTES = 20 * 1024 * 1024


class StartBody(DataBody):
    # For a process without a registered starter: the unit (code) the instance belongs to, when the
    # starter holds the first step's role at several units or starts it for a school below theirs.
    org_unit: str | None = Field(default=None, max_length=20)


@router.post("/processes/{process_id}/instances", status_code=201)
def start(process_id: str, body: StartBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    instance, warnings = workflows.start_process(session, actor=user, process_id=process_id, data=body.data,
                                                 org_unit=body.org_unit)
    session.commit()
    tasks = [task_read(t) for t in workflows.instance_tasks(session, instance) if t.status == "open"]
    return {**instance_read(instance), "open_tasks": tasks, "warnings": findings(warnings)}


@router.get("/instances/{instance_id}")
def get_instance(instance_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    instance = workflows.get_instance(session, actor=user, instance_id=instance_id)
    tasks = workflows.instance_tasks(session, instance)
    return {
        **instance_read(instance),
        "open_tasks": [task_read(t) for t in tasks if t.status == "open"],
        "tasks": [task_read(t) for t in tasks],
        "history": [{"at": e.at.isoformat(), "action": e.action, "actor_id": e.actor_id, "after": e.after,
                     "reason": e.reason} for e in workflows.instance_history(session, instance)],
    }


@router.get("/instances/{instance_id}/diagram")
def get_diagram(instance_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    """The BPMN XML of the instance's deployed version, the element ids waiting for someone (`active`)
    and those done (`completed`), for a diagram viewer to highlight."""
    bpmn, progress = diagrams.get_diagram(session, actor=user, instance_id=instance_id)
    return {"bpmn": bpmn, "active": progress.active, "completed": progress.completed,
            "steps": [{"id": s.id, "name": s.name, "state": s.state} for s in progress.steps],
            # Lane names are role codes; a viewer shows these labels instead.
            "lane_labels": {str(role): i18n.gettext(text) for role, text in ROLE_LABELS.items()},
            "names": i18n.diagram_names(bpmn)}


async def raw_body(request: Request) -> bytes:
    return await request.body()


@router.post("/process-definitions/validate")
def validate(session: DbSession, user: CurrentUser, body: Annotated[bytes, Depends(raw_body)]) -> dict[str, Any]:
    """Check BPMN XML sent as the request body against the engine and the deployed forms (off the event loop)."""
    if len(body) > MAX_BPMN_BYTES:
        raise RuleViolation("文件超过 20 MB", details=[{"field": "file", "message": "文件过大"}])
    return definitions.validate(body, roles=set(Role), forms=workflows.deployed_forms(session))
