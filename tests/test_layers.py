"""The import graph of ``peer/``, computed from the source: no circles, no layer breach.

Every module is parsed with :mod:`ast` (nothing is imported); relative imports are
resolved to module names. Imports inside functions count: a lazy import is still a
dependency.

Circles: imports under ``if TYPE_CHECKING:`` are left out (they never run).

Layers, low to high, are in ``LAYERS`` below. A module may import modules of its own
room and of any lower layer; rooms of one layer stay apart (``tokens``, ``config`` and
``store`` do not import each other). Here imports under ``TYPE_CHECKING`` count too: a
lower layer that needs a higher one's type should get a Protocol of its own instead.
``"x.*"`` is the package ``x`` and everything under it; a name without ``.*`` is that
one module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Low to high. Each layer is a list of rooms; each room a tuple of module patterns.
LAYERS: Sequence[tuple[str, Sequence[tuple[str, ...]]]] = [
    ("foundation", [("peer.errors", "peer.signal", "peer.logs")]),
    ("protocol", [("peer.protocol.*",)]),
    ("tokens | config | store", [("peer.tokens.*",), ("peer.config.*",), ("peer.store.*",)]),
    ("auth", [("peer.auth.*",)]),
    ("link", [("peer.link.*", "peer.publisher", "peer.received")]),
    ("transports", [("peer.transports.*",)]),
    ("server", [("peer.server.*",)]),
    ("local", [("peer.local.*",), ("peer.ssf.*",)]),
    ("node", [("peer.node", "peer.metrics", "peer.client", "peer.facade")]),
    ("commands", [("peer.commands.*", "peer.cli", "peer.__main__", "peer")]),
]

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "peer"


# -- the graph -------------------------------------------------------------------------


def module_names(root: Path) -> dict[str, Path]:
    """``{"peer.store.base": path, "peer.store": .../__init__.py, ...}`` under ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(node: ast.AST, typing: bool) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``; those in ``if TYPE_CHECKING:`` only when
    ``typing`` is true."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test) and not typing:
        children: Iterable[ast.AST] = node.orelse
    else:
        children = ast.iter_child_nodes(node)
    for child in children:
        yield from _imports(child, typing)


def _targets(
    statement: ast.Import | ast.ImportFrom, importer: str, is_package: bool, known: set[str]
) -> set[str]:
    """The modules of ``known`` one import statement of ``importer`` loads by name."""
    if isinstance(statement, ast.Import):
        bases = [alias.name for alias in statement.names]
        found = set()
        for base in bases:
            while base and base not in known:
                base = base.rpartition(".")[0]
            if base:
                found.add(base)
        return found
    if statement.level:
        package = importer if is_package else importer.rpartition(".")[0]
        for _ in range(statement.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{statement.module}" if statement.module else package
    else:
        base = statement.module or ""
    found = set()
    for alias in statement.names:
        submodule = f"{base}.{alias.name}"
        if submodule in known:
            found.add(submodule)  # `from pkg import module`
        elif base in known:
            found.add(base)
    return found


def import_graph(root: Path, *, typing: bool = False) -> dict[str, set[str]]:
    """``{module: {modules it imports at run time}}`` for every module under ``root``;
    with ``typing``, the imports under ``TYPE_CHECKING`` as well."""
    modules = module_names(root)
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for statement in _imports(tree, typing):
            edges |= _targets(statement, name, is_package, known)
        edges.discard(name)
        graph[name] = edges
    return graph


# -- circles ---------------------------------------------------------------------------


def _shortest_path(graph: Mapping[str, set[str]], start: str, goal: str) -> list[str] | None:
    """Breadth first: the shortest path ``start -> ... -> goal``."""
    previous: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == goal:
                    path = [goal, node]
                    back = previous[node]
                    while back is not None:
                        path.append(back)
                        back = previous[back]
                    return path[::-1]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return None


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One shortest circle through each module that is on one, each listed once,
    starting from its smallest name: ``[a, b, a]`` for a -> b -> a."""
    cycles: set[tuple[str, ...]] = set()
    for module in sorted(graph):
        path = _shortest_path(graph, module, module)
        if path is None:
            continue
        ring = path[:-1]
        turn = ring.index(min(ring))
        ring = ring[turn:] + ring[:turn]
        cycles.add((*ring, ring[0]))
    return [list(cycle) for cycle in sorted(cycles, key=lambda c: (len(c), c))]


# -- layers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where a module sits: its layer's index and name, and its room in that layer."""

    layer: int
    name: str
    room: int


def _matches(pattern: str, module: str) -> bool:
    if pattern.endswith(".*"):
        stem = pattern[:-2]
        return module == stem or module.startswith(stem + ".")
    return module == pattern


def place_of(module: str, layers: Sequence[tuple[str, Sequence[tuple[str, ...]]]]) -> Place | None:
    """The most specific pattern naming ``module`` decides its place."""
    best: tuple[int, Place] | None = None
    for index, (name, rooms) in enumerate(layers):
        for room, patterns in enumerate(rooms):
            for pattern in patterns:
                if _matches(pattern, module) and (best is None or len(pattern) > best[0]):
                    best = (len(pattern), Place(index, name, room))
    return None if best is None else best[1]


def layer_problems(
    graph: Mapping[str, set[str]],
    layers: Sequence[tuple[str, Sequence[tuple[str, ...]]]],
    runtime: Mapping[str, set[str]] | None = None,
) -> list[str]:
    """Modules no layer names, and imports of a higher layer or of a sibling room; an
    import not in ``runtime`` (if given) is marked type-only."""
    problems = [
        f"{module} is in no layer: add it to LAYERS in tests/test_layers.py"
        for module in sorted(graph)
        if place_of(module, layers) is None
    ]
    for module in sorted(graph):
        here = place_of(module, layers)
        for target in sorted(graph[module]):
            there = place_of(target, layers)
            if here is None or there is None:
                continue
            how = "imports" if runtime is None or target in runtime[module] else "type-imports"
            if there.layer > here.layer:
                problems.append(
                    f"{module} (layer {here.layer} {here.name}) {how} {target}"
                    f" (higher layer {there.layer} {there.name})"
                )
            elif there.layer == here.layer and there.room != here.room:
                problems.append(
                    f"{module} {how} {target}: rooms of layer {here.layer}"
                    f" ({here.name}) do not import each other"
                )
    return problems


def graph_report(root: Path) -> str:
    """Every circle and layer problem of the tree at ``root``, one a line; empty when
    there is none."""
    runtime = import_graph(root)
    typed = import_graph(root, typing=True)
    lines = [f"import circle: {' -> '.join(cycle)}" for cycle in find_cycles(runtime)]
    lines += [f"layer breach: {problem}" for problem in layer_problems(typed, LAYERS, runtime)]
    return "\n".join(lines)


# -- the tests -------------------------------------------------------------------------


def test_peer_has_no_import_circle_and_respects_its_layers() -> None:
    report = graph_report(PACKAGE_ROOT)
    assert report == "", "\n" + report


def test_the_graph_sees_the_real_tree() -> None:
    graph = import_graph(PACKAGE_ROOT)
    assert {"peer", "peer.errors", "peer.protocol.ledger", "peer.node"} <= set(graph)
    assert "peer.errors" in graph["peer.protocol.communication"]
    assert graph["peer.errors"] <= {"peer.signal", "peer.logs"}


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "peer"


FAKE_TREE = {
    "peer/__init__.py": "from .errors import PeerError\n",
    "peer/errors.py": "class PeerError(Exception): ...\n",
    "peer/signal.py": "",
    "peer/logs.py": "",
    "peer/protocol/__init__.py": "from .ledger import Ledger\n",
    # A breach: the sans-I/O core reaching up into the node (lazily: it still counts).
    "peer/protocol/ledger.py": (
        "from ..errors import PeerError\ndef later():\n    from peer.node import Peer\n"
    ),
    # Rooms of one layer: the store must not use the config.
    "peer/store/__init__.py": "from . import base\n",
    "peer/store/base.py": "from .. import config\n",
    "peer/config/__init__.py": "",
    # Under TYPE_CHECKING: no circle with the node, but a breach all the same.
    "peer/tokens/__init__.py": (
        "import typing\n"
        "if typing.TYPE_CHECKING:\n    from ..node import Peer\n"
        "else:\n    from ..errors import PeerError\n"
    ),
    # A circle of three, one import lazy inside a function.
    "peer/transports/__init__.py": "",
    "peer/transports/a.py": "from . import b\n",
    "peer/transports/b.py": "import peer.server\n",
    "peer/server.py": "def app():\n    from .transports.a import x\n",
    "peer/node.py": "from .server import app\nfrom . import tokens\n",
    "peer/stray.py": "",
}


def test_checker_reports_circles_breaches_and_unlayered_modules(tmp_path: Path) -> None:
    root = _write(tmp_path, FAKE_TREE)
    graph = import_graph(root)
    assert graph["peer.tokens"] == {"peer.errors"}
    assert import_graph(root, typing=True)["peer.tokens"] == {"peer.errors", "peer.node"}
    assert graph["peer.store"] == {"peer.store.base"}
    assert graph["peer.node"] == {"peer.server", "peer.tokens"}
    assert graph["peer.transports.b"] == {"peer.server"}
    assert find_cycles(graph) == [
        ["peer.server", "peer.transports.a", "peer.transports.b", "peer.server"]
    ]
    assert graph_report(root).splitlines() == [
        "import circle: peer.server -> peer.transports.a -> peer.transports.b -> peer.server",
        "layer breach: peer.stray is in no layer: add it to LAYERS in tests/test_layers.py",
        "layer breach: peer.protocol.ledger (layer 1 protocol) imports peer.node"
        " (higher layer 8 node)",
        "layer breach: peer.store.base imports peer.config: rooms of layer 2"
        " (tokens | config | store) do not import each other",
        "layer breach: peer.tokens (layer 2 tokens | config | store) type-imports peer.node"
        " (higher layer 8 node)",
        "layer breach: peer.transports.b (layer 5 transports) imports peer.server"
        " (higher layer 6 server)",
    ]


def test_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    clean = dict(FAKE_TREE)
    del clean["peer/stray.py"]
    clean["peer/protocol/ledger.py"] = "from ..errors import PeerError\n"
    clean["peer/store/base.py"] = "from ..protocol import Ledger\n"
    clean["peer/tokens/__init__.py"] = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..protocol import Ledger\n"
    )
    clean["peer/transports/b.py"] = "import peer.errors\n"
    assert graph_report(_write(tmp_path, clean)) == ""


def test_a_two_module_circle_is_reported_once(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "peer/__init__.py": "",
            "peer/node.py": "from . import metrics\n",
            "peer/metrics.py": "from peer import node\n",
        },
    )
    assert find_cycles(import_graph(root)) == [["peer.metrics", "peer.node", "peer.metrics"]]
