"""Key rotation: every stored Vaka password re-encrypted under the keyring's first key."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update

from writegate.core.services import Services
from writegate.modules.bokamera import crypto
from writegate.modules.bokamera.models import AxemaSettingsRow


@dataclass
class RotationReport:
    """What a rotation did."""

    source: str
    rotated: int = 0
    #: rows whose password a server changed during the rotation (so already under the new key)
    changed: int = 0
    #: (company id, reason) of passwords no configured key can read; left as they were
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def rotate_all(services: Services) -> RotationReport:
    """Re-encrypt every stored password; rows no key reads are reported, never changed."""
    keyring = crypto.keyring_of(services)
    if not keyring.usable:
        raise crypto.SecretError(f"no key configured: set {crypto.KEY_ENV}")
    report = RotationReport(keyring.source)
    with services.db.read() as s:
        rows = s.execute(
            select(AxemaSettingsRow.company_id, AxemaSettingsRow.password_encrypted).order_by(
                AxemaSettingsRow.company_id
            )
        ).all()
    for company_id, token in rows:
        try:
            fresh = keyring.rotate(token)
        except crypto.SecretError as exc:
            report.unreadable.append((company_id, str(exc)))
            continue
        with services.db.write() as s:
            # Compare-and-set: a password PUT meanwhile is newer than ours and stays.
            done = s.execute(
                update(AxemaSettingsRow)
                .where(
                    AxemaSettingsRow.company_id == company_id,
                    AxemaSettingsRow.password_encrypted == token,
                )
                .values(password_encrypted=fresh)
            )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            report.rotated += 1
        else:
            report.changed += 1
    return report
