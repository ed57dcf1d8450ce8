"""Who may see and act on what: a role granted at an org unit covers that unit and all below it."""

import re
from collections.abc import Iterable

from sqlalchemy import ColumnElement, false, or_
from sqlalchemy.orm import InstrumentedAttribute

from registry.org_units import OrgUnit
from registry.users import Role, User

# Roles that may read full ID numbers; everyone else sees them masked (Art. 22-24).
FULL_ID_ROLES = frozenset({
    Role.school_registrar, Role.school_principal, Role.county_reviewer, Role.county_aid_center, Role.auditor,
})
_PATH = re.compile(r"/(?:[0-9]+/)+")


# County roles that watch every step in their county, not only their own: they see (not act on)
# any open task there, and have the inbox's "all open at my scope" tab.
OVERSIGHT_ROLES = frozenset({Role.county_reviewer, Role.county_admin, Role.county_aid_center, Role.auditor})


def holds(user: User, role: str, unit: OrgUnit) -> bool:
    return any(g.role == role and g.org_unit.covers(unit) for g in user.grants)


def oversees(user: User, unit: OrgUnit) -> bool:
    return any(g.role in OVERSIGHT_ROLES and g.org_unit.covers(unit) for g in user.grants)


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
    return or_(*(path.like(_under(p)) for p in sorted(prefixes)))


def _under(path: str) -> str:
    # One bound pattern with no ESCAPE: a path is ids and slashes ("/1/4/9/"), nothing to escape, and
    # PostgreSQL turns its constant prefix into a range on ix_org_unit_path (varchar_pattern_ops).
    # An empty path would match every unit, and a path with % or _ others: refuse them.
    if not _PATH.fullmatch(path):
        raise ValueError(f"not an org-unit path: {path!r}")
    return path + "%"


def mask_id_number(number: str | None) -> str | None:
    """Keep the first 6 (area) and last 4 characters, enough to tell records apart: 520102********123X.
    A letter prefix (学籍号 G…, a passport's letter) stays in front of that; a number of 10 characters
    or fewer (a passport, a permit) keeps only its last 4, so that nothing short is shown whole."""
    if not number:
        return number
    if number[:1].isalpha() and len(number) > 11:
        return number[0] + (mask_id_number(number[1:]) or "")
    if len(number) > 10:
        return number[:6] + "*" * (len(number) - 10) + number[-4:]
    return "*" * (len(number) - 4) + number[-4:] if len(number) > 4 else "*" * len(number)


def mask_phone(phone: str | None) -> str | None:
    """138****5678: the first 3 and last 4 digits stay, separators too (085*-***3456).

    A number too short to keep 7 digits keeps only its last 4, or nothing.
    """
    if not phone:
        return phone
    digits = [i for i, c in enumerate(phone) if c.isdigit()]
    shown = set(digits[:3] + digits[-4:]) if len(digits) > 7 else set(digits[-4:]) if len(digits) > 4 else set()
    return "".join(c if i in shown or not c.isdigit() else "*" for i, c in enumerate(phone))
