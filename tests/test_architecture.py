"""docs/architecture.md stays true as code moves: every `src/homing/FILE.py:name` it names
exists and defines that function, class or method, and the layer rules its table states
hold for every import under src/homing/ (type-only and function-local ones included)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
SRC = ROOT / "src" / "homing"
# A layer is a package of src/homing/, or "cli": the top-level modules (cli*.py, serve.py,
# config.py, ...). A new package fails test_the_layer_table_covers_every_layer until the
# document gives its rule.
PACKAGES = tuple(sorted(p.parent.name for p in SRC.glob("*/__init__.py")))
LAYERS = (*PACKAGES, "cli")

REFERENCE = re.compile(r"`(src/homing/[\w/]+\.py):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)`")
RULE_ROW = re.compile(r"^\|\s*`(\w+)`\s*\|(?:[^|]*\|)*\s*([^|]*?)\s*\|\s*$")

# A known exception to the rules, as the document lists it: "- `FILE` imports `LAYER`: why".
EXCEPTION = re.compile(r"^- `(src/homing/[\w/]+\.py)` imports `(\w+)`", re.MULTILINE)

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def references() -> list[tuple[str, str]]:
    return sorted(set(REFERENCE.findall(doc_text())))


def defines(body: list[ast.stmt], dotted: str) -> bool:
    """Whether `body` defines `dotted`: a function or class, or Class.method (nested)."""
    first, _, rest = dotted.partition(".")
    for node in body:
        if isinstance(node, DEFINITIONS) and node.name == first:
            if not rest:
                return True
            if isinstance(node, ast.ClassDef) and defines(node.body, rest):
                return True
    return False


def rules() -> dict[str, set[str]]:
    """The layer table of docs/architecture.md: layer -> the layers it may import."""
    table: dict[str, set[str]] = {}
    for line in doc_text().splitlines():
        match = RULE_ROW.match(line)
        if match is None or match.group(1) not in LAYERS:
            continue
        allowed = match.group(2)
        if allowed.strip().lower().startswith("everything"):
            table[match.group(1)] = set(LAYERS)
        else:
            table[match.group(1)] = set(re.findall(r"`(\w+)`", allowed)) & set(LAYERS)
    return table


def layer_of_module(parts: tuple[str, ...]) -> str | None:
    """The layer of `homing.<parts>`; None for the package root (its version only)."""
    if not parts or parts[0] in ("__init__", "__version__"):
        return None
    return parts[0] if parts[0] in PACKAGES else "cli"


def layer_of_file(path: Path) -> str | None:
    parts = path.relative_to(SRC).with_suffix("").parts
    return layer_of_module(parts)


def imported_layers(text: str, package: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """(line, layer) for every import of homing's own modules in a module of `package`."""
    for node in ast.walk(ast.parse(text)):
        modules: list[tuple[str, ...]]
        if isinstance(node, ast.Import):
            modules = [tuple(alias.name.split(".")) for alias in node.names]
        elif not isinstance(node, ast.ImportFrom):
            continue
        else:
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = (*base, *(node.module.split(".") if node.module else ()))
            else:
                module = tuple((node.module or "").split("."))
            if module == ("homing",):  # `from homing import serve`: the names are modules
                modules = [("homing", alias.name) for alias in node.names]
            else:
                modules = [module]
        for module in modules:
            if module[0] != "homing":
                continue
            layer = layer_of_module(module[1:])
            if layer is not None:
                yield node.lineno, layer


def package_of(path: Path) -> tuple[str, ...]:
    return ("homing", *path.relative_to(SRC).parent.parts)


def source_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def test_the_document_names_enough_steps() -> None:
    assert len(references()) >= 15, "the update and query paths name their steps"


@pytest.mark.parametrize(("path", "name"), references())
def test_every_named_step_exists(path: str, name: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"{path} does not exist"
    tree = ast.parse(file.read_text(encoding="utf-8"))
    assert defines(tree.body, name), f"{path} defines no function, class or method {name}"


def test_the_layer_table_covers_every_layer() -> None:
    assert set(rules()) == set(LAYERS)
    assert all(layer_of_file(p) in LAYERS for p in source_files() if p != SRC / "__init__.py")


def exceptions() -> set[tuple[str, str]]:
    return set(EXCEPTION.findall(doc_text()))


def crossings(layer: str) -> set[tuple[str, str, int]]:
    """(file, layer imported, line) for every import of `layer`'s files its rule forbids."""
    allowed = rules()[layer] | {layer}
    return {
        (str(path.relative_to(ROOT)), target, line)
        for path in source_files()
        if layer_of_file(path) == layer
        for line, target in imported_layers(path.read_text(encoding="utf-8"), package_of(path))
        if target not in allowed
    }


@pytest.mark.parametrize("layer", LAYERS)
def test_the_layer_rules_hold(layer: str) -> None:
    listed = exceptions()
    broken = sorted(
        f"{f}:{line} imports {t}" for f, t, line in crossings(layer) if (f, t) not in listed
    )
    assert not broken, f"{layer} may import only {sorted(rules()[layer] | {layer})}"


def test_every_listed_exception_still_exists() -> None:
    """An exception that was removed from the code is removed from the document too."""
    found = {(f, t) for layer in LAYERS for f, t, _ in crossings(layer)}
    assert exceptions() <= found, f"no longer so: {sorted(exceptions() - found)}"


def test_the_checker_sees_every_form_of_import() -> None:
    text = (
        "from ..web import app\n"
        "import homing.store.db\n"
        "from homing import serve, __version__\n"
        "from . import names\n"
        "if TYPE_CHECKING:\n"
        "    from homing.dns.index import ZoneIndex\n"
        "def f():\n"
        "    from homing.client import daemon\n"
    )
    found = sorted(imported_layers(text, ("homing", "domain")))
    assert found == [(1, "web"), (2, "store"), (3, "cli"), (4, "domain"), (6, "dns"), (8, "client")]
