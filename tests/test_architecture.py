"""Architecture rules, read from the source: no import cycles, the engine does not know the
rounds, SQL lives in the store package only.

Every module under pipeline/ is parsed (never imported); `ast.walk` visits the whole tree, so
imports inside functions and under `if TYPE_CHECKING:` count like top-level ones. A package's
`__init__.py` is the module named after the package.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pipeline"


# A statement, not prose: the keyword starts the string (after white space) and is followed by
# what SQL puts after it, so that "Create the send log …" or "Drop the cells …" are not SQL.
# Docstrings are documentation and are not looked at.
SQL = re.compile(r"""\A\s*(?:
      SELECT\s+(?:DISTINCT\s+)?[\w."*]+(?:\s*\([^)]*\))?(?:\s*,.*?)?\s+FROM\b
    | SELECT\s+(?:\d|\*|\?|COUNT\s*\(|DISTINCT\b)
    | INSERT\s+(?:OR\s+\w+\s+)?INTO\b | REPLACE\s+INTO\b
    | UPDATE\s+(?:OR\s+\w+\s+)?["\w.]+\s+SET\b
    | DELETE\s+FROM\b
    | CREATE\s+(?:(?:UNIQUE|TEMP|TEMPORARY|VIRTUAL)\s+)*(?:TABLE|INDEX|VIEW|TRIGGER)\b
    | DROP\s+(?:TABLE|INDEX|VIEW|TRIGGER)\b
    | ALTER\s+TABLE\b
    | (?:BEGIN|COMMIT|ROLLBACK)(?:\s+(?:DEFERRED|IMMEDIATE|EXCLUSIVE|TRANSACTION))?\s*;?\s*\Z
    | ROLLBACK\s+(?:TRANSACTION\s+)?TO\b | (?:RELEASE|SAVEPOINT)\s+\w+\s*;?\s*\Z
    | PRAGMA\b(?:\s+[\w.]+|\s*\Z)
    | WITH\s+(?:RECURSIVE\s+)?\w+(?:\s*\([^)]*\))?\s+AS\s*\(.*?\bSELECT\b
)""", re.IGNORECASE | re.DOTALL | re.VERBOSE)
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
EXECUTE = {"execute", "executemany", "executescript"}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    imports: dict[str, int] = field(default_factory=dict)  # imported module → first line


# The checker


def load_modules(root: Path, package: str = PACKAGE) -> dict[str, Module]:
    """Every module of `package` (a folder under `root`), parsed, with its import edges."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, path, is_package,
                               ast.parse(path.read_text(encoding="utf-8"), str(path)))
    for module in modules.values():
        for target, line in _imports(module, set(modules), package):
            if target != module.name:
                module.imports[target] = min(line, module.imports.get(target, line))
    return modules


def _known(name: str, known: set[str]) -> str | None:
    """The module `name`, or the closest package above it that exists."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts.pop()
    return None


def _imports(module: Module, known: set[str], package: str) -> Iterator[tuple[str, int]]:
    """(imported module of the package, line) for every import statement in the module."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, known)
                if _inside(alias.name, (package,)) and target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.name.split(".")
                if not module.is_package:
                    anchor.pop()
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if not _inside(base, (package,)):
                continue
            for alias in node.names:
                # `from pipeline.x import y`: the module pipeline.x.y if there is one.
                target = _known(f"{base}.{alias.name}", known) or _known(base, known)
                if target is not None:
                    yield target, node.lineno


def _graph(modules: dict[str, Module]) -> dict[str, list[str]]:
    return {name: sorted(t for t in m.imports if t in modules) for name, m in modules.items()}


def import_groups(modules: dict[str, Module]) -> list[list[str]]:
    """Groups of two or more modules that all import each other (directly or not)."""
    return sorted(c for c in _components(_graph(modules)) if len(c) > 1)


def find_cycles(modules: dict[str, Module]) -> list[list[str]]:
    """One shortest cycle (first module repeated at the end) per group of import_groups."""
    graph = _graph(modules)
    return sorted(_shortest_cycle(graph, min(group), set(group))
                  for group in import_groups(modules))


def _components(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def _shortest_cycle(graph: dict[str, list[str]], start: str, within: set[str]) -> list[str]:
    """The shortest path start → … → start inside one component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in graph[node]:
                if child not in within:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component of 2+ always has one


def describe_cycle(cycle: list[str], modules: dict[str, Module]) -> str:
    steps = [f"{a} -> {b} ({_relative(modules[a])}:{modules[a].imports[b]})"
             for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n      " + "\n      ".join(steps)


def _relative(module: Module) -> str:
    depth = len(module.name.split(".")) + (0 if module.is_package else -1)
    return module.path.relative_to(module.path.parents[depth]).as_posix()


def _inside(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def round_imports(modules: dict[str, Module], package: str = PACKAGE) -> list[str]:
    """Engine-side modules importing a round module, as "module -> round (file:line)"."""
    rounds = package + ".rounds"
    interface = (rounds, rounds + ".base")
    not_engine = (package, package + ".cli", package + ".__main__")
    offenders = []
    for name, module in sorted(modules.items()):
        if name in not_engine or _inside(name, (package + ".monthly", rounds)):
            continue
        for target, line in sorted(module.imports.items()):
            if _inside(target, (rounds,)) and target not in interface:
                offenders.append(f"{name} -> {target} ({_relative(module)}:{line})")
    return offenders


def sql_outside_store(modules: dict[str, Module], package: str = PACKAGE) -> list[str]:
    """String constants that are SQL statements, and execute calls, outside the store package."""
    offenders = []
    for name, module in sorted(modules.items()):
        if _inside(name, (package + ".store",)):
            continue
        skipped = {id(v) for node in ast.walk(module.tree) if isinstance(node, ast.JoinedStr)
                   for v in node.values[1:]}  # only the start of an f-string can start a statement
        skipped |= {id(node.body[0].value) for node in ast.walk(module.tree)
                    if isinstance(node, DOCUMENTED) and node.body
                    and isinstance(node.body[0], ast.Expr)
                    and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(module.tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in skipped and SQL.match(node.value)):
                text = " ".join(node.value.split())
                offenders.append(f"{_relative(module)}:{node.lineno}: SQL string "
                                 f"{text[:60]!r}{'…' if len(text) > 60 else ''}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in EXECUTE):
                offenders.append(f"{_relative(module)}:{node.lineno}: call of "
                                 f".{node.func.attr}()")
    return sorted(offenders, key=_by_file_and_line)


def _by_file_and_line(offender: str) -> tuple[str, int, str]:
    path, line, rest = offender.split(":", 2)
    return path, int(line), rest


# The rules on pipeline/


def test_architecture_no_import_cycles():
    modules = load_modules(ROOT)
    cycles = find_cycles(modules)
    groups = import_groups(modules)
    assert not cycles, (
        f"{len(groups)} group(s) of pipeline modules import each other:\n  "
        + "\n  ".join(", ".join(g) for g in groups)
        + "\none shortest cycle in each (file:line of each import):\n  "
        + "\n  ".join(describe_cycle(c, modules) for c in cycles))


def test_architecture_engine_does_not_import_rounds():
    offenders = round_imports(load_modules(ROOT))
    assert not offenders, (
        "engine-side modules import round modules (only pipeline.cli, pipeline.monthly and the "
        "rounds themselves may; the rest goes through pipeline.rounds / pipeline.rounds.base):\n  "
        + "\n  ".join(offenders))


def test_architecture_sql_only_in_store():
    offenders = sql_outside_store(load_modules(ROOT))
    assert not offenders, ("SQL outside pipeline/store/ (statements and execute calls belong to "
                           "the store package):\n  " + "\n  ".join(offenders))


def test_architecture_checker_sees_the_real_tree():
    modules = load_modules(ROOT)
    assert {"pipeline", "pipeline.engine", "pipeline.cli", "pipeline.store.database"} <= set(
        modules)
    assert "pipeline.engine" in modules["pipeline"].imports
    store = {name: m for name, m in modules.items() if _inside(name, ("pipeline.store",))}
    assert store and sql_outside_store(store) == []  # the store package is exempt


# The checker on a synthetic tree, so that the rules above cannot pass vacuously


def _tree(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return load_modules(root, "pkg")


def test_architecture_checker_finds_a_cycle_through_a_function_import(tmp_path):
    modules = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from . import b\n    return b\n",
        "pkg/b.py": "import pkg.a\n",
        "pkg/c.py": "from pkg import b\nfrom pkg.a import f\n",
        "pkg/sub/__init__.py": "from ..c import b\n",
        "pkg/sub/d.py": "from . import e\n",
        "pkg/sub/e.py": "from .. import sub\n",
    })
    assert modules["pkg.a"].imports == {"pkg.b": 2}
    assert modules["pkg.c"].imports == {"pkg.b": 1, "pkg.a": 2}
    assert modules["pkg.sub"].imports == {"pkg.c": 1}
    assert modules["pkg.sub.e"].imports == {"pkg.sub": 1}
    assert find_cycles(modules) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert describe_cycle(["pkg.a", "pkg.b", "pkg.a"], modules).splitlines()[1].strip() == (
        "pkg.a -> pkg.b (pkg/a.py:2)")


def test_architecture_checker_finds_no_cycle_in_a_chain(tmp_path):
    modules = _tree(tmp_path, {
        "pkg/__init__.py": "from pkg import a\n",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "import os\nfrom pkg.c import X\n",
        "pkg/c.py": "X = 1\n",
    })
    assert modules["pkg.b"].imports == {"pkg.c": 2}
    assert find_cycles(modules) == []


def test_architecture_checker_finds_a_longer_cycle(tmp_path):
    modules = _tree(tmp_path, {
        "pkg/__init__.py": "", "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "from pkg import c\n", "pkg/c.py": "import pkg.a as a\n",
    })
    assert find_cycles(modules) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    assert import_groups(modules) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_architecture_checker_finds_engine_importing_a_round(tmp_path):
    modules = _tree(tmp_path, {
        "pkg/__init__.py": "from pkg.rounds import results\n",
        "pkg/engine.py": "from pkg.rounds import base\n\ndef f():\n"
                         "    from pkg.rounds.results import run\n",
        "pkg/cli.py": "from pkg.rounds import results\n",
        "pkg/monthly/__init__.py": "", "pkg/monthly/job.py": "import pkg.rounds.results\n",
        "pkg/rounds/__init__.py": "", "pkg/rounds/base.py": "",
        "pkg/rounds/results.py": "from pkg.rounds.base import X\n",
    })
    assert round_imports(modules, "pkg") == ["pkg.engine -> pkg.rounds.results (pkg/engine.py:4)"]


def test_architecture_checker_finds_sql_outside_the_store(tmp_path):
    modules = _tree(tmp_path, {
        "pkg/__init__.py": '"""Select a unit from the list."""\nM = "Drop the cells of a sheet."\n',
        "pkg/report.py": 'Q = """\n  select * from t"""\n'
                         'W = "WITH x AS (SELECT 1) SELECT * FROM x"\n'
                         'def f(db, n):\n    """Delete from the log."""\n'
                         '    db.execute(f"{n} INSERT")\n'
                         '    return f"PRAGMA {n}", "commit"\n',
        "pkg/store/__init__.py": "",
        "pkg/store/db.py": 'def f(c):\n    c.execute("DELETE FROM t")\n',
    })
    assert sql_outside_store(modules, "pkg") == [
        "pkg/report.py:1: SQL string 'select * from t'",
        "pkg/report.py:3: SQL string 'WITH x AS (SELECT 1) SELECT * FROM x'",
        "pkg/report.py:6: call of .execute()",
        "pkg/report.py:7: SQL string 'PRAGMA'",
        "pkg/report.py:7: SQL string 'commit'",
    ]


@pytest.mark.parametrize("text", [
    "SELECT digest FROM send_log WHERE key = ?", "select count(*) from runs",
    "SELECT u.status, COUNT(*) FROM units u", "\n  INSERT OR REPLACE INTO t VALUES (?)",
    "UPDATE runs SET ok = 1", "DELETE FROM t", "CREATE TABLE IF NOT EXISTS t (a)",
    "CREATE UNIQUE INDEX i ON t (a)", "DROP TABLE t", "ALTER TABLE t ADD COLUMN b",
    "BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK;", "PRAGMA user_version",
    "with recursive x(n) as (select 1 union all select n + 1 from x) select n from x",
])
def test_architecture_sql_pattern_finds_statements(text):
    assert SQL.match(text)


@pytest.mark.parametrize("text", [
    "Create the send log if the store has none yet", "Drop the cells of sheets no table was read",
    "Select the best unit", "Update the manifest", "Delete old files", "begin at row 3",
    "with the office's seal", "Chọn đơn vị", "",
])
def test_architecture_sql_pattern_ignores_prose(text):
    assert not SQL.match(text)
