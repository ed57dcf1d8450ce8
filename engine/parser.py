from __future__ import annotations

from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.util import BPMN_MODEL_NS, full_tag
from SpiffWorkflow.bpmn.specs.defaults import BoundaryEvent, IntermediateCatchEvent, StartEvent
from SpiffWorkflow.spiff.parser.event_parsers import (
    SpiffBoundaryEventParser,
    SpiffIntermediateCatchEventParser,
    SpiffStartEventParser,
)
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, SpiffProcessParser

from engine.timers import CLOCKED_TIMERS


class _ClockedTimerParsing:
    def parse_timer_event(self, event: Any) -> Any:
        parsed = super().parse_timer_event(event)  # type: ignore[misc]
        return CLOCKED_TIMERS[type(parsed)](parsed.name, parsed.expression, description=parsed.description)


class ClockedStartEventParser(_ClockedTimerParsing, SpiffStartEventParser):
    pass


class ClockedBoundaryEventParser(_ClockedTimerParsing, SpiffBoundaryEventParser):
    pass


class ClockedIntermediateCatchEventParser(_ClockedTimerParsing, SpiffIntermediateCatchEventParser):
    pass


class MealrollProcessParser(SpiffProcessParser):
    def _index_process_nodes(self) -> None:
        super()._index_process_nodes()
        # Spiff indexes every element with an id, extension elements included, so a
        # `spiffworkflow:serviceTaskOperator id="check_duplicates"` inside the task of the same id
        # replaced the task and sequence flows into it failed. Only BPMN elements are flow targets.
        self.nodes_by_id = {
            node.get("id"): node
            for node in self.xpath(".//*[@id]")
            if isinstance(node.tag, str) and etree.QName(node).namespace == BPMN_MODEL_NS
        }


class MealrollBpmnParser(SpiffBpmnParser):
    """Spiff's parser (it reads the `spiffworkflow:` extensions) with timers that obey the injected clock."""

    PROCESS_PARSER_CLASS = MealrollProcessParser

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("startEvent"): (ClockedStartEventParser, StartEvent),
        full_tag("boundaryEvent"): (ClockedBoundaryEventParser, BoundaryEvent),
        full_tag("intermediateCatchEvent"): (ClockedIntermediateCatchEventParser, IntermediateCatchEvent),
    }
