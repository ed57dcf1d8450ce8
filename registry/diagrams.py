"""Where an instance stands on its process diagram: the steps done and the steps waiting for someone,
for the diagram on the task page (and its plain-text list when JavaScript is off) and for
GET /api/instances/{id}/diagram."""

import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from engine import runtime
from engine.steps import process_steps
from registry import workflows
from registry.users import User
from registry.workflows import ProcessInstance, TaskStatus


@dataclass(frozen=True)
class StepState:
    id: str  # the BPMN element id
    name: str
    state: str  # "active" (waiting for someone), "completed", or "" (not reached)


@dataclass(frozen=True)
class Progress:
    instance_id: int
    active: list[str]
    completed: list[str]
    steps: list[StepState]


def progress_of(session: Session, instance: ProcessInstance) -> Progress:
    """The caller has checked that its user may see the instance."""
    definition = workflows.definition_of_instance(session, instance)
    tasks = workflows.instance_tasks(session, instance)
    active = list(dict.fromkeys(t.task_id for t in tasks if t.status == TaskStatus.open))
    # Service tasks (名单查重, 激活学籍) have no inbox row: the engine's own history has them.
    workflow = runtime.restore(definition, json.loads(instance.state), services={})
    completed = list(dict.fromkeys([e["task_id"] for e in runtime.history(workflow)]
                                   + [t.task_id for t in tasks if t.status == TaskStatus.completed]))
    steps = [StepState(s.id, s.name, "active" if s.id in active else "completed" if s.id in completed else "")
             for s in process_steps(definition)]
    return Progress(instance_id=instance.id, active=active, completed=completed, steps=steps)


def get_diagram(session: Session, *, actor: User, instance_id: int) -> tuple[str, Progress]:
    """The BPMN XML of the version the instance runs on, and its progress."""
    instance = workflows.get_instance(session, actor=actor, instance_id=instance_id)
    return instance.version.bpmn, progress_of(session, instance)
