"""Lower layers never import higher ones (docs/ARCHITECTURE.md, "Layers").

Each package of ``streamplane`` sits in one layer; a module may import its own package and
the packages of lower layers, never a package of its own layer or a higher one. The check
reads every import statement of ``src/`` (those inside functions too), so a lazy import
cannot hide a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "streamplane"

#: top to bottom; packages in one row do not import each other
LAYERS: list[set[str]] = [
    {"__main__", "testing"},
    {"cli"},
    {"mothership"},
    {"gateway", "loops"},
    {"satellite"},
    {"channel"},
    {"models", "engine"},
    {"kafka", "proc", "credentials", "metrics", "files", "tenancy", "settings", "capacity",
     "versions", "paths", "testcerts"},
]
LAYER_OF = {package: depth for depth, row in enumerate(LAYERS) for package in row}


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "streamplane" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "streamplane":
                found += [(node.lineno, f"streamplane.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _violations(root: Path = SRC) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        own = rel.parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for lineno, module in _imports(path):
            target = _package(module)
            if target is None or target == own:
                continue
            if target not in LAYER_OF:
                problems.append(f"{rel}:{lineno}: imports {module}, whose package has no layer")
            elif LAYER_OF[target] <= LAYER_OF[own]:
                problems.append(f"{rel}:{lineno}: {own} imports {module} ({target} is not below {own})")
    return problems


def test_every_package_has_a_layer() -> None:
    packages = {p.name.removesuffix(".py") for p in SRC.iterdir()
                if p.name != "__init__.py" and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert packages - set(LAYER_OF) == set(), "add the new package to LAYERS"


def test_no_import_runs_upward_or_sideways() -> None:
    problems = _violations()
    assert not problems, "imports that break the layering:\n" + "\n".join(problems)


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    fake = tmp_path / "streamplane"
    (fake / "kafka").mkdir(parents=True)
    (fake / "kafka" / "bad.py").write_text("from streamplane.mothership.store import Store\n")
    (fake / "loops").mkdir()
    (fake / "loops" / "lazy.py").write_text("def f():\n    from streamplane import cli\n")
    assert _violations(fake) == [
        "kafka/bad.py:1: kafka imports streamplane.mothership.store (mothership is not below kafka)",
        "loops/lazy.py:2: loops imports streamplane.cli (cli is not below loops)",
    ]
