"""Jinja2 templates with the filters pages need: local times and dates, labels, and gettext (api/i18n.py)."""

import re
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from api import i18n
from api.assets import static_url
from registry import notifications
from registry.code_tables import load_code_tables
from registry.errors import Message
from registry.settings import get_settings
from registry.students import STATUS_LABELS
from registry.users import ROLE_LABELS, User
from registry.workflows import DECISION_LABELS

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.add_extension("jinja2.ext.i18n")
# Every `{{ … }}` that prints a registry message (registry/errors.py `msg`: err.message, a field error, a warning)
# prints it in the request's language; set before any template compiles, since the compiled code checks for it.
templates.env.finalize = i18n.translated
# Installed once: the callables read the request's language from a context variable (api/i18n.py).
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext)

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
_LABELS.update({"suspended": "已暂停", "roster.print": "打印花名册", "report.submit": "上报常规报表",
                "annual_cycle.new_students": "确认新生录入", "annual_cycle.roster": "上传花名册扫描件",
                "annual_cycle.filed": "花名册备案", "subsidy.rate": "设置补助标准", "subsidy.calendar": "设置校历",
                "county.policy": "修改县级设置", "process.deploy": "部署流程", "process.migrate": "迁移到新版本",
                "process.suspend": "暂停流程", "process.resume": "恢复流程", "process.cancel": "取消流程",
                "process.retry": "重试出错的流程", "process.error": "流程出错", "process.retire": "停用版本",
                "process.reinstate": "恢复版本"})


@cache
def _local_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().display_timezone)


_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _day(day: date) -> str:
    # Built by hand, not with strftime: "%-m" (no zero padding) is glibc-only and "%b" follows the process locale.
    if i18n.current_locale() == "en":
        return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"
    return f"{day.year}年{day.month}月{day.day}日"


def _month(year: int, month: int) -> str:
    if i18n.current_locale() == "en":
        return f"{_EN_MONTHS[month - 1]} {year}"
    return f"{year}年{month}月"


def local_time(value: datetime | None, fmt: str | None = None) -> str:
    """Stored in UTC, shown in the county's time (Asia/Shanghai unless MEALROLL_DISPLAY_TIMEZONE says otherwise)
    as 2026年9月10日 14:05 (10 Sep 2026 14:05 in English), or in strftime's `fmt` when one is given."""
    if not value:
        return ""
    local = value.astimezone(_local_zone())
    return local.strftime(fmt) if fmt else f"{_day(local)} {local:%H:%M}"


_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ISO_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def local_date(value: date | str | None) -> str:
    """A day as 2026年9月10日, a YYYY-MM month (入学年月) as 2023年9月 (10 Sep 2026, Sep 2023 in English); a datetime
    is taken in the county's time.
    Other text comes back as it is, so the filter may sit on a column that holds dates among other values;
    machine-readable places (input values, data attributes, the API) keep the ISO form."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _day(value.astimezone(_local_zone()))
    if isinstance(value, date):
        return _day(value)
    text = str(value)
    if day := _ISO_DAY.fullmatch(text):
        try:
            return _day(date(*map(int, day.groups())))
        except ValueError:
            return text
    if (month := _ISO_MONTH.fullmatch(text)) and 1 <= int(month[2]) <= 12:
        return _month(int(month[1]), int(month[2]))
    return text


def display_timezone() -> str:
    """The IANA name of the county's zone, for scripts that show a time (a device's own clock may be off)."""
    return _local_zone().key


def unread_notifications(request: Request, user: User) -> int:
    """The bell's count in the header of every page, read with the request's session (api/deps.py)."""
    session = getattr(request.state, "db", None)
    return notifications.unread_count(session, user_id=user.id) if session is not None else 0


def label(value: object) -> str:
    """The Chinese label of a code, translated when the page is in English (the msgids are the Chinese labels)."""
    if value is None:
        return ""
    text = _LABELS.get(str(value))
    return i18n.gettext(text) if text is not None else str(value)


def tr(value: object) -> str:
    """A Chinese text that comes with the data, not the template (a task's title, a lane, a process's name), in the
    current language when the catalog has it (processes/*.bpmn and forms are extracted, api/extractors.py); as it is
    otherwise: a process version deployed later with new text stays Chinese."""
    if value is None:
        return ""
    return i18n.translated(value) if isinstance(value, Message) else i18n.gettext(str(value))


def code_label(table: str, code: object) -> str:
    """The label of a code of a code table (registry/codes) in the current language; "" for an unknown code."""
    text = load_code_tables().label(table, str(code)) if code not in (None, "") else None
    return i18n.gettext(text) if text else ""


def grade_class(grade: object, class_name: object) -> str:
    """年级班级 without saying the grade twice: a class named 六年级（3）班 already says it."""
    name = str(class_name or "")
    if "年级" in name or not grade:
        return name
    return i18n.gettext("%(grade)s 年级 %(class_name)s") % {"grade": grade, "class_name": name}


def _per_render(f: Callable[..., str]) -> Callable[..., str]:
    # pass_context stops Jinja from folding `"open" | label` at compile time, in the language of the first request
    # that compiled the template.
    return pass_context(lambda _context, *args: f(*args))


templates.env.filters["local_time"] = _per_render(local_time)
templates.env.filters["local_date"] = _per_render(local_date)
templates.env.filters["label"] = _per_render(label)
templates.env.filters["grade_class"] = _per_render(grade_class)
templates.env.filters["tr"] = _per_render(tr)
templates.env.globals["code_label"] = code_label
templates.env.globals["static_url"] = static_url
templates.env.globals["display_timezone"] = display_timezone
templates.env.globals["current_locale"] = i18n.current_locale
templates.env.globals["unread_notifications"] = unread_notifications


def label_texts() -> list[str]:
    """Every Chinese label `label` may show, for the message catalog (api/i18n.py)."""
    return sorted(set(_LABELS.values()))
