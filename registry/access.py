"""Who may see and act on what: a role granted at an org unit covers that unit and all below it."""

from collections.abc import Iterable

from sqlalchemy import ColumnElement, false, or_
from sqlalchemy.orm import InstrumentedAttribute

from registry.org_units import OrgUnit
from registry.users import Role, User

# Roles that may read full ID numbers; everyone else sees them masked (Art. 22-24).
FULL_ID_ROLES = frozenset({
    Role.school_registrar, Role.school_principal, Role.county_reviewer, Role.county_aid_center, Role.auditor,
})


def holds(user: User, role: str, unit: OrgUnit) -> bool:
    return any(g.role == role and g.org_unit.covers(unit) for g in user.grants)


def sees(user: User, unit: OrgUnit) -> bool:
    return any(g.org_unit.covers(unit) for g in user.grants)


def may_see_full_id(user: User, unit: OrgUnit) -> bool:
    return any(g.role in FULL_ID_ROLES and g.org_unit.covers(unit) for g in user.grants)


def scope_clause(user: User, path: InstrumentedAttribute[str], roles: Iterable[str] | None = None) -> ColumnElement[bool]:
    """A WHERE clause keeping rows whose org-unit path lies under one of the user's grants."""
    wanted = set(roles) if roles is not None else None
    prefixes = {g.org_unit.path for g in user.grants if wanted is None or g.role in wanted}
    if not prefixes:
        return false()
    return or_(*(path.startswith(p, autoescape=True) for p in sorted(prefixes)))


def mask_id_number(number: str | None) -> str | None:
    if not number or len(number) < 8:
        return number
    return number[:6] + "*" * (len(number) - 10) + number[-4:]
