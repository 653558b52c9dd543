"""The page's code in rooms of one idea: a module per view (week, status, history, health), none over
400 lines, and the people-facing words in ``forwardd.web.presentation``, which the command line can import
without Jinja2."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT

WEB = ROOT / "forwardd" / "web"


def test_one_view_per_module_and_none_over_400_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in WEB.glob("*.py")}
    assert {"week.py", "status.py", "history.py", "health.py"} <= set(sizes)
    assert {name: n for name, n in sizes.items() if n > 400} == {}
    for view in ("week", "status", "history", "health"):
        source = (WEB / f"{view}.py").read_text()
        assert f"def {view}_view(" in source or f"def {view}(" in source, view


def test_the_people_facing_words_import_without_jinja2() -> None:
    code = ("import sys, forwardd.web.presentation as p; "
            "assert 'jinja2' not in sys.modules, 'jinja2 imported'; "
            "assert {'Names', 'now_and_next', 'duration', 'when', 'entry_text'} <= set(dir(p))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
