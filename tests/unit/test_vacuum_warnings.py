"""A warning for each PostgreSQL setting without which writegate's tables are never vacuumed."""

from __future__ import annotations

import pytest

from writegate.core.maintenance import vacuum_warnings


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"autovacuum": "on", "track_counts": "on"}, []),
        ({"autovacuum": "off", "track_counts": "on"}, ["autovacuum"]),
        ({"autovacuum": "on", "track_counts": "off"}, ["track_counts"]),
        ({"autovacuum": "off", "track_counts": "off"}, ["autovacuum", "track_counts"]),
    ],
)
def test_one_line_per_setting_that_is_off(settings: dict[str, str], named: list[str]) -> None:
    """Each line names its setting and what to do about it."""
    lines = vacuum_warnings(settings)
    assert [line.split()[1] for line in lines] == named
    assert all("VACUUM ANALYZE" in line for line in lines)
