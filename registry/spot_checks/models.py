"""The tables of a spot check: the check, its sampled schools (one process instance each), the sampled
students with the school's evidence and the auditor's findings, and each round of rectification."""

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.db import Base, JSONType, UTCDateTime, utcnow
from registry.org_units import OrgUnit
from registry.students import Student
from registry.users import User

if TYPE_CHECKING:
    from registry.workflows import ProcessInstance  # registry.workflows imports the flows, which import this


class Focus(StrEnum):
    """Who is sampled (Art. 26 重点): a student in any chosen focus is a candidate."""

    beneficiaries = "beneficiaries"
    boarders = "boarders"
    boarding_allowance = "boarding_allowance"


FOCUS_LABELS = {Focus.beneficiaries: "受益学生", Focus.boarders: "寄宿生", Focus.boarding_allowance: "享受一补学生"}


class CheckStatus(StrEnum):
    running = "running"
    concluded = "concluded"
    withdrawn = "withdrawn"


CHECK_STATUS_LABELS = {CheckStatus.running: "进行中", CheckStatus.concluded: "已审结", CheckStatus.withdrawn: "已撤回"}


class PartStatus(StrEnum):
    """Where one sampled school stands; the school's process instance moves it on."""

    evidence = "evidence"
    findings = "findings"
    rectification = "rectification"
    verification = "verification"
    closed = "closed"
    withdrawn = "withdrawn"


PART_STATUS_LABELS = {PartStatus.evidence: "待学校提供材料", PartStatus.findings: "待督查核查",
                      PartStatus.rectification: "待学校整改", PartStatus.verification: "待督查验收整改",
                      PartStatus.closed: "已办结", PartStatus.withdrawn: "已撤回"}


class FindingKind(StrEnum):
    none = "none"
    absent = "absent"
    mismatch = "mismatch"
    ineligible = "ineligible"
    other = "other"


FINDING_LABELS = {FindingKind.none: "无问题", FindingKind.absent: "不在校", FindingKind.mismatch: "信息不符",
                  FindingKind.ineligible: "不应享受", FindingKind.other: "其他"}
VERIFICATION_LABELS = {"approve": "整改到位", "return": "退回重新整改"}


class SpotCheck(Base):
    __tablename__ = "spot_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    month: Mapped[str] = mapped_column(String(7))  # whose beneficiaries were sampled, YYYY-MM
    seed: Mapped[int] = mapped_column(BigInteger)
    # As the auditor gave them: school_codes or school_count, students_per_school, focus, meal_models.
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The schools the school draw chose among (all named ones when the auditor named them): with each
    # sampled school's candidates and the seed, the draw can be re-run from the record alone.
    eligible_schools: Mapped[list[str]] = mapped_column(JSONType, default=list)
    notes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(20), default=CheckStatus.running)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    started_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    conclusion: Mapped[str | None] = mapped_column(Text)
    concluded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    concluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    county: Mapped[OrgUnit] = relationship(lazy="joined")
    started_by: Mapped[User] = relationship(foreign_keys=[started_by_id])
    concluded_by: Mapped[User | None] = relationship(foreign_keys=[concluded_by_id])
    parts: Mapped[list["SpotCheckSchool"]] = relationship(back_populates="check", order_by="SpotCheckSchool.id")


class SpotCheckSchool(Base):
    """One sampled school of a check, worked through its own `spot_check_school` instance."""

    __tablename__ = "spot_check_school"
    __table_args__ = (UniqueConstraint("check_id", "school_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("spot_check.id"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    eligible: Mapped[int]  # candidates the students were drawn from
    candidate_ids: Mapped[list[int]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default=PartStatus.evidence, index=True)
    evidence_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    evidence_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    findings_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    findings_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    findings_summary: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    check: Mapped[SpotCheck] = relationship(back_populates="parts")
    school: Mapped[OrgUnit] = relationship(lazy="joined")
    instance: Mapped["ProcessInstance | None"] = relationship()
    evidence_by: Mapped[User | None] = relationship(foreign_keys=[evidence_by_id])
    findings_by: Mapped[User | None] = relationship(foreign_keys=[findings_by_id])
    students: Mapped[list["SpotCheckStudent"]] = relationship(back_populates="part", order_by="SpotCheckStudent.student_id")
    rectifications: Mapped[list["SpotCheckRectification"]] = relationship(
        back_populates="part", order_by="SpotCheckRectification.round")


class SpotCheckStudent(Base):
    __tablename__ = "spot_check_student"
    __table_args__ = (UniqueConstraint("part_id", "student_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("spot_check_school.id"), index=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("student.id"), index=True)
    matched: Mapped[list[str]] = mapped_column(JSONType)  # the focuses the student was a candidate for
    # The record as it stood at the draw (name, grade, class, 就读方式, 一补): what the finding is about.
    recorded: Mapped[dict[str, Any]] = mapped_column(JSONType)
    present: Mapped[bool | None]
    evidence_note: Mapped[str | None] = mapped_column(Text)
    scan_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"))
    finding: Mapped[str | None] = mapped_column(String(20))
    finding_note: Mapped[str | None] = mapped_column(Text)

    part: Mapped[SpotCheckSchool] = relationship(back_populates="students")
    student: Mapped[Student] = relationship()


class SpotCheckRectification(Base):
    """One round of 整改: what the school did, and the auditor's verdict on it."""

    __tablename__ = "spot_check_rectification"
    __table_args__ = (UniqueConstraint("part_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("spot_check_school.id"), index=True)
    round: Mapped[int]
    report: Mapped[str] = mapped_column(Text)
    measures: Mapped[dict[str, str]] = mapped_column(JSONType)  # student id (as text) → measure taken
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decision: Mapped[str | None] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    part: Mapped[SpotCheckSchool] = relationship(back_populates="rectifications")
    submitted_by: Mapped[User] = relationship(foreign_keys=[submitted_by_id])
    verified_by: Mapped[User | None] = relationship(foreign_keys=[verified_by_id])
