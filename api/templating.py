"""Jinja2 templates with the filters pages need (local time, Chinese labels)."""

from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from api.assets import static_url
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
                           "school.create": "建立学校信息", "school.update": "修改学校信息",
                           "student.import": "批量导入入库", "import.upload": "上传名单", "import.check": "校验名单",
                           "import.submit": "提交名单", "import.confirm": "名单确认入库", "import.returned": "名单退回",
                           "import.rejected": "名单驳回", "import.discard": "放弃名单", "import.withdraw": "撤回名单",
                           "student.update": "修改学生信息", "student.photo": "更新照片",
                           "student.status_change": "学籍异动", "student.transfer": "转学",
                           "student.transfer_certificate": "转学证明", "process.withdraw": "撤回", "task.reassign": "转派",
                           "withdrawn": "已撤回", "instance.print": "打印审批表",
                           "student.key_field_change": "关键信息变更", "student.key_field_request": "申请变更关键信息",
                           "student.key_field_request_revise": "修改关键信息变更申请",
                           "student.key_field_request_rejected": "关键信息变更申请被驳回",
                           "student.key_field_request_withdrawn": "撤回关键信息变更申请",
                           "attachment.add": "上传附件", "graduation.file": "提交毕业名单",
                           "graduation.graduate": "名单学生毕业", "graduation.returned": "毕业名单退回",
                           "graduation.rejected": "毕业名单驳回", "graduation.withdrawn": "撤回毕业名单"}


@cache
def _local_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().display_timezone)


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Stored in UTC, shown in the county's time (Asia/Shanghai unless MEALROLL_DISPLAY_TIMEZONE says otherwise)."""
    return value.astimezone(_local_zone()).strftime(fmt) if value else ""


def display_timezone() -> str:
    """The IANA name of the county's zone, for scripts that show a time (a device's own clock may be off)."""
    return _local_zone().key


def label(value: object) -> str:
    return _LABELS.get(str(value), str(value)) if value is not None else ""


templates.env.filters["local_time"] = local_time
templates.env.filters["label"] = label
templates.env.globals["static_url"] = static_url
templates.env.globals["display_timezone"] = display_timezone
