"""House rules across src/diquis: relative imports inside the package, loggers by module."""

from __future__ import annotations

import ast
from pathlib import Path

import diquis

PACKAGE = Path(diquis.__file__).parent
#: Alembic loads these by path, outside the package: they need absolute imports
LOADED_BY_PATH = {"env.py"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_modules_import_the_package_relatively() -> None:
    absolute = []
    for path in _modules():
        if path.name in LOADED_BY_PATH and "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                if (node.module or "").split(".")[0] == "diquis":
                    absolute.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            elif isinstance(node, ast.Import):
                absolute += [
                    f"{path.relative_to(PACKAGE)}:{node.lineno}"
                    for a in node.names
                    if a.name.split(".")[0] == "diquis"
                ]
    assert not absolute


def test_loggers_are_named_after_their_module() -> None:
    named = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith("diquis")
            ):
                named.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not named
