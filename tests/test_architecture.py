"""The architecture, checked on the source: the edges are built in one module (the composition root),
the layers import downwards only, the core reads no clock and does no I/O, there is one clock, and
production code does not import the fake aql account."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "forwardd"
MODULES = sorted(PACKAGE.rglob("*.py"))
ROOT_MODULE = PACKAGE / "service" / "services.py"
# Constructors of the edges: only the composition root calls them.
EDGES = {"AqlClient", "Journal", "open_journal", "Sources", "Alerts", "Reconciler", "Planner", "WorkerExpander",
         "StateDir", "SimulatedTransport", "simulated_account", "Services.__init__", "Notifier", "WebServer",
         "Database", "PgJournal", "PgOverrides", "Lease", "SqliteOverrides"}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imports(path: Path) -> set[str]:
    """Absolute names of the forwardd modules ``path`` imports (relative imports resolved)."""
    mod = _module(path).split(".")
    package = mod[:-1] if path.name != "__init__.py" else mod
    out = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.startswith("forwardd"):
                out.add(name)
                out.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("forwardd"))
    return out


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


def test_edges_are_built_only_in_the_composition_root() -> None:
    builders = {p: _calls(p) & EDGES for p in MODULES}
    assert builders[ROOT_MODULE] >= {"AqlClient", "open_journal", "Sources", "Alerts", "Reconciler", "Planner",
                                     "WorkerExpander", "StateDir", "WebServer"}
    # a module may use its own class (open_journal makes a Journal); nothing else builds an edge
    own = {p: {n.name for n in _tree(p).body if isinstance(n, (ast.ClassDef, ast.FunctionDef))} for p in MODULES}
    elsewhere = {str(p.relative_to(ROOT)): sorted(c - own[p]) for p, c in builders.items()
                 if c - own[p] and p != ROOT_MODULE}
    assert elsewhere == {}, elsewhere


@pytest.mark.parametrize("command", ["run", "apply", "status", "history", "simulate", "plan", "check"])
def test_every_command_gets_the_services(command: str) -> None:
    tree = _tree(PACKAGE / "cli.py")
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == f"cmd_{command}")
    source = ast.unparse(fn)
    assert "_run(" in source or "run_daemon(" in source  # _run opens Services; the daemon opens its own
    daemon = (PACKAGE / "service" / "daemon.py").read_text()
    assert daemon.count("Services.open(") == 2  # start-up and reload


def test_layers_import_downwards_only() -> None:
    order = ["core", "calendars", "aql", "store", "notify", "web", "service"]
    for path in MODULES:
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2:
            continue
        layer = parts[0]
        if layer not in order:
            continue  # the shared top-level modules (config, cli, errors, ...)
        for name in _imports(path):
            bits = name.split(".")
            if len(bits) > 1 and bits[1] in order and bits[1] != layer:
                assert order.index(bits[1]) < order.index(layer), f"{path.relative_to(ROOT)} imports {name}"
        if layer == "core":
            assert all(n.split(".")[1] in ("core", "config", "errors") for n in _imports(path) if "." in n), \
                f"{path.relative_to(ROOT)}: the core imports only the core, config and errors"


def test_the_core_reads_no_clock_and_does_no_io() -> None:
    forbidden_calls = {"now", "utcnow", "today", "monotonic", "perf_counter", "open", "read_text", "read_bytes", "write_text",
                       "write_bytes", "urlopen", "sleep"}
    forbidden_imports = {"socket", "httpx", "sqlite3", "subprocess", "os", "time", "asyncio", "pathlib"}
    for path in sorted((PACKAGE / "core").glob("*.py")):
        tree = _tree(path)
        used = _calls(path) & forbidden_calls
        assert not used, f"{path.name} calls {used}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & forbidden_imports, path.name
            if isinstance(node, ast.ImportFrom) and not node.level:
                assert (node.module or "").split(".")[0] not in forbidden_imports, path.name


def test_one_clock() -> None:
    readers = [str(p.relative_to(ROOT)) for p in MODULES
               if any(s in p.read_text() for s in ("datetime.now(", "dt.datetime.now(", "time.time(", "date.today("))]
    assert readers == ["forwardd/clock.py"]


def test_production_code_does_not_import_the_fake() -> None:
    fake = {"forwardd.aql.account", "forwardd.aql.fake", "forwardd.aql.simulated"}
    for path in MODULES:
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "aql" and rel.name in ("account.py", "fake.py", "simulated.py"):
            continue
        hits = _imports(path) & fake
        if not hits:
            continue
        # allowed: the composition root (for url = "simulated"), the simulator, and `forwardd fake-aql`,
        # each importing it inside the function that needs it, never at module level
        assert str(rel) in ("service/services.py", "service/simulate.py", "cli.py"), (str(rel), hits)
        if str(rel) != "service/simulate.py":
            top = {n.module for n in _tree(path).body if isinstance(n, ast.ImportFrom)}
            assert not any(m and ("simulated" in m or "account" in m or "fake" in m) for m in top), str(rel)
