"""Jinja2 templates with the filters pages need (local time, Chinese labels)."""

from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from registry.settings import get_settings
from registry.students import STATUS_LABELS
from registry.users import ROLE_LABELS
from registry.workflows import DECISION_LABELS

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

_LABELS: dict[str, str] = {**{str(k): v for k, v in ROLE_LABELS.items()},
                           **{str(k): v for k, v in STATUS_LABELS.items()},
                           **DECISION_LABELS, "submitted": "已提交", "open": "待办", "completed": "已完成",
                           "cancelled": "已取消", "running": "进行中", "error": "出错",
                           "process.start": "发起流程", "process.timer": "定时检查", "task.complete": "办理",
                           "task.claim": "认领", "task.unclaim": "放弃认领", "student.register": "录入学生",
                           "student.revise": "修改学生信息", "student.activate": "确认入库", "student.void": "作废",
                           "school.create": "建立学校信息", "school.update": "修改学校信息"}


@cache
def _local_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().display_timezone)


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Stored in UTC, shown in the county's time (Asia/Shanghai unless MEALROLL_DISPLAY_TIMEZONE says otherwise)."""
    return value.astimezone(_local_zone()).strftime(fmt) if value else ""


def label(value: object) -> str:
    return _LABELS.get(str(value), str(value)) if value is not None else ""


templates.env.filters["local_time"] = local_time
templates.env.filters["label"] = label
