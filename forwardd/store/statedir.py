"""The state directory: where the journal, the calendar cache and the simulated account live, and the
lock that lets only one ``run`` or ``apply`` use it at a time. Read-only commands never take the lock.

The lock file says who holds it: the pid, and the config it runs (``config.location.LockRecord``), so
that a command typed in a shell can find the daemon running on its config, and say which one will
apply what it writes (``config.location.lock_holder``, ``daemons_on``)."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from ..config.location import LOCK_NAME, LockRecord, read_lock
from ..errors import ForwarddError
from ..files import DIR_MODE, atomic_write, private_dir

_ABOUT: dict[str, str | None] = {"config": None, "command": None}  # what this process's lock says of it


def describe_lock(config: Path | str | None, command: str) -> None:
    """What the locks this process takes will record: the config it runs (as a real path) and the command."""
    _ABOUT.update(config=os.path.realpath(config) if config is not None else None, command=command)
_KERNEL_FS = (Path("/proc"), Path("/sys"), Path("/dev"))


class StateDirError(ForwarddError):
    """The state directory cannot be used; the message names the path and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"state directory {path}: {reason}")


class AlreadyRunning(ForwarddError):
    def __init__(self, path: Path, pid: int | None) -> None:
        self.path, self.pid = path, pid
        super().__init__(f"another forwardd (pid {pid if pid is not None else '?'}) is running on {path}")


def check_state_dir(path: Path) -> None:
    """Make sure ``path`` is a directory forwardd can write (creating it, 0700, if missing).

    Raises StateDirError naming the path and the reason: under a kernel filesystem, a file, not
    writable. Writes and removes a probe file, because permissions alone do not say (root, read-only
    mounts, full disks)."""
    resolved = path.resolve()
    for kernel in _KERNEL_FS:
        if resolved == kernel or kernel in resolved.parents:
            raise StateDirError(path, f"is under {kernel}, a kernel filesystem, not a place for files")
    if resolved.exists() and not resolved.is_dir():
        raise StateDirError(path, "is a file, not a directory")
    try:
        private_dir(resolved)
        probe = resolved / f".probe-{os.getpid()}"
        atomic_write(probe, b"ok")
        probe.unlink()
    except OSError as err:
        raise StateDirError(path, f"is not writable ({err.strerror or err})") from None


def write_problem(path: Path) -> str | None:
    """Why nothing can be written in ``path`` now (a full disk, a read-only mount), or None."""
    try:
        check_state_dir(path)
    except StateDirError as err:
        return str(err)
    return None


def give_back(path: Path) -> int:
    """Hand what root made in ``path`` back to the folder's owner: a command run as root on the service's
    state directory (``sudo forwardd override add``, ``status``) must not leave a journal, a write-ahead
    log or a calendar's cached copy that the service's own user (``DynamicUser``) cannot write. Does
    nothing unless run as root on a folder someone else owns; returns how many entries changed hands."""
    try:
        if os.geteuid() != 0 or not path.is_dir():
            return 0
        owner = path.stat()
    except OSError:
        return 0
    if owner.st_uid == 0:
        return 0
    changed = 0
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            entry = os.path.join(folder, name)
            try:
                if os.lstat(entry).st_uid == 0:
                    os.lchown(entry, owner.st_uid, owner.st_gid)
                    changed += 1
            except OSError:
                continue  # (gone meanwhile: a probe, a temporary file)
    return changed


class StateDir:
    """A usable state directory, optionally locked for this process (``lock()``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def lock(self, config: Path | str | None = None) -> None:
        """Take the exclusive lock, at once or not at all, and record this process in it (its pid, and
        ``config``, else the one ``describe_lock`` named). Raises AlreadyRunning naming the holder's pid."""
        lock_path = self.path / LOCK_NAME
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = read_lock(lock_path)
                raise AlreadyRunning(self.path, holder.pid if holder else None) from None
            raise StateDirError(self.path, f"cannot lock {lock_path} ({err.strerror})") from None
        os.ftruncate(fd, 0)
        mine = os.path.realpath(config) if config is not None else _ABOUT["config"]
        os.write(fd, LockRecord(os.getpid(), mine, _ABOUT["command"]).text().encode())
        self._lock_fd = fd

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None


__all__ = ["AlreadyRunning", "DIR_MODE", "LOCK_NAME", "StateDir", "StateDirError", "check_state_dir", "describe_lock",
           "give_back"]
