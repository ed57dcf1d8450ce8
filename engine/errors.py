from __future__ import annotations


class EngineError(Exception):
    def __init__(self, message: str, *, element_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.element_id = element_id

    def __str__(self) -> str:
        if self.element_id is None:
            return self.message
        return f"{self.element_id}: {self.message}"


class DefinitionError(EngineError):
    """A BPMN file (or its forms) cannot be deployed; `errors` lists every problem found."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        first = errors[0] if errors else {"element_id": None, "message": "流程定义无效 / invalid definition"}
        message = str(first["message"])
        summary = message if len(errors) == 1 else f"{message}（共 {len(errors)} 个问题 / {len(errors)} problems）"
        super().__init__(summary, element_id=first["element_id"])


class TaskNotReady(EngineError):
    pass


class ScriptError(EngineError):
    pass


class FormDataError(EngineError):
    """Submitted task data does not match the task's form; `errors` are `{"path", "message"}`."""

    def __init__(self, message: str, *, element_id: str | None, errors: list[dict]) -> None:
        super().__init__(message, element_id=element_id)
        self.errors = errors
