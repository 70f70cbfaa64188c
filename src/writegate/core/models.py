"""Every core table, imported in one place for migrations."""

from writegate.core.audit import CounterRow
from writegate.core.audit_log import AuditRow
from writegate.core.auth import PrincipalRow
from writegate.core.jobs import JobRow
from writegate.core.tokens import ProcessTokenRow

__all__ = ["AuditRow", "CounterRow", "JobRow", "PrincipalRow", "ProcessTokenRow"]
