"""Jinja2 templates with the filters pages need (local time and dates in Chinese, Chinese labels)."""

import re
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates

from api.assets import static_url
from registry import notifications
from registry.settings import get_settings
from registry.students import STATUS_LABELS
from registry.users import ROLE_LABELS, User
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
                           "task.due_change": "调整截止时间", "task.escalate": "逾期上报",
                           "withdrawn": "已撤回", "instance.print": "打印审批表",
                           "student.key_field_change": "关键信息变更", "student.key_field_request": "申请变更关键信息",
                           "student.key_field_request_revise": "修改关键信息变更申请",
                           "student.key_field_request_rejected": "关键信息变更申请被驳回",
                           "student.key_field_request_withdrawn": "撤回关键信息变更申请",
                           "attachment.add": "上传附件", "graduation.file": "提交毕业名单",
                           "data_release.request": "申请提供学生信息", "data_release.revise": "修改信息提供申请",
                           "data_release.approve": "批准并生成文件", "data_release.reject": "驳回信息提供申请",
                           "data_release.withdraw": "撤回信息提供申请", "data_release.download": "下载文件",
                           "data_release.download_refused": "下载被拒绝", "data_release.purge": "删除过期文件",
                           "graduation.graduate": "名单学生毕业", "graduation.returned": "毕业名单退回",
                           "graduation.rejected": "毕业名单驳回", "graduation.withdrawn": "撤回毕业名单"}
_LABELS.update({"spot_check.draw": "抽取样本", "spot_check.evidence_save": "保存抽查材料",
                "spot_check.evidence": "提交抽查材料", "spot_check.findings": "记录核查结果",
                "spot_check.rectification": "提交整改情况", "spot_check.verification": "验收整改",
                "spot_check.school_closed": "本校抽查办结", "spot_check.conclude": "审结抽查",
                "spot_check.withdraw": "撤回抽查", "spot_check.print": "打印抽查报告"})


@cache
def _local_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().display_timezone)


def _zh_day(day: date) -> str:
    # Built by hand, not with strftime: "%-m" (no zero padding) is glibc-only.
    return f"{day.year}年{day.month}月{day.day}日"


def local_time(value: datetime | None, fmt: str | None = None) -> str:
    """Stored in UTC, shown in the county's time (Asia/Shanghai unless MEALROLL_DISPLAY_TIMEZONE says otherwise)
    as 2026年9月10日 14:05, or in strftime's `fmt` when one is given."""
    if not value:
        return ""
    local = value.astimezone(_local_zone())
    return local.strftime(fmt) if fmt else f"{_zh_day(local)} {local:%H:%M}"


_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ISO_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def local_date(value: date | str | None) -> str:
    """A day as 2026年9月10日, a YYYY-MM month (入学年月) as 2023年9月; a datetime is taken in the county's time.
    Other text comes back as it is, so the filter may sit on a column that holds dates among other values;
    machine-readable places (input values, data attributes, the API) keep the ISO form."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _zh_day(value.astimezone(_local_zone()))
    if isinstance(value, date):
        return _zh_day(value)
    text = str(value)
    if day := _ISO_DAY.fullmatch(text):
        try:
            return _zh_day(date(*map(int, day.groups())))
        except ValueError:
            return text
    if (month := _ISO_MONTH.fullmatch(text)) and 1 <= int(month[2]) <= 12:
        return f"{month[1]}年{int(month[2])}月"
    return text


def display_timezone() -> str:
    """The IANA name of the county's zone, for scripts that show a time (a device's own clock may be off)."""
    return _local_zone().key


def unread_notifications(request: Request, user: User) -> int:
    """The bell's count in the header of every page, read with the request's session (api/deps.py)."""
    session = getattr(request.state, "db", None)
    return notifications.unread_count(session, user_id=user.id) if session is not None else 0


def label(value: object) -> str:
    return _LABELS.get(str(value), str(value)) if value is not None else ""


templates.env.filters["local_time"] = local_time
templates.env.filters["local_date"] = local_date
templates.env.filters["label"] = label
templates.env.globals["static_url"] = static_url
templates.env.globals["display_timezone"] = display_timezone
templates.env.globals["unread_notifications"] = unread_notifications
