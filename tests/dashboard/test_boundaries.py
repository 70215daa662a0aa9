"""The dashboard is a library: it reads the monitoring API and never imports the app."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import diquis.dashboard

PACKAGE = Path(diquis.dashboard.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_no_module_imports_storage_and_only_the_deprecated_alias_reaches_identity() -> None:
    for path in PACKAGE.rglob("*.py"):
        for name in _imports(path):
            assert "storage" not in name, (path.name, name)
            if "identity" in name:
                assert (path.name, name) == ("__init__.py", "..identity.dashboard_access")


def test_importing_the_dashboard_loads_no_app_module() -> None:
    code = (
        "import sys, diquis.dashboard\n"
        "bad = [m for m in sys.modules if m.startswith(('diquis.identity', 'diquis.tenancy',"
        " 'diquis.jobs.storage.postgres', 'fastapi', 'sqlalchemy'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_old_cookie_filter_import_still_works_with_a_warning() -> None:
    from diquis.identity.dashboard_access import SuperAdminFromSessionCookie

    with pytest.warns(DeprecationWarning, match="diquis.identity.dashboard_access"):
        alias = diquis.dashboard.SuperAdminFromSessionCookie
    assert alias is SuperAdminFromSessionCookie
    with pytest.raises(AttributeError):
        _ = diquis.dashboard.NoSuchThing  # type: ignore[attr-defined]


def test_the_default_session_cookie_is_the_apps() -> None:
    from diquis.identity import SESSION_COOKIE

    assert diquis.dashboard.DEFAULT_SESSION_COOKIE == SESSION_COOKIE


def test_views_decide_and_templates_only_lay_out() -> None:
    """Views return plain records (no HTML helpers); templates never reach the engine."""
    view_imports = _imports(PACKAGE / "views.py")
    assert not {".markup", ".layout", ".charts"} & view_imports, view_imports
    for path in (PACKAGE / "templates").glob("*.py"):
        text = path.read_text()
        assert "monitoring" not in text and "JobEngine" not in text, path.name
