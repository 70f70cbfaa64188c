"""Every core table, imported in one place for migrations."""

from writegate.core.audit import CounterRow
from writegate.core.audit_log import AuditRow
from writegate.core.auth import PrincipalRow
from writegate.core.jobs import JobRow
from writegate.core.jobs_admin import CREATED_INDEX
from writegate.core.tokens import ProcessTokenRow

__all__ = ["CREATED_INDEX", "AuditRow", "CounterRow", "JobRow", "PrincipalRow", "ProcessTokenRow"]
