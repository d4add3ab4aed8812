"""The layout is the architecture: which top-level package may import which.

Reads every production module's imports (module level and inside functions) with
``ast`` and checks the rules the README's layout table states, so a dependency
cycle or a room reaching into the composition root fails here, not in review.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "storage", "core_client", "prompts", "ivr", "sms", "dialplans",
            "console", "sandbox", "benchmarks")
PRODUCT = ("common", "storage", "core_client", "prompts", "ivr", "sms", "dialplans", "console")


def _imports() -> dict[str, set[tuple[str, str]]]:
    """Top-level package -> {(imported top-level package, importing file)}."""
    known = set(PACKAGES) | {"daemon"}
    edges: dict[str, set[tuple[str, str]]] = {}
    files = [REPO / "daemon.py"] + [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")
                                    if "node_modules" not in p.parts]
    for path in files:
        rel = path.relative_to(REPO)
        source = rel.parts[0] if len(rel.parts) > 1 else "daemon"
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                target = name.split(".")[0]
                if target in known and target != source:
                    edges.setdefault(source, set()).add((target, str(rel)))
    return edges


def _cycles(edges) -> list[str]:
    graph = {src: {t for t, _ in targets} for src, targets in edges.items()}
    found = []

    def walk(node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                found.append(" -> ".join(path + [nxt]))
            elif nxt not in path:
                walk(nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_no_import_cycle_between_top_level_packages():
    """No top-level package imports, directly or through others, one that imports it back."""
    assert _cycles(_imports()) == []


def test_rooms_never_import_the_composition_root():
    """Only daemon.py composes the rooms: no package imports ``daemon``."""
    offenders = sorted(f for targets in _imports().values() for t, f in targets if t == "daemon")
    assert offenders == []


def test_product_never_imports_sandbox_or_benchmarks():
    """The product packages stand alone: test peers and benchmarks depend on them, not back."""
    edges = _imports()
    offenders = sorted(f for src in PRODUCT for t, f in edges.get(src, ())
                       if t in ("sandbox", "benchmarks"))
    assert offenders == []


def test_common_and_storage_know_no_room():
    """The shared layers (config readers, logging, HTTP, database) import no room."""
    edges = _imports()
    rooms = {"core_client", "prompts", "ivr", "sms", "console"}
    offenders = sorted(f for src in ("common", "storage") for t, f in edges.get(src, ())
                       if t in rooms)
    assert offenders == []


def test_tests_are_filed_by_kind():
    """Every e2e file is marked e2e, and no helper module under tests/ is named like a test."""
    tests = REPO / "tests"
    unmarked = sorted(str(p.relative_to(REPO)) for p in (tests / "e2e").glob("test_*.py")
                      if "pytest.mark.e2e" not in p.read_text())
    assert unmarked == []
    helpers = sorted(str(p.relative_to(REPO)) for p in tests.rglob("test_*.py")
                     if "def test_" not in p.read_text())
    assert helpers == []


def _imports_under_tests() -> list[tuple[Path, Path]]:
    """(importing file, imported file) for every import, anywhere under tests/, of a module
    that is a file under tests/; relative imports resolved, ``from pkg import module`` too."""
    found = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        rel = path.relative_to(REPO)
        package = list(rel.parent.parts)
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join(base + (node.module.split(".") if node.module else []))
                names = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = REPO / (name.replace(".", "/") + ".py")
                if name.split(".")[0] == "tests" and target.is_file():
                    found.append((path, target))
    return found


def test_tests_import_only_support_modules():
    """No module under tests/ imports a test module or a conftest (fixtures reach tests through
    pytest, shared code lives in tests/support), and a helper module outside tests/support
    serves only its own folder."""
    support = REPO / "tests" / "support"
    offenders = sorted(
        f"{src.relative_to(REPO)} imports {dst.relative_to(REPO)}"
        for src, dst in _imports_under_tests()
        if dst.name.startswith("test_") or dst.stem == "conftest"
        or (support not in dst.parents and dst.parent != src.parent))
    assert offenders == []
