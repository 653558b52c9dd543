"""Files in the state directory: private (0600 files, 0700 folders, whatever the umask, because they
hold phone numbers) and written atomically (a unique temporary name, fsync, rename), so that a crash or
a full disk leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and the parents it lacks, each 0700 too) if needed and make it 0700. Raises OSError."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        folder.chmod(DIR_MODE)  # mkdir's mode is cut by the umask
    if path.stat().st_mode & 0o777 != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (mode 0600). Raises OSError; the old file is then untouched."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def make_private(path: Path) -> None:
    """Tighten an existing file to 0600 (a file made by an older version, or by SQLite)."""
    try:
        if path.exists() and path.stat().st_mode & 0o777 != FILE_MODE:
            path.chmod(FILE_MODE)
    except OSError:
        pass
