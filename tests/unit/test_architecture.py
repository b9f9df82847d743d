"""The core never imports the outside world (a second guard beside import-linter)."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "syncd"
FORBIDDEN = {"connectors", "ldap3", "openpyxl", "click", "apscheduler"}


def test_core_modules_import_nothing_from_connectors_ldap3_or_openpyxl() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            else:
                continue
            offenders += [(path.name, m) for m in mods if m.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert len(list(CORE.rglob("*.py"))) > 5  # the scan really looked at the core
