"""The systemd unit that runs a config, read as far as forwardd needs it, so that a command typed in a
shell finds what systemd gives the service: its state directory (``StateDirectory=``, under
``/var/lib/private`` with ``DynamicUser=yes``) and its credentials (``LoadCredential=``).

A config is *the service's* when a ``forwardd*.service`` unit in systemd's search path (or
``$SYSTEMD_UNIT_PATH``, as systemd itself reads it) runs ``forwardd run`` on that very file (``--config
FILE``, else ``$FORWARDD_CONFIG`` from ``Environment=``, else ``/etc/forwardd/forwardd.toml``). Its
drop-ins (``forwardd.service.d/*.conf``) count, as they do for systemd.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

DEFAULT_CONFIG = "/etc/forwardd/forwardd.toml"
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
             "/lib/systemd/system")
CREDSTORES = ("/etc/credstore", "/run/credstore", "/usr/local/lib/credstore", "/usr/lib/credstore")
STATE_ROOT = Path("/var/lib")
_LISTS = {"LoadCredential", "StateDirectory", "ConfigurationDirectory", "Environment"}


@dataclass(frozen=True)
class ServiceUnit:
    """What a unit that runs forwardd gives it."""

    path: Path  # the unit file
    config: Path  # the config its ExecStart runs
    state_directory: Path | None  # where systemd keeps StateDirectory= (the real folder, not a symlink)
    credentials: dict[str, Path | None] = field(default_factory=dict)  # LoadCredential=: name -> file (None: unfound)

    @property
    def name(self) -> str:
        return self.path.name


def unit_dirs(env: Mapping[str, str]) -> list[Path]:
    """systemd's unit search path: ``$SYSTEMD_UNIT_PATH`` (an empty last entry adds the usual ones)."""
    given = env.get("SYSTEMD_UNIT_PATH")
    if given is None:
        return [Path(d) for d in UNIT_DIRS]
    parts = given.split(":")
    out = [Path(p) for p in parts if p]
    return out + [Path(d) for d in UNIT_DIRS] if parts[-1] == "" else out


def service_unit(config: Path | str, env: Mapping[str, str] | None = None) -> ServiceUnit | None:
    """The unit that runs ``forwardd run`` on ``config``, or None (no such unit, or none readable)."""
    env = os.environ if env is None else env
    want = os.path.realpath(config)
    dirs = unit_dirs(env)
    seen: set[str] = set()
    for d in dirs:
        try:
            names = sorted(p.name for p in d.glob("forwardd*.service") if "@" not in p.name)
        except OSError:
            continue
        for name in names:
            if name in seen:
                continue  # the first directory of the search path wins, as for systemd
            seen.add(name)
            keys = _read([d / name, *_dropins(dirs, name)])
            unit = _unit(d / name, keys)
            if unit is not None and os.path.realpath(unit.config) == want:
                return unit
    return None


def _dropins(dirs: list[Path], name: str) -> list[Path]:
    found: dict[str, Path] = {}
    for d in dirs:
        try:
            for p in (d / f"{name}.d").glob("*.conf"):
                found.setdefault(p.name, p)
        except OSError:
            continue
    return [found[k] for k in sorted(found)]


def _read(files: list[Path]) -> dict[str, list[str]]:
    """The [Service] settings of a unit and its drop-ins, in order (an empty value resets a list)."""
    keys: dict[str, list[str]] = {}
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        section = ""
        for line in text.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section != "Service" or "=" not in line:
                continue
            key, value = (s.strip() for s in line.split("=", 1))
            if key in _LISTS or key == "ExecStart":
                keys[key] = [] if not value else [*keys.get(key, []), value]
            else:
                keys[key] = [value]
    return keys


def _unit(path: Path, keys: dict[str, list[str]]) -> ServiceUnit | None:
    env = dict(_assignment(w) for v in keys.get("Environment", []) for w in _words(v) if "=" in w)
    conf_dirs = [w for v in keys.get("ConfigurationDirectory", []) for w in v.split()]
    config = None
    for exec_start in keys.get("ExecStart", []):
        argv = [_expand(w, conf_dirs) for w in _words(exec_start.lstrip("@-:+!|"))]
        if "run" in argv and any(os.path.basename(w) == "forwardd" or w == "forwardd" for w in argv):
            config = _option(argv, "--config") or env.get("FORWARDD_CONFIG") or DEFAULT_CONFIG
    if config is None:
        return None
    dynamic = (keys.get("DynamicUser") or ["no"])[-1].lower() in ("yes", "true", "on", "1")
    states = [w.split(":")[0] for v in keys.get("StateDirectory", []) for w in v.split()]
    state = (STATE_ROOT / ("private" if dynamic else "") / states[0]) if states else None
    credentials: dict[str, Path | None] = {}
    for v in keys.get("LoadCredential", []):
        name, _, source = v.partition(":")
        credentials[name] = Path(source) if source else _credstore(name)
    return ServiceUnit(path, Path(config), state, credentials)


def _words(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def _assignment(word: str) -> tuple[str, str]:
    key, _, value = word.partition("=")
    return key, value


def _option(argv: list[str], name: str) -> str | None:
    for i, w in enumerate(argv):
        if w == name and i + 1 < len(argv):
            return argv[i + 1]
        if w.startswith(name + "="):
            return w.split("=", 1)[1]
    return None


def _expand(word: str, conf_dirs: list[str]) -> str:
    """The specifiers and variables a forwardd ExecStart may use for its config's path."""
    conf = f"/etc/{conf_dirs[0]}" if conf_dirs else "/etc"
    for var in ("${CONFIGURATION_DIRECTORY}", "$CONFIGURATION_DIRECTORY"):
        word = word.replace(var, conf)
    return word.replace("%E", "/etc").replace("%S", str(STATE_ROOT)).replace("%%", "%")


def _credstore(name: str) -> Path | None:
    """``LoadCredential=NAME`` without a path: systemd looks in its credential stores."""
    return next((Path(d) / name for d in CREDSTORES if (Path(d) / name).exists()), None)
