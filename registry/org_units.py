"""The org-unit tree county → township → school, and who it covers."""

from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.db import Base
from registry.errors import Conflict, NotFound, msg


class OrgKind(StrEnum):
    county = "county"
    township = "township"
    school = "school"


KIND_LABELS = {OrgKind.county: "县", OrgKind.township: "乡镇", OrgKind.school: "学校"}
PARENT_KIND = {OrgKind.township: OrgKind.county, OrgKind.school: OrgKind.township}


class OrgUnit(Base):
    __tablename__ = "org_unit"
    # Paths are only ever matched by prefix (access.scope_clause, the county duplicate check): in
    # PostgreSQL's default collation only a varchar_pattern_ops index serves LIKE '/1/4/%'.
    __table_args__ = (Index("ix_org_unit_path", "path", postgresql_ops={"path": "varchar_pattern_ops"}),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"))
    # Materialised path "/1/4/9/": a grant at one unit covers every unit whose path starts with its own.
    path: Mapped[str] = mapped_column(String(255), default="")

    def covers(self, other: "OrgUnit") -> bool:
        return other.path.startswith(self.path)

    def as_ref(self) -> dict[str, str]:
        return {"code": self.code, "name": self.name, "kind": self.kind}


def create_org_unit(
    session: Session, *, code: str, name: str, kind: OrgKind, parent: OrgUnit | None = None
) -> OrgUnit:
    if find_org_unit(session, code=code) is not None:
        raise Conflict(msg("机构代码 {code} 已存在", code=code), details=[{"field": "code", "message": msg("已存在")}])
    expected_parent = PARENT_KIND.get(kind)
    if (parent.kind if parent else None) != expected_parent:
        raise Conflict(msg("{kind}的上级必须是{value}",
                           kind=msg(KIND_LABELS[kind]), value=KIND_LABELS.get(expected_parent, '无') if expected_parent else '无'))
    unit = OrgUnit(code=code, name=name, kind=kind, parent_id=parent.id if parent else None)
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    session.flush()
    return unit


_UNIT_BY_CODE = select(OrgUnit).where(OrgUnit.code == bindparam("code"))


def find_org_unit(session: Session, *, code: str) -> OrgUnit | None:
    return session.scalars(_UNIT_BY_CODE, {"code": code}).one_or_none()


def get_org_unit(session: Session, *, code: str) -> OrgUnit:
    unit = find_org_unit(session, code=code)
    if unit is None:
        raise NotFound(msg("找不到机构 {code}", code=code))
    return unit


def county_path_of(unit: OrgUnit) -> str:
    """The path prefix of the county above `unit`: the first step of its path, no query needed."""
    return "/" + unit.path.strip("/").split("/")[0] + "/"


def county_of(session: Session, unit: OrgUnit) -> OrgUnit:
    county = session.get(OrgUnit, int(unit.path.strip("/").split("/")[0]))
    assert county is not None, unit.path
    return county
