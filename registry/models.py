"""Every table, imported in one place so that Alembic and the mappers see the whole schema."""

from registry.audit import AuditEntry
from registry.county_policy import CountyPolicy
from registry.db import Base
from registry.org_units import OrgUnit
from registry.schools import School
from registry.students import EnrolmentPeriod, Student
from registry.users import RoleGrant, User
from registry.workflows import HumanTask, InstanceTimer, ProcessInstance, ProcessVersion

__all__ = [
    "AuditEntry", "Base", "CountyPolicy", "EnrolmentPeriod", "HumanTask", "InstanceTimer", "OrgUnit", "ProcessInstance",
    "ProcessVersion", "RoleGrant", "School", "Student", "User",
]
