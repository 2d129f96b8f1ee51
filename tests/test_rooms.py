"""The engine keeps its rooms: small modules, short functions, no private
names borrowed across modules, and web pages that import only what the web
may import. (import-linter checks the layers themselves in ``make test``.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted((ROOT / "core").rglob("*.py"))
WEB = sorted(
    [
        *(ROOT / "ui").glob("*.py"),
        *(ROOT / "pages").glob("*.py"),
        ROOT / "app.py",
        ROOT / "studio.py",
    ]
)
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def _tree(p: Path) -> ast.Module:
    return ast.parse(p.read_text(encoding="utf-8"), filename=str(p))


def test_no_module_in_core_is_over_600_lines() -> None:
    long = {
        _rel(p): n
        for p in CORE
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_no_function_in_core_is_over_80_lines() -> None:
    long = {}
    for p in CORE:
        for node in ast.walk(_tree(p)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{_rel(p)}:{node.name}"] = n
    assert not long, long


def _private_imports(p: Path) -> list[str]:
    out = []
    for node in ast.walk(_tree(p)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in ("core", "ui", "pages", "tests"):
                continue
            out += [
                f"{node.module}.{a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            ]
    return out


@pytest.mark.parametrize("folder", ["core", "ui", "pages", "tests", "bench"])
def test_private_names_are_never_imported_from_another_module(folder: str) -> None:
    files = [*(ROOT / folder).rglob("*.py")] if (ROOT / folder).is_dir() else []
    found = {_rel(p): names for p in files if (names := _private_imports(p))}
    assert not found, found


def test_the_guard_finds_a_private_import(tmp_path: Path) -> None:
    p = tmp_path / "m.py"
    p.write_text("from core.model.report import _hidden\n")
    assert _private_imports(p) == ["core.model.report._hidden"]


def _imported_modules(p: Path) -> set[str]:
    mods = set()
    for node in ast.walk(_tree(p)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
            mods.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def test_web_pages_never_import_the_pipeline_or_the_worker() -> None:
    bad = {
        _rel(p): sorted(
            m
            for m in _imported_modules(p)
            if m.startswith(("core.pipeline", "core.worker", "tensorflow"))
        )
        for p in WEB
    }
    assert not {k: v for k, v in bad.items() if v}, bad


def test_every_room_says_what_it_holds_and_may_import() -> None:
    for init in (ROOT / "core").glob("*/__init__.py"):
        doc = ast.get_docstring(_tree(init)) or ""
        assert "import" in doc and len(doc.split(".")) >= 3, _rel(init)
