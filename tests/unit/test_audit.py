"""Checksums over canonical JSON."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from writegate.core.audit import canonical_json, checksum

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_checksum_ignores_key_order(data: dict[str, object]) -> None:
    """The same mapping in any key order has one checksum."""
    reordered = dict(reversed(list(data.items())))
    assert checksum(data) == checksum(reordered)


def test_checksum_is_base64_sha256_of_canonical_json() -> None:
    """Known value: sorted keys, no whitespace, UTF-8."""
    data = {"b": 1, "a": "é"}
    assert canonical_json(data) == '{"a":"é","b":1}'.encode()
    expected = base64.b64encode(hashlib.sha256(canonical_json(data)).digest()).decode()
    assert checksum(data) == expected
    assert checksum({"a": "é", "b": 2}) != expected
