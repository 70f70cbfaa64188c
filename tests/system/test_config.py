"""docs/configuration.md is generated from the settings classes and never drifts from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system.clirun import one_line, run_cli
from writegate.commands.configdoc import SETTINGS_CLASSES, load_class

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_is_what_the_classes_generate(tmp_path: Path) -> None:
    """`writegate config docs` prints exactly docs/configuration.md (regenerate it if not)."""
    out = run_cli("config", "docs", cwd=tmp_path, WRITEGATE_PORT="1", WRITEGATE_MODULES="abs")
    assert out.returncode == 0, out.stderr
    assert out.stdout == DOC.read_text(encoding="utf-8"), (
        "docs/configuration.md is stale: run `writegate config docs > docs/configuration.md`"
    )


@pytest.mark.parametrize("target", SETTINGS_CLASSES)
def test_every_setting_is_listed_with_its_default(target: str) -> None:
    """Each setting of each class has a row with its variable, default and a description."""
    doc = DOC.read_text(encoding="utf-8")
    cls = load_class(target)
    prefix = str(cls.model_config.get("env_prefix", ""))
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, bool):
            default = str(default).lower()
        elif isinstance(default, list):
            default = ",".join(default)
        elif default is None:
            default = "(unset)"
        elif default == "":
            default = "(empty)"
        row = next(r for r in doc.splitlines() if r.startswith(f"| `{prefix}{name.upper()}` "))
        assert f"| `{default}` |" in row
        assert not row.endswith("|  |"), f"{name} has no `#:` comment"


def test_check_flag_reports_a_stale_file(tmp_path: Path) -> None:
    """`config docs --check FILE` passes on the real doc and is one line on a stale copy."""
    assert run_cli("config", "docs", "--check", str(DOC), cwd=tmp_path).returncode == 0
    stale = tmp_path / "configuration.md"
    stale.write_text(DOC.read_text(encoding="utf-8").replace("`8000`", "`8080`"))
    out = run_cli("config", "docs", "--check", str(stale), cwd=tmp_path)
    assert out.returncode == 1
    assert "is out of date" in one_line(out.stderr)
