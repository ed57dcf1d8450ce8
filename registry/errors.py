"""One error family for everything a user can cause; the web layer maps each to an HTTP status."""

from typing import Any


class DomainError(Exception):
    status = 400
    code = "domain_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    status = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class RuleViolation(DomainError):
    """Input breaks a rule; `details` lists the offending fields as [{field, message}]."""

    status = 422
    code = "rule_violation"
