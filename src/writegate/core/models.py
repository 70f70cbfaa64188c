"""Every core table, imported in one place for migrations."""

from writegate.core.audit import CounterRow
from writegate.core.audit_log import AUDIT_LOG
from writegate.core.auth import PrincipalRow
from writegate.core.jobs import JobRow
from writegate.core.tokens import ProcessTokenRow

__all__ = ["AUDIT_LOG", "CounterRow", "JobRow", "PrincipalRow", "ProcessTokenRow"]
