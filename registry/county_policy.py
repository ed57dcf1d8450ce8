"""What a county decides for itself: when key student fields lock (Art. 14 到期即锁), and the day its
autumn cycle starts (Art. 13, 16, 17: 秋季学期实名制工作, by default 1 September)."""

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.access import holds
from registry.audit import record
from registry.db import Base, JSONType
from registry.errors import NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgUnit, county_of
from registry.users import Role, User

# Without a county decision, key fields stay correctable for this long after 确认入库.
DEFAULT_GRACE_DAYS = 30
DEFAULT_CYCLE_START = "09-01"
_CHINA = ZoneInfo("Asia/Shanghai")


class CountyPolicy(Base):
    __tablename__ = "county_policy"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), primary_key=True)
    key_field_grace_days: Mapped[int] = mapped_column(default=DEFAULT_GRACE_DAYS)
    # {"2026": "2026-10-31"}: the date a school year's records lock, when the county sets one.
    key_field_lock_dates: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    # MM-DD: the day each school's annual_cycle instance starts, at 0:00 county time.
    cycle_start: Mapped[str] = mapped_column(String(5), default=DEFAULT_CYCLE_START, server_default=DEFAULT_CYCLE_START)


def school_year_of(day: date) -> int:
    """The school year starts in September: 2026-03-01 belongs to school year 2025."""
    return day.year if day.month >= 9 else day.year - 1


def county_of_user(session: Session, user: User) -> OrgUnit:
    """The county a user works in (every grant lies under one county)."""
    if not user.grants:
        raise NotFound(msg("您没有任何机构的权限"))
    return county_of(session, user.grants[0].org_unit)


def policy_of(session: Session, county: OrgUnit) -> CountyPolicy:
    return session.get(CountyPolicy, county.id) or CountyPolicy(
        org_unit_id=county.id, key_field_grace_days=DEFAULT_GRACE_DAYS, key_field_lock_dates={},
        cycle_start=DEFAULT_CYCLE_START)


def key_field_lock_date(policy: CountyPolicy, confirmed_at: datetime | None) -> date | None:
    """The day name, sex, birth date and ID number lock; None while the record is not yet confirmed."""
    if confirmed_at is None:
        return None
    confirmed = confirmed_at.astimezone(_CHINA).date()
    set_date = (policy.key_field_lock_dates or {}).get(str(school_year_of(confirmed)))
    if set_date:
        return max(date.fromisoformat(set_date), confirmed)
    return confirmed + timedelta(days=policy.key_field_grace_days)


def update_policy(session: Session, *, actor: User, county: OrgUnit, changes: dict[str, Any],
                  now: datetime | None = None) -> CountyPolicy:
    """A new start day also moves the county's cycles still waiting for the old one (annual_cycle.retime)."""
    # registry.annual_cycle reads the policy from here: imported when needed, not at the top.
    from registry import annual_cycle

    if not holds(actor, Role.county_admin, county):
        raise PermissionDenied(msg("只有县教育局系统管理员可以设置关键信息锁定规则"))
    problems = []
    for key in changes:
        if key not in ("key_field_grace_days", "key_field_lock_dates", "cycle_start"):
            problems.append({"field": key, "message": msg("{key}：不是可设置的项目", key=key)})
    grace = changes.get("key_field_grace_days")
    if "key_field_grace_days" in changes and not (isinstance(grace, int) and 0 <= grace <= 365):
        problems.append({"field": "key_field_grace_days", "message": msg("宽限天数：应为 0 到 365 的整数")})
    dates = changes.get("key_field_lock_dates", {})
    if not isinstance(dates, dict):
        problems.append({"field": "key_field_lock_dates", "message": msg("锁定日期：应为 {学年: 日期}")})
        dates = {}
    for year, day in dates.items():
        try:
            valid = str(year).isdigit() and school_year_of(date.fromisoformat(day)) == int(year)
        except (TypeError, ValueError):
            valid = False
        if not valid:
            problems.append({"field": f"key_field_lock_dates.{year}",
                             "message": msg("锁定日期：{year} 学年的锁定日期 {day} 应为该学年内（{year}-09-01 至次年 8-31）的日期",
                                            year=year, day=day)})
    start = changes.get("cycle_start")
    refusal = annual_cycle.start_day_refusal(session, start) if "cycle_start" in changes else None
    if refusal:
        problems.append({"field": "cycle_start", "message": refusal})
    if problems:
        raise RuleViolation(msg("县级设置有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    policy = session.get(CountyPolicy, county.id)
    if policy is None:
        policy = CountyPolicy(org_unit_id=county.id, key_field_grace_days=DEFAULT_GRACE_DAYS, key_field_lock_dates={},
                              cycle_start=DEFAULT_CYCLE_START)
        session.add(policy)
    before = {"key_field_grace_days": policy.key_field_grace_days,
              "key_field_lock_dates": dict(policy.key_field_lock_dates or {}), "cycle_start": policy.cycle_start}
    if "key_field_grace_days" in changes:
        policy.key_field_grace_days = grace
    if "key_field_lock_dates" in changes:
        policy.key_field_lock_dates = {**(policy.key_field_lock_dates or {}), **dates}
    if "cycle_start" in changes:
        policy.cycle_start = start
    session.flush()
    record(session, actor=actor, action="county.policy", object_type="county_policy", object_id=county.code,
           org_unit_id=county.id, before=before,
           after={"key_field_grace_days": policy.key_field_grace_days,
                  "key_field_lock_dates": policy.key_field_lock_dates, "cycle_start": policy.cycle_start})
    if policy.cycle_start != before["cycle_start"]:
        annual_cycle.retime(session, actor=actor, county=county, now=now)
    return policy

