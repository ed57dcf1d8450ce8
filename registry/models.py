"""Every table, imported in one place so that Alembic and the mappers see the whole schema."""

from registry.annual_cycle import AnnualCycle
from registry.attachments import Attachment
from registry.audit import AuditEntry
from registry.county_policy import CountyPolicy
from registry.custom_reports import CustomReport
from registry.data_releases import DataRelease
from registry.db import Base
from registry.drafts import TaskDraft
from registry.external_statistics import ExternalStatistic
from registry.graduation import GraduationBatch, GraduationEntry
from registry.imports import ImportBatch, ImportRow
from registry.inbox import SavedView
from registry.key_field_requests import KeyFieldRequest
from registry.notifications import Notification, NotificationPreference
from registry.org_units import OrgUnit
from registry.report_submissions import ReportSnapshot
from registry.schools import School, SchoolMealModel
from registry.spot_checks.models import SpotCheck, SpotCheckRectification, SpotCheckSchool, SpotCheckStudent
from registry.students import EnrolmentPeriod, Student
from registry.subsidy import SchoolCalendarMonth, SubsidyRate
from registry.task_reminders import TaskReminder
from registry.users import RoleGrant, User
from registry.workflows import HumanTask, InstanceTimer, ProcessInstance, ProcessVersion
from registry.working_days import WorkCalendarDay, WorkCalendarYear

__all__ = [
    "Attachment", "AuditEntry", "Base", "CountyPolicy", "EnrolmentPeriod", "HumanTask", "ImportBatch", "ImportRow", "InstanceTimer", "OrgUnit", "ProcessInstance",
    "ProcessVersion", "RoleGrant", "SavedView", "School", "Student", "TaskDraft", "User",
    "GraduationBatch", "GraduationEntry", "KeyFieldRequest",
    "DataRelease",
    "SpotCheck", "SpotCheckRectification", "SpotCheckSchool", "SpotCheckStudent",
    "Notification", "NotificationPreference", "TaskReminder", "WorkCalendarDay", "WorkCalendarYear",
    "AnnualCycle", "ReportSnapshot", "SchoolCalendarMonth", "SchoolMealModel", "SubsidyRate",
    "CustomReport", "ExternalStatistic",
]
