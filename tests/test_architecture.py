"""The architecture, checked on the source's syntax (never by searching for strings): the edges are built
in one module (the composition root); the layers of DESIGN.md import downwards only, the core nothing
but the core; the core reads no clock and does no I/O; the wall clock is read in one place; the
daemon and the simulator run one engine, and the simulator keeps no rule of its own; no module holds
more than one room's worth; production code does not import the fake aql account; and no code
decides on an error's wording."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "forwardd"
MODULES = sorted(PACKAGE.rglob("*.py"))
ROOT_MODULE = PACKAGE / "service" / "services.py"
# Constructors of the edges: only the composition root calls them.
EDGES = {"AqlClient", "AqlCarrier", "Journal", "open_journal", "Sources", "Alerts", "Reconciler", "Planner",
         "WorkerExpander", "StateDir", "SimulatedTransport", "simulated_account", "Services.__init__", "Notifier",
         "WebServer", "Database", "PgJournal", "PgOverrides", "Lease", "SqliteOverrides", "RequestBudget"}
# DESIGN.md's layers, in dependency order: each imports only those before it (and the shared modules)
LAYERS = ["core", "config", "calendars", "aql", "store", "notify", "web", "service"]
SHARED = {"errors", "clock", "files", "aio", "logs"}  # imported by any layer but the core; they import no layer
MAX_LINES = 400


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imports(path: Path) -> set[str]:
    """Absolute names of the forwardd modules ``path`` imports (relative imports resolved), anywhere in it
    (a function's own import counts as much as one at the top)."""
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


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def test_edges_are_built_only_in_the_composition_root() -> None:
    builders = {p: _calls(p) & EDGES for p in MODULES}
    assert builders[ROOT_MODULE] >= {"AqlClient", "AqlCarrier", "open_journal", "Sources", "Alerts", "Reconciler",
                                     "Planner", "WorkerExpander", "StateDir", "WebServer", "RequestBudget"}
    # a module may use its own class (open_journal makes a Journal); nothing else builds an edge
    own = {p: {n.name for n in _tree(p).body if isinstance(n, (ast.ClassDef, ast.FunctionDef))} for p in MODULES}
    elsewhere = {str(p.relative_to(ROOT)): sorted(c - own[p]) for p, c in builders.items()
                 if c - own[p] and p != ROOT_MODULE}
    assert elsewhere == {}, elsewhere


def _commands() -> dict[str, ast.FunctionDef]:
    """Every ``cmd_*`` function of the command-line package, by command."""
    return {n.name.removeprefix("cmd_"): n for p in sorted((PACKAGE / "cli").glob("*.py")) for n in _tree(p).body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("cmd_")}


@pytest.mark.parametrize("command", ["run", "apply", "status", "history", "simulate", "plan", "check", "override"])
def test_every_command_gets_the_services(command: str) -> None:
    fn = _commands()[command]
    called = {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert called & {"with_services", "run_daemon", "simulate"}  # each opens Services (the daemon, simulate their own)


def test_the_commands_are_found_in_the_package() -> None:
    assert set(_commands()) == {"run", "apply", "status", "history", "simulate", "plan", "check", "override",
                                "fake_aql", "init"}


def _opens_services(path: Path) -> int:
    return sum(1 for n in ast.walk(_tree(path)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
               and n.func.attr == "open" and isinstance(n.func.value, ast.Name) and n.func.value.id == "Services")


def test_the_daemon_the_reload_and_the_simulator_open_the_services_once_each() -> None:
    service = PACKAGE / "service"
    assert {p.name: _opens_services(p) for p in service.glob("*.py") if _opens_services(p)} == \
        {"daemon.py": 1, "reload.py": 1, "simulate.py": 1}


def test_layers_import_downwards_only() -> None:
    for path in MODULES:
        layer = _layer(path)
        for name in _imports(path):
            bits = name.split(".")
            if len(bits) == 1:
                continue  # the package itself: its version
            target = bits[1]
            where = f"{path.relative_to(ROOT)} imports {name}"
            if layer == "core":
                assert target == "core", f"{where}: the core imports only the core"
            elif layer in LAYERS:
                assert target == layer or target in SHARED or (
                    target in LAYERS and LAYERS.index(target) < LAYERS.index(layer)), where
            elif layer in SHARED:
                assert target in SHARED, f"{where}: a shared module imports no layer"
            else:
                assert layer in ("cli", "__main__", "__init__"), f"{path.relative_to(ROOT)} is in no layer"


def test_the_core_reads_no_clock_and_does_no_io() -> None:
    forbidden_calls = {"now", "utcnow", "today", "monotonic", "perf_counter", "open", "read_text", "read_bytes",
                       "write_text", "write_bytes", "urlopen", "sleep"}
    forbidden_imports = {"socket", "httpx", "sqlite3", "subprocess", "os", "time", "asyncio", "pathlib", "threading"}
    for path in sorted((PACKAGE / "core").glob("*.py")):
        tree = _tree(path)
        used = _calls(path) & forbidden_calls
        assert not used, f"{path.name} calls {used}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & forbidden_imports, path.name
            if isinstance(node, ast.ImportFrom) and not node.level:
                assert (node.module or "").split(".")[0] not in forbidden_imports, path.name


WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
              ("time", "time"), ("time", "time_ns"), ("time", "localtime"), ("time", "gmtime")}


def _wall_clock_reads(path: Path) -> list[int]:
    """Lines that read the wall clock: ``datetime.now()``, ``dt.datetime.utcnow()``, ``date.today()``,
    ``time.time()``... (found by the call's syntax: the attribute and what it is taken of)."""
    out = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else ""
            if (name, node.func.attr) in WALL_CLOCK:
                out.append(node.lineno)
    return out


def test_one_clock() -> None:
    readers = {str(p.relative_to(ROOT)): lines for p in MODULES if (lines := _wall_clock_reads(p))}
    assert list(readers) == ["forwardd/clock.py"], readers


def test_the_wall_clock_finder_finds_each_spelling(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import datetime as dt\nimport time\nfrom datetime import date, datetime\n"
                      "a = dt.datetime.now(dt.timezone.utc)\nb = datetime.utcnow()\nc = date.today()\nd = time.time()\n"
                      "e = clock.now()\nf = 'datetime.now('\n")
    assert _wall_clock_reads(sample) == [4, 5, 6, 7]


def test_one_engine_runs_the_daemon_and_the_simulator() -> None:
    """The daemon's jobs run in the engine on an injected clock, and the simulator runs that engine: it
    imports it, and keeps no schedule, no reconciling and no pacing of its own."""
    simulate = PACKAGE / "service" / "simulate.py"
    daemon = PACKAGE / "service" / "daemon.py"
    for path in (simulate, daemon):
        assert "forwardd.service.engine" in _imports(path), path.name
        assert not _imports(path) & {"forwardd.service.budget", "forwardd.service.lanes", "forwardd.service.reconcile"
                                     } - ({"forwardd.service.lanes", "forwardd.service.reconcile"} if path == simulate
                                          else set()), path.name
        names = {n.id for n in ast.walk(_tree(path)) if isinstance(n, ast.Name)} | {
            n.attr for n in ast.walk(_tree(path)) if isinstance(n, ast.Attribute)}
        modules = {a.name for n in ast.walk(_tree(path)) if isinstance(n, ast.Import) for a in n.names} | {
            n.module or "" for n in ast.walk(_tree(path)) if isinstance(n, ast.ImportFrom)}
        assert not modules & {"heapq", "sched", "apscheduler.schedulers.asyncio"}, path.name
        rules = {"reconcile", "submit", "schedule_check", "retry_later", "DriftGrid", "RetryQueue", "RequestBudget",
                 "reserve", "program_at", "needs_change"}
        assert not names & rules, (path.name, names & rules)
    # and nothing in the service layer sleeps on asyncio's own clock: every wait goes through the Clock
    for path in sorted((PACKAGE / "service").glob("*.py")):
        sleeps = [n.lineno for n in ast.walk(_tree(path)) if isinstance(n, ast.Call)
                  and isinstance(n.func, ast.Attribute) and n.func.attr == "sleep"
                  and isinstance(n.func.value, ast.Name) and n.func.value.id == "asyncio"]
        assert sleeps == [] or path.name == "timers.py", (path.name, sleeps)


# modules still waiting to be split (none left: the commands are a package now, a module per group)
STILL_LONG: set[str] = set()


def test_rooms_of_one_idea_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(long) <= STILL_LONG, long


def test_production_code_does_not_import_the_fake() -> None:
    fake = {"forwardd.aql.account", "forwardd.aql.fake", "forwardd.aql.simulated"}
    for path in MODULES:
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "aql" and rel.name in ("account.py", "fake.py", "simulated.py"):
            continue
        hits = _imports(path) & fake
        if not hits:
            continue
        # allowed: the composition root (for url = "simulated"), the simulator, `forwardd fake-aql` and
        # `forwardd init --url simulated` (the example account), each importing it inside the function
        # that needs it, except the simulator
        assert str(rel) in ("service/services.py", "service/simulate.py", "cli/run.py", "cli/init.py"), (str(rel), hits)
        if str(rel) != "service/simulate.py":
            top = {n.module for n in _tree(path).body if isinstance(n, ast.ImportFrom)}
            assert not any(m and ("simulated" in m or "account" in m or "fake" in m) for m in top), str(rel)


def test_no_code_decides_on_an_errors_wording() -> None:
    """``"aql rejected" in out.error`` is how a branch on a message looks: a string literal tested against
    forwardd's own ``error``/``message`` fields. Decisions go by the error's class or kind."""
    found = []
    for path in MODULES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn, ast.Eq)) for op in node.ops):
                left_text = isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
                right = node.comparators[0]
                on_error = isinstance(right, ast.Attribute) and right.attr in ("error", "message", "reason")
                if left_text and on_error:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
