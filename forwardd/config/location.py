"""Where a config's state lives: one decision, made the same way by the daemon and by every command, so
that an override typed in a shell lands where the running daemon reads.

In order:
1. ``state_dir`` in the config;
2. ``$STATE_DIRECTORY`` (systemd sets it for the service; a shell may set it to choose);
3. the state directory of a forwardd running on this config, found by the lock it holds there (the
   lock file records its pid and config, ``forwardd.lock``); two of them in two places are refused, and
   so is one of another user whose state directory this user cannot see (named, with what to do);
4. the ``StateDirectory=`` of the systemd unit whose ExecStart runs this config (``unit``);
5. the user's own default, ``$XDG_STATE_HOME/forwardd`` (``~/.local/state/forwardd``).

The running daemons are found through ``/proc/locks`` (the locks held, by inode and pid) and each
holder's open files; only the lock file's own words are believed, and only while its lock is held.
"""

from __future__ import annotations

import json
import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import ForwarddError
from .unit import service_unit

LOCK_NAME = "forwardd.lock"
HOW_TO_CHOOSE = "set state_dir in the config, or run the command with STATE_DIRECTORY=DIR"


class StateDirUnknown(ForwarddError):
    """The state directory cannot be decided (forwardd runs on this config in two places)."""


@dataclass(frozen=True)
class LockRecord:
    """What a lock file says of the process holding it."""

    pid: int
    config: str | None = None  # the config it runs (a real path)
    command: str | None = None  # run, apply

    def text(self) -> str:
        """The lock file's contents: the pid on the first line (as before), then the rest as JSON."""
        return f"{self.pid}\n{json.dumps({'config': self.config, 'command': self.command})}\n"


def read_lock(path: Path) -> LockRecord | None:
    """The record in a lock file, or None (no file, unreadable, empty)."""
    try:
        lines = path.read_text().splitlines()
        pid = int(lines[0].split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        more = json.loads(lines[1]) if len(lines) > 1 else {}
    except ValueError:
        more = {}
    if not isinstance(more, dict):
        more = {}
    return LockRecord(pid, more.get("config"), more.get("command"))


@dataclass(frozen=True)
class Daemon:
    """A forwardd process holding the lock of a state directory."""

    pid: int
    state_dir: Path
    config: str | None
    command: str | None = None


def lock_holder(state_dir: Path) -> Daemon | None:
    """The forwardd holding ``state_dir``'s lock now, or None (nobody does, or the lock cannot be read)."""
    lock = state_dir / LOCK_NAME
    record = read_lock(lock)
    if record is None:
        return None
    try:
        st = lock.stat()
    except OSError:
        return None
    held = _flocks()
    if held is None:  # no /proc/locks here: a live process of that pid will have to do
        alive = _alive(record.pid)
    else:  # the lock on this very file (its device, or else its recorded holder, and its inode)
        alive = any(ino == st.st_ino and (dev == (os.major(st.st_dev), os.minor(st.st_dev)) or pid == record.pid)
                    for pid, dev, ino in held)
    return Daemon(record.pid, state_dir, record.config, record.command) if alive else None


def daemons_on(config: Path | str) -> tuple[list[Daemon], list[Hidden]]:
    """The forwardd processes running on ``config``: those this user can see (one per state directory),
    and those of other users whose command line names ``config`` but whose open files are not ours to see."""
    want = os.path.realpath(config)
    found: dict[Path, Daemon] = {}
    hidden: list[Hidden] = []
    for pid, _, inode in _flocks() or []:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            fds = os.listdir(fd_dir)
        except PermissionError:
            if _runs(pid, want):
                hidden.append(Hidden(pid, _owner(pid)))
            continue
        except OSError:
            continue  # (gone meanwhile)
        for fd in fds:
            try:
                target = Path(os.readlink(fd_dir / fd))
            except OSError:
                continue
            if target.name != LOCK_NAME:
                continue
            record = read_lock(target)
            try:
                same_file = target.stat().st_ino == inode
            except OSError:
                same_file = False
            if record is not None and same_file and record.pid == pid and record.config is not None \
                    and os.path.realpath(record.config) == want:
                found.setdefault(target.parent, Daemon(pid, target.parent, record.config, record.command))
    return list(found.values()), hidden


@dataclass(frozen=True)
class Hidden:
    """A forwardd of another user running on this config: its pid and its user."""

    pid: int
    user: str


def _runs(pid: int, config: str) -> bool:
    """Whether process ``pid``'s command line is ``forwardd run`` on ``config`` (given as an absolute path)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    forwardd = any(os.path.basename(a) == "forwardd" for a in argv)
    given = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"), None) or next(
        (a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    return forwardd and "run" in argv and given is not None and os.path.isabs(given) \
        and os.path.realpath(given) == config


def _owner(pid: int) -> str:
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return "?"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _flocks() -> list[tuple[int, tuple[int, int], int]] | None:
    """(pid, (major, minor), inode) of every exclusive flock held (not waited for) on this machine; None without /proc/locks."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 6 or words[1] != "FLOCK" or words[3] != "WRITE":
            continue  # (a waiter's line reads "N: -> FLOCK ...")
        try:
            major, minor, inode = words[5].split(":")
            out.append((int(words[4]), (int(major, 16), int(minor, 16)), int(inode)))
        except ValueError:
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class StateLocation:
    """The state directory, and why it is that one (in words, for messages)."""

    path: Path
    why: str
    chosen: bool  # said by the config or the environment (not found, nor a default)


def default_state_dir(env: Mapping[str, str]) -> tuple[Path, str]:
    xdg = env.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "forwardd", "the default, $XDG_STATE_HOME/forwardd"
    return Path.home() / ".local" / "state" / "forwardd", "the default, ~/.local/state/forwardd"


def locate(state_dir: Path | None, base_dir: Path, config: Path | None, env: Mapping[str, str]) -> StateLocation:
    """Where the state of the config at ``config`` (with ``state_dir`` from it) lives, by the order in the
    module's docstring. Raises StateDirUnknown when forwardd runs on this config in two places."""
    if state_dir is not None:
        return StateLocation((base_dir / state_dir).resolve(), "set by state_dir in the config", True)
    given = env.get("STATE_DIRECTORY")
    if given:
        return StateLocation(Path(given.split(":")[0]), "set by $STATE_DIRECTORY", True)
    if config is not None:
        running, hidden = daemons_on(config)
        if not running and hidden:
            h = hidden[0]
            me = _owner(os.getpid())
            raise StateDirUnknown(f"forwardd (pid {h.pid}, user {h.user}) runs on {config}, but user {me} cannot see "
                                  f"its state directory: run this as root (sudo) or as {h.user}, or {HOW_TO_CHOOSE}")
        if len(running) == 1:
            d = running[0]
            return StateLocation(d.state_dir, f"where forwardd (pid {d.pid}) runs on this config", False)
        if running:
            where = "; ".join(f"pid {d.pid} on {d.state_dir}" for d in running)
            raise StateDirUnknown(f"forwardd runs on {config} in {len(running)} state directories ({where}): "
                                  f"say which one: {HOW_TO_CHOOSE}")
        unit = service_unit(config, env)
        if unit is not None and unit.state_directory is not None:
            return StateLocation(unit.state_directory, f"the StateDirectory= of {unit.name}, which runs this config",
                                 False)
    path, why = default_state_dir(env)
    return StateLocation(path, why, False)
