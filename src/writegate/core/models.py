"""Every core table, imported in one place for migrations."""

from writegate.core.audit import CounterRow
from writegate.core.audit_log import AUDIT_LOG, AUDIT_LOG_JOBS
from writegate.core.auth import PrincipalRow
from writegate.core.jobs import JobRow
from writegate.core.login_limits import LoginFailureRow
from writegate.core.sign_outs import SIGN_OUTS
from writegate.core.tokens import ProcessTokenRow

__all__ = [
    "AUDIT_LOG",
    "AUDIT_LOG_JOBS",
    "SIGN_OUTS",
    "CounterRow",
    "JobRow",
    "LoginFailureRow",
    "PrincipalRow",
    "ProcessTokenRow",
]
