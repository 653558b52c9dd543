"""What the benchmarks measure of processes, measured so that no figure is another process's: a child's
own CPU and peak RSS (``os.wait4`` on that child), a running process's own high-water mark (VmHWM, reset
when it was exec'd), and figures as medians with min and max."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence


def run_measured(args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None,
                 ok: tuple[int, ...] = (0,)) -> tuple[float, float, str]:
    """Run a command to its end; return its own (CPU seconds, peak RSS MB, stdout). Raises
    RuntimeError when it exits with a code outside ``ok``."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(args[:4])} ... exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def hwm_mb(pid: int | str = "self") -> float:
    """A running process's own peak RSS in MB (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int | str = "self") -> float:
    """A running process's RSS now, in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def calendar_worker(parent: int) -> int | None:
    """The pid of ``parent``'s calendar worker process, if it has one."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().split()[3]) == parent \
                    and b"forwardd.calendars.worker" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


def spread(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """The median of several runs, with min and max."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}
