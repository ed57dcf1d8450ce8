"""What each BPMN process asks of the registry, one module per process.

BPMN decides who acts next; these functions decide what is valid and write it. A module holds,
for its process: the service-task actions (named by `spiffworkflow:serviceTaskOperator`), the
completion actions of user tasks (their `action` property), the starter that turns API start data
into a subject, and what withdrawing (撤回) undoes. registry/actions.py gathers them.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from registry.file_store import FileStore
from registry.org_units import OrgUnit
from registry.rules.findings import Finding
from registry.users import User


@dataclass
class ServiceContext:
    """What an action may use while one unit of work advances one instance."""

    session: Session
    actor: User | None
    instance_id: int
    now: datetime
    overdue_task_ids: set[str] = field(default_factory=set)
    subject_label: str | None = None
    warnings: list[Finding] = field(default_factory=list)
    new_instance: bool = False
    # Given where a person completes a task (the API and the task page): the data_release file is
    # stored on approval. None for timers and batch decisions.
    files: FileStore | None = None

    @property
    def today(self) -> date:
        return self.now.date()


@dataclass(frozen=True)
class StartPlan:
    # Held while the instance starts, so service tasks find it in the session's identity map.
    subject: Any
    subject_type: str | None
    subject_id: int | None
    subject_label: str
    org_unit: OrgUnit
    role: str
    data: dict[str, Any]
    warnings: list[Finding]
    # Started by the rule for processes no flow module names (registry/actions.py generic_plan).
    generic: bool = False


Service = Callable[[ServiceContext, dict[str, Any]], Any]
TaskAction = Callable[[ServiceContext, dict[str, Any], dict[str, Any]], None]
Starter = Callable[..., StartPlan]
Withdrawal = Callable[[ServiceContext, int, str], None]


@dataclass(frozen=True)
class Flow:
    process_id: str
    services: dict[str, Service] = field(default_factory=dict)
    task_actions: dict[str, TaskAction] = field(default_factory=dict)
    starter: Starter | None = None  # None: started by the system (a timer, another process), not by a user
    withdraw: Withdrawal | None = None
