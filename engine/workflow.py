from __future__ import annotations

from typing import TYPE_CHECKING

from SpiffWorkflow.bpmn import BpmnWorkflow

if TYPE_CHECKING:
    from engine.definitions import Definition


class DefinedWorkflow(BpmnWorkflow):
    """A workflow that knows the deployed `Definition` it runs, so tasks can be checked against their forms."""

    definition: Definition
