"""The house rules, checked by reading the source of every module of ``hlg``.

Data flows one way through hlg (DESIGN.md, "The pipeline"), and so do imports:

1. Every module has a rank in :data:`RANKS`, following the pipeline. A module
   imports only modules of a lower rank, at the top of the module or inside a
   function alike. Imports under ``if TYPE_CHECKING:`` may point anywhere: they
   name types for annotations and never run.
2. A name starting with one underscore (``_helper``; dunder names such as
   ``__version__`` are public) is imported only within its own subpackage. A
   module directly under ``hlg/`` is a subpackage of its own.
3. Every module of ``hlg`` has a rank, so a new module has to be placed.

The rank of ``from hlg.a import b`` is the rank of ``hlg.a`` and, when ``hlg.a.b``
is a module, of that module too. Parent packages are not counted: Python runs
``hlg/__init__.py`` before any submodule, and that is not a dependency of the
importing module.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import hlg

PACKAGE_DIR = Path(hlg.__file__).parent

#: Modules by rank, lowest first: the pipeline read from left to right. Modules
#: of one rank may not import each other. A subpackage (``hlg.layers``, its
#: ``__init__.py``) ranks above the modules it re-exports.
RANKS: tuple[tuple[str, ...], ...] = (
    # -- foundations: errors, keys, limits, helpers, and the seams lower modules call up through
    ("hlg.errors",),
    (
        "hlg._gc",
        "hlg._table",
        "hlg.keys",
        "hlg.limits",
        "hlg.presentation",
        "hlg.serializers",
        "hlg.toposort",
        "hlg.version",
    ),
    # -- the task spec, and dask's forms converted into it
    ("hlg.task",),
    ("hlg.daskspec",),
    ("hlg.convert",),
    # -- layers: the contract, its registry, the built-in layer types
    ("hlg.layers.annotate", "hlg.layers.blockdeps", "hlg.layers.shuffleplan"),
    ("hlg.layers.blockgrid", "hlg.layers.blockinputs"),
    ("hlg.layers.base",),
    ("hlg.layers.registry",),
    ("hlg.layers.materialized",),
    ("hlg.layers.blockwise",),
    ("hlg.layers.shuffle",),
    ("hlg.layers",),
    # -- graphs of layers, and what is done to them before packing
    ("hlg.graph",),
    ("hlg.optimize",),
    # -- packing: values, the envelope, whole graphs
    ("hlg.packing.codec",),
    ("hlg.packing.envelope",),
    ("hlg.packing.pack",),
    ("hlg.packing",),
    # -- the scheduler side: bytes to a flat graph
    ("hlg.materialize.groups",),
    ("hlg.materialize.flatgraph",),
    ("hlg.materialize.unpack",),
    ("hlg.materialize",),
    # -- running tasks
    ("hlg.execute.procpool",),
    ("hlg.execute.forms",),
    ("hlg.execute.memory_order",),
    ("hlg.execute.order",),
    ("hlg.execute.state",),
    ("hlg.execute.callbacks",),
    ("hlg.execute.local",),
    ("hlg.execute.client",),
    ("hlg.execute",),
    ("hlg.compute", "hlg.dask_scheduler"),
    # -- seeing graphs: formats, renderings of a description, then what builds descriptions
    ("hlg.visualize.style",),
    ("hlg.visualize.html", "hlg.visualize.text"),
    ("hlg.visualize.description",),
    ("hlg.visualize.packed",),
    ("hlg.visualize.describe",),
    ("hlg.visualize.dot",),
    ("hlg.visualize.nx",),
    ("hlg.visualize.presenter",),
    ("hlg.visualize",),
    # -- applications of the whole library
    ("hlg.demo", "hlg.testing"),
    ("hlg.cli",),
    ("hlg.distributed.tasks",),
    ("hlg.distributed.expr", "hlg.distributed.plugin"),
    ("hlg.distributed.client",),
    ("hlg.distributed",),
    ("hlg",),
    ("hlg.__main__",),
)


@dataclasses.dataclass(frozen=True)
class Import:
    """One import statement's dependency on one module of hlg."""

    line: int
    target: str  # the module depended on
    names: tuple[str, ...]  # the names taken from it (``from ... import``), else ()
    deferred: bool  # inside a function: runs when called
    type_only: bool  # under ``if TYPE_CHECKING:``: never runs


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    """Return the dotted name of the module at ``path`` of the package at ``root``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Return every module of the package at ``root``, by dotted name."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    # The absolute name of what ``from <node.module> import ...`` reads, relative ones too.
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def read_imports(
    module: str, source: str, *, is_package: bool, known: frozenset[str]
) -> Iterator[Import]:
    """Yield the dependencies on ``hlg`` modules of the module ``module`` with ``source``.

    ``known`` holds every module of hlg, so that ``from hlg.a import b`` counts
    ``hlg.a.b`` too when that is a module.
    """

    def visit(nodes: list[ast.stmt], deferred: bool, type_only: bool) -> Iterator[Import]:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(node.lineno, alias.name, (), deferred, type_only)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, is_package, node)
                names = tuple(alias.name for alias in node.names)
                yield Import(node.lineno, target, names, deferred, type_only)
                for name in names:
                    if f"{target}.{name}" in known:
                        yield Import(node.lineno, f"{target}.{name}", (), deferred, type_only)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from visit(node.body, deferred, True)
                yield from visit(node.orelse, deferred, type_only)
            else:
                inner = deferred or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        stmts = [c for c in children if isinstance(c, ast.stmt)]
                        stmts += [
                            s for c in children if not isinstance(c, ast.stmt) for s in c.body
                        ]
                        yield from visit(stmts, inner, type_only)

    tree = ast.parse(source)
    for found in visit(tree.body, False, False):
        if found.target == "hlg" or found.target.startswith("hlg."):
            yield found


def subpackage(module: str) -> str:
    """Return the unit within which a module's private names may be imported.

    A module of a subpackage (``hlg.layers.base``) belongs to its subpackage
    (``hlg.layers``); a module directly under ``hlg/`` is a unit of its own.
    """
    parts = module.split(".")
    return ".".join(parts[:2])


def rank_table(ranks: tuple[tuple[str, ...], ...] = RANKS) -> dict[str, int]:
    """Return each module's rank, checking that no module is listed twice."""
    table: dict[str, int] = {}
    for rank, modules in enumerate(ranks):
        for name in modules:
            assert name not in table, f"{name} is listed twice in RANKS"
            table[name] = rank
    return table


def check_module(
    module: str,
    source: str,
    *,
    path: str,
    is_package: bool,
    ranks: dict[str, int],
) -> list[str]:
    """Return the house rules that the module ``module`` with ``source`` breaks, one line each."""
    if module not in ranks:
        return [
            f"{path}:1: {module} has no rank: add it to RANKS in tests/test_architecture.py, "
            "after every hlg module it imports and before every module that imports it"
        ]
    errors = []
    own = ranks[module]
    for found in read_imports(module, source, is_package=is_package, known=frozenset(ranks)):
        where = f"{path}:{found.line}: {module}"
        rank = ranks.get(found.target)
        if rank is None:
            errors.append(f"{where} imports {found.target}, which is not a module of hlg")
        elif rank >= own and not found.type_only:
            how = "inside a function" if found.deferred else "at the top"
            level = "the same rank" if rank == own else "a higher rank"
            errors.append(
                f"{where} (rank {own}) imports {found.target} (rank {rank}, {level}) {how}: "
                "imports flow downstream only; move the shared part below both modules, or "
                "have the lower module offer a hook the higher one fills"
            )
        if subpackage(found.target) == subpackage(module):
            continue
        for name in found.names:
            private = name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
            if private:
                errors.append(
                    f"{where} imports the private name {name} from {found.target}, outside "
                    f"{subpackage(found.target)}: give it a public name or a public seam"
                )
    return errors


def check_package(root: Path = PACKAGE_DIR, ranks: dict[str, int] | None = None) -> list[str]:
    """Return every house rule broken by the package at ``root``."""
    table = rank_table() if ranks is None else ranks
    modules = package_modules(root)
    errors = [
        f"tests/test_architecture.py: RANKS lists {name}, which is not a module of hlg"
        for name in sorted(set(table) - set(modules))
    ]
    for name, path in modules.items():
        errors += check_module(
            name,
            path.read_text(encoding="utf-8"),
            path=str(path.relative_to(root.parent)),
            is_package=path.name == "__init__.py",
            ranks=table,
        )
    return errors


def test_architecture_imports_flow_downstream_only() -> None:
    errors = check_package()
    assert not errors, "\n".join(errors)


SYNTHETIC = '''\
"""A keys module that breaks every rule."""

from typing import TYPE_CHECKING

from hlg.errors import HlgError
from hlg.task import _scan
from hlg.graph import HighLevelGraph

if TYPE_CHECKING:
    from hlg.layers.base import Layer


def draw(graph):
    from hlg.visualize import to_dot
    from hlg import __version__

    return to_dot(graph), __version__
'''


def test_architecture_checker_catches_violations() -> None:
    ranks = rank_table()
    errors = check_module("hlg.keys", SYNTHETIC, path="hlg/keys.py", is_package=False, ranks=ranks)
    assert len(errors) == 5, "\n".join(errors)
    top, private, graph, package, dunder = errors
    assert top.startswith("hlg/keys.py:6: hlg.keys (rank 1) imports hlg.task (rank 2")
    assert private.startswith("hlg/keys.py:6: hlg.keys imports the private name _scan")
    assert graph.startswith("hlg/keys.py:7:") and "hlg.graph" in graph and "at the top" in graph
    assert package.startswith("hlg/keys.py:14: hlg.keys (rank 1) imports hlg.visualize")
    assert "inside a function" in package and "imports flow downstream only" in package
    assert dunder.startswith("hlg/keys.py:15: hlg.keys (rank 1) imports hlg (rank")
    assert not any("Layer" in e or ":10:" in e or "__version__" in e for e in errors)


def test_architecture_checker_catches_same_rank_and_allows_own_subpackage() -> None:
    ranks = rank_table()
    source = "from hlg.limits import Cost\nfrom hlg.layers.blockwise import _make_tasks\n"
    errors = check_module("hlg.keys", source, path="hlg/keys.py", is_package=False, ranks=ranks)
    assert len(errors) == 3, errors
    assert "imports hlg.limits (rank 1, the same rank)" in errors[0]
    assert "hlg.layers.blockwise" in errors[1] and "a higher rank" in errors[1]
    assert "private name _make_tasks" in errors[2]
    errors = check_module(
        "hlg.layers.shuffle", source, path="hlg/layers/shuffle.py", is_package=False, ranks=ranks
    )
    assert errors == []


def test_architecture_checker_reads_relative_imports() -> None:
    ranks = rank_table()
    source = "def f():\n    from ..graph import HighLevelGraph\n    from . import base\n"
    errors = check_module(
        "hlg.layers.annotate",
        source,
        path="hlg/layers/annotate.py",
        is_package=False,
        ranks=ranks,
    )
    assert [e.split(" imports ")[1].split(" ")[0] for e in errors] == [
        "hlg.graph",
        "hlg.layers",
        "hlg.layers.base",
    ]


def test_architecture_unranked_module_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "hlg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "errors.py").write_text("")
    (root / "fresh.py").write_text("from hlg.errors import HlgError\n")
    errors = check_package(root, ranks={"hlg.errors": 0, "hlg": 1, "hlg.gone": 2})
    assert errors == [
        "tests/test_architecture.py: RANKS lists hlg.gone, which is not a module of hlg",
        "hlg/fresh.py:1: hlg.fresh has no rank: add it to RANKS in tests/test_architecture.py, "
        "after every hlg module it imports and before every module that imports it",
    ]
