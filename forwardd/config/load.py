"""Loading a config file, as borgmatic does: the schema pass (types, formats, unknown keys, in
``models``) and a logical pass (names that must refer to something defined, numbers that must be
unique, files that must exist) run together, and every problem is reported at once at its key path, in
one ConfigError."""

from __future__ import annotations

import difflib
import re
import stat
import tomllib
import warnings
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..core.phone import PhoneError, normalise
from ..errors import ConfigError
from .models import DEFAULT_ACCOUNT, Config
from .types import OfficeHours

# Keys that existed once: a config that still has one is told what replaced it.
REPLACED: dict[str, str] = {
    "daemon.reconcile_every": "replaced by daemon.drift_check_every (default 1h, at least 1m): each number is read "
                              "that often for hand-made changes, spread over the interval; changes go at their time",
    "alerts.webhook": "alerts now go to apprise URLs: notify = [\"json://host:port/path\"] (a JSON POST)",
    "alerts.email": "alerts now go to apprise URLs: notify = [\"mailto://host:port?from=...&to=...\"]",
}


class ConfigWarning(UserWarning):
    """Something in the config works but deserves a look (shown by every command)."""


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "literal[", "union[", "str", "int")) or "[" in str(part):
            continue  # pydantic's internal branch labels say nothing to a user
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose keys live at ``loc`` (for "did you mean"), following fields, lists and tables."""
    annotation: Any = Config
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        model = _inner_model(annotation)
        if isinstance(part, int) or model is None:
            if model is None:
                return None
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        if _is_table(annotation) and parts:
            parts.pop(0)  # the table's own key (a calendar's or a person's name)
    return _inner_model(annotation)


def _is_table(annotation: Any) -> bool:
    if get_origin(annotation) is dict:
        return True
    return any(_is_table(a) for a in get_args(annotation) if a is not type(None))


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside ``X``, ``X | None``, ``list[X]``, ``dict[str, X]``, ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _unknown_key_reason(loc: tuple[Any, ...]) -> str:
    path = _loc(loc)
    generic = re.sub(r"\[\d+\]", "", path)
    if path in REPLACED or generic in REPLACED:
        return f"is no longer a setting: {REPLACED.get(path) or REPLACED[generic]}"
    model = _model_at(loc[:-1])
    known = sorted(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else (f"; known keys: {', '.join(known)}" if known else "")
    return f"unknown key{hint}"


def _logical_problems(data: dict[str, Any], base_dir: Path) -> list[tuple[str, str]]:
    """Cross-field rules, checked on the raw document so that they are reported together with the
    schema's problems: names that must be defined, numbers that must be unique, files that must exist."""
    problems: list[tuple[str, str]] = []
    calendars: dict[str, Any] = data["calendars"] if isinstance(data.get("calendars"), dict) else {}
    people: dict[str, Any] = data["people"] if isinstance(data.get("people"), dict) else {}
    known = ", ".join(sorted(map(str, calendars))) or "none defined"
    numbers: list[Any] = data["numbers"] if isinstance(data.get("numbers"), list) else []
    seen: dict[str, int] = {}
    for i, n in enumerate(numbers):
        if not isinstance(n, dict):
            continue
        v = str(n.get("voipnumber"))
        if v in seen:
            problems.append((f"numbers[{i}].voipnumber", f"{v} is already configured at numbers[{seen[v]}]"))
        seen.setdefault(v, i)
        refs: list[tuple[str, Any]] = [("rota", n["rota"])] if n.get("rota") is not None else []
        for key in ("overrides", "holidays"):
            if isinstance(n.get(key), list):
                refs += [(f"{key}[{j}]", c) for j, c in enumerate(n[key])]
        for key, name in refs:
            if isinstance(name, str) and name not in calendars:
                close = difflib.get_close_matches(name, list(map(str, calendars)), n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f" ({known})"
                problems.append((f"numbers[{i}].{key}", f"calendar {name!r} is not defined in [calendars]{hint}"))
        fallback = n.get("fallback", "none")
        if isinstance(fallback, str) and fallback.strip().lower() not in ("none",):
            if not any(str(p).lower() == fallback.strip().lower() for p in people):
                try:
                    normalise(fallback)
                except PhoneError as err:
                    problems.append((f"numbers[{i}].fallback", f"{err}, nor a person in [people]"))
        has_rota = n.get("rota") is not None or bool(n.get("overrides"))
        if not has_rota and (not isinstance(fallback, str) or fallback.strip().lower() == "none") \
                and not _office_all_week(n.get("office_hours")):
            problems.append((f"numbers[{i}]", "has no rota, no overrides and no fallback: it would never forward"))
    for name, c in calendars.items():
        if not isinstance(c, dict) or not isinstance(c.get("source"), str):
            continue
        src = c["source"]
        if not re.match(r"^https?://", src) and not (base_dir / src).resolve().is_file():
            problems.append((f"calendars.{name}.source", f"file {(base_dir / src).resolve()} does not exist"))
    for person in people:
        if not re.search(r"\w", str(person)):
            problems.append((f"people.{person}", "a person's name needs at least one letter or digit"))
    return problems + _account_problems(data)


def _office_all_week(rules: Any) -> bool:
    """Whether office hours cover every minute of every day: a number meant never to forward (``forwardd
    init`` writes one so for a number not forwarding today), not one that forgot its rota."""
    if not isinstance(rules, list):
        return False
    spans: dict[int, list[tuple[int, int]]] = {d: [] for d in range(7)}
    for text in rules:
        try:
            rule = OfficeHours.parse(text) if isinstance(text, str) else None
        except ValueError:
            return False
        if rule is None:
            return False
        end = 1440 if rule.end is None else rule.end.hour * 60 + rule.end.minute
        for day in rule.weekdays:
            spans[day].append((rule.start.hour * 60 + rule.start.minute, end))
    for day_spans in spans.values():
        covered = 0
        for a, b in sorted(day_spans):
            if a > covered:
                return False
            covered = max(covered, b)
        if covered < 1440:
            return False
    return True


def _account_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Every number names an account that exists; without an [aql] table, where [accounts] has some,
    every number must name one (forwardd never sends a line to an account nobody meant)."""
    problems: list[tuple[str, str]] = []
    accounts: dict[str, Any] = data["accounts"] if isinstance(data.get("accounts"), dict) else {}
    has_aql = "aql" in data
    names = sorted(map(str, accounts)) + ([DEFAULT_ACCOUNT] if has_aql or not accounts else [])
    if DEFAULT_ACCOUNT in accounts and has_aql:
        problems.append((f"accounts.{DEFAULT_ACCOUNT}", f"'{DEFAULT_ACCOUNT}' is the name of the [aql] table's account; "
                                                        "give this one another name"))
    for name in accounts:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", str(name)):
            problems.append((f"accounts.{name}", "an account's name is letters, digits, '_' and '-' (at most 40)"))
    numbers: list[Any] = data["numbers"] if isinstance(data.get("numbers"), list) else []
    for i, n in enumerate(numbers):
        if not isinstance(n, dict):
            continue
        account = n.get("account")
        if account is None:
            if accounts and not has_aql:
                problems.append((f"numbers[{i}].account", "no account named, and there is no [aql] table to fall "
                                                          f"back on; name one of: {', '.join(names)}"))
        elif isinstance(account, str) and account not in names:
            close = difflib.get_close_matches(account, names, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f" ({', '.join(names) or 'none defined'})"
            problems.append((f"numbers[{i}].account", f"account {account!r} is not defined in [accounts]{hint}"))
    return problems


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file. Raises ConfigError listing every problem at its key path."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError([("", f"cannot read {path}: {err.strerror}")], str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError([("", f"not valid TOML: {err}")], str(path)) from None
    return config_from_dict(data, base_dir=path.parent.resolve(), path=path, env=env)


def config_from_dict(
    data: dict[str, Any], base_dir: Path = Path("."), path: Path | None = None, env: dict[str, str] | None = None
) -> Config:
    """Validate an already-parsed TOML document. Raises ConfigError with every problem at once.

    ``env`` is accepted for symmetry with ``aql_password``; validation itself reads no environment."""
    where = str(path) if path else None
    for reserved in ("base_dir", "path"):
        if reserved in data:
            raise ConfigError([(reserved, "unknown key")], where)
    problems: list[tuple[str, str]] = []
    cfg: Config | None = None
    try:
        cfg = Config.model_validate({**data, "base_dir": base_dir, "path": path})
    except ValidationError as err:
        for e in err.errors():
            if e["type"] == "extra_forbidden":
                problems.append((_loc(e["loc"]), _unknown_key_reason(e["loc"])))
            else:
                loc = e["loc"]
                if loc[:1] == ("people",) and loc[-1:] == ("phone",) and isinstance(
                        data.get("people", {}).get(loc[1]), (str, int)):
                    loc = loc[:-1]  # the short form: people.alice = "...", so the key is people.alice
                problems.append((_loc(loc), e["msg"].removeprefix("Value error, ")))
    problems += [p for p in _logical_problems(data, base_dir) if p not in problems]
    if problems or cfg is None:
        raise ConfigError(problems, where)
    inline = cfg.aql.password is not None or any(a.password is not None for a in cfg.accounts.values())
    if inline and path is not None:
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.warn(
                f"{path} holds an aql password inline and can be read by other users; "
                f"use password_file or chmod 600 {path}",
                ConfigWarning,
                stacklevel=2,
            )
    return cfg
