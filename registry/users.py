"""Users, their role grants, and password checks."""

from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ForeignKey, String, UniqueConstraint, bindparam, select
from sqlalchemy.orm import Mapped, Session, joinedload, mapped_column, relationship

from registry.audit import record
from registry.db import Base, UTCDateTime, utcnow
from registry.errors import Conflict, NotFound, RuleViolation, msg
from registry.org_units import KIND_LABELS, OrgKind, OrgUnit, get_org_unit


class Role(StrEnum):
    school_registrar = "school_registrar"
    school_principal = "school_principal"
    township_officer = "township_officer"
    county_reviewer = "county_reviewer"
    county_aid_center = "county_aid_center"
    county_admin = "county_admin"
    process_admin = "process_admin"
    auditor = "auditor"


ROLE_LABELS = {
    Role.school_registrar: "学籍管理员",
    Role.school_principal: "校长",
    Role.township_officer: "乡镇中心校管理员",
    Role.county_reviewer: "县营养办审核员",
    Role.county_aid_center: "县学生资助管理中心",
    Role.county_admin: "县教育局系统管理员",
    Role.process_admin: "流程管理员",
    Role.auditor: "监督检查员",
}

# Where each role may be granted: its scope in DESIGN.md's role table.
ROLE_SCOPE = {
    Role.school_registrar: OrgKind.school,
    Role.school_principal: OrgKind.school,
    Role.township_officer: OrgKind.township,
    Role.county_reviewer: OrgKind.county,
    Role.county_aid_center: OrgKind.county,
    Role.county_admin: OrgKind.county,
    Role.process_admin: OrgKind.county,
    Role.auditor: OrgKind.county,
}

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong username costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("mealroll-dummy-password")


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    grants: Mapped[list["RoleGrant"]] = relationship(back_populates="user", lazy="selectin")


class RoleGrant(Base):
    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("user_id", "role", "org_unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))

    user: Mapped[User] = relationship(back_populates="grants")
    org_unit: Mapped[OrgUnit] = relationship(lazy="joined")


def create_user(
    session: Session, *, username: str, display_name: str, password: str, by: User | None = None
) -> User:
    if len(password) < 8:
        raise RuleViolation(msg("密码至少 8 位"), details=[{"field": "password", "message": msg("密码至少 8 位")}])
    if find_user(session, username=username) is not None:
        raise Conflict(msg("用户名 {username} 已存在", username=username),
                       details=[{"field": "username", "message": msg("已存在")}])
    user = User(username=username, display_name=display_name, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    record(session, actor=by, action="user.create", object_type="user", object_id=user.id,
           after={"username": username, "display_name": display_name})
    return user


def grant_role(session: Session, *, user: User, role: Role, org_unit_code: str, by: User | None = None) -> RoleGrant:
    unit = get_org_unit(session, code=org_unit_code)
    if unit.kind != ROLE_SCOPE[role]:
        scope, kind = KIND_LABELS[ROLE_SCOPE[role]], KIND_LABELS[OrgKind(unit.kind)]
        raise RuleViolation(
            msg("角色 {role} 只能授予{scope}级机构，{name} 是{kind}级机构",
                role=msg(ROLE_LABELS[role]), scope=scope, name=unit.name, kind=kind),
            details=[{"field": "org_unit", "message": msg("机构级别不符")}],
        )
    if any(g.role == role and g.org_unit_id == unit.id for g in user.grants):
        raise Conflict(msg("{username} 已有 {role} @ {code}", username=user.username, role=role, code=unit.code))
    grant = RoleGrant(user=user, role=role, org_unit=unit)
    session.add(grant)
    session.flush()
    record(session, actor=by, action="user.grant", object_type="user", object_id=user.id,
           org_unit_id=unit.id, after={"role": role, "org_unit": unit.code})
    return grant


# Every request loads its user with the grants: built once, since building costs a third of the query.
_USER_BY_NAME = select(User).options(joinedload(User.grants)).where(User.username == bindparam("username"))
_USER_BY_ID = select(User).options(joinedload(User.grants)).where(User.id == bindparam("user_id"))


def find_user(session: Session, *, username: str) -> User | None:
    return session.scalars(_USER_BY_NAME, {"username": username}).unique().one_or_none()


def get_user(session: Session, *, user_id: int) -> User:
    user = session.scalars(_USER_BY_ID, {"user_id": user_id}).unique().one_or_none()
    if user is None or not user.active:
        raise NotFound(msg("用户不存在"))
    return user


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    user = find_user(session, username=username)
    try:
        if user is None or not user.active:
            _hasher.verify(_DUMMY_HASH, password + "x")
            return None
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def set_password(session: Session, *, user: User, password: str, by: User | None = None) -> None:
    user.password_hash = _hasher.hash(password)
    record(session, actor=by, action="user.set_password", object_type="user", object_id=user.id)
