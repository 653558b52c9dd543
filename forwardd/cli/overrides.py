"""``forwardd override add|list|cancel``: one-off overrides from the command line, written where the
running daemon reads (the state directory every command finds the same way), and careful with the
tired: an override longer than ``overrides.max_length`` needs ``--long``; one that shadows another says
so; ``add`` says which forwardd will apply it, or refuses when none will (unless ``--offline``)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..config import Config
from ..config.location import Daemon, lock_holder
from ..core.timeline import display_name
from ..core.words import duration, interval, span
from ..errors import ForwarddError
from ..service.services import Services
from ..store.overrides import Override
from .cluster import cluster_status
from .common import line_label, load, parse_when, person_words, state_words, when, with_services


def _who_am_i() -> str:
    """The person behind the command: the one who ran sudo, else the OS user."""
    import getpass

    return os.environ.get("SUDO_USER") or getpass.getuser()


def _number_arg(cfg: Config, text: str) -> str:
    for n in cfg.numbers:
        if text == n.voipnumber or (n.name and text.strip().lower() == n.name.lower()):
            return n.voipnumber
    known = ", ".join(n.label for n in cfg.numbers)
    raise ForwarddError(f"{text!r} is not a number in the config ({known})")


def _target_arg(cfg: Config, text: str) -> tuple[str | None, str | None]:
    """--to: a person, a phone number, or off. Returns (phone or None, person or None)."""
    from ..core.phone import PhoneError, normalise, number_allowed

    if text.strip().lower() == "off":
        return None, None
    person = cfg.person_named(text)
    if person is not None:
        return cfg.people[person].phone, person
    try:
        phone = normalise(text)
    except PhoneError:
        people = ", ".join(sorted(cfg.people)) or "none defined"
        raise ForwarddError(f"--to {text!r} is not a person in [people] ({people}), a phone number, or off") from None
    by_phone = {p.phone: name for name, p in cfg.people.items()}
    if phone in by_phone:
        return phone, by_phone[phone]
    fallbacks = {cfg.fallback_of(n)[0] for n in cfg.numbers}
    if phone not in fallbacks and not number_allowed(phone, cfg.allowed_numbers):
        raise ForwarddError(f"--to {text!r}: {phone} is not in [people] and does not match allowed_numbers "
                            f"({', '.join(cfg.allowed_numbers)}); add it to [people] to send calls there")
    return phone, None


def _who(cfg: Config, target: str | None, person: str | None) -> str:
    return "no forwarding" if target is None else person_words(cfg, target, display_name(person) if person else None)


def _override_line(cfg: Config, o: Override) -> str:
    state = f" (cancelled by {o.cancelled_by})" if o.cancelled_at else ""
    return (f"{o.id:>4}  {line_label(cfg, o.voipnumber)}: {_who(cfg, o.target, o.person)}, "
            f"{span(o.start, o.end, cfg.tz)}, {o.reason}{state}")


def _daemon(state_dir: Path) -> Daemon | None:
    """The forwardd run holding ``state_dir`` (not a forwardd apply, which holds it for one pass only)."""
    holder = lock_holder(state_dir)
    return holder if holder is not None and holder.command in (None, "run") else None


async def _who_applies(sv: Services) -> tuple[bool, str]:
    """Whether something will apply an override written now, and who (or why nothing will)."""
    if sv.db is not None:
        cluster = await cluster_status(sv)
        if cluster is not None and cluster["leader"] is not None:
            return True, f"{cluster['leader']} leads the cluster and will apply it within seconds"
        why = cluster["problem"] if cluster is not None and cluster["problem"] else "no instance leads the cluster"
        return False, f"{why}: nothing will apply this until one leads"
    assert sv.state is not None
    holder = _daemon(sv.state.path)
    if holder is None:
        return False, f"no forwardd is running on {sv.state.path}: nothing will apply this until one starts"
    other = (f" (running {holder.config}, not this config: it applies this only if the number is in it)"
             if holder.config and sv.cfg.path and os.path.realpath(holder.config) != os.path.realpath(sv.cfg.path)
             else "")
    return True, f"forwardd (pid {holder.pid}) on {sv.state.path} will apply it within seconds{other}"


def _shadows(cfg: Config, new: Override, old: Override) -> str:
    """How ``new`` shadows ``old`` (the newest wins where overrides overlap), in words."""
    a, b = max(new.start, old.start), min(new.end, old.end)
    whole = a <= old.start and b >= old.end
    line = (f"  it shadows override {old.id} ({_who(cfg, old.target, old.person)}, {span(old.start, old.end, cfg.tz)}, "
            f"{old.reason}) {'wholly' if whole else span(a, b, cfg.tz)}: where overrides overlap, the newest wins")
    if b < old.end:
        line += f"; override {old.id} applies again {span(b, old.end, cfg.tz)}"
    return line


async def _add(sv: Services, args: argparse.Namespace, number: str, phone: str | None, person: str | None,
               where: str) -> int:
    """``override add``, once the number and the target are known to be right."""
    cfg = sv.cfg
    store = sv.overrides
    assert store is not None
    now = sv.clock.now().replace(microsecond=0)
    start = parse_when(args.start, cfg, "--from", now) if args.start else now
    end = parse_when(args.until, cfg, "--until", now)
    if end <= now:
        raise ForwarddError(f"--until {args.until!r} is in the past")
    if end <= start:
        raise ForwarddError(f"--until {args.until!r} is not after --from ({when(start, cfg, year=True)})")
    longest = cfg.overrides.max_length
    if end - max(start, now) > longest and not args.long:
        raise ForwarddError(
            f"--until {args.until!r}: this override would last {duration((end - max(start, now)).total_seconds())}"
            f" ({span(max(start, now), end, cfg.tz)}), longer than overrides.max_length "
            f"({interval(longest.total_seconds())}); check the date, or add --long if you mean it")
    applies, who_applies = await _who_applies(sv)
    if not applies and not args.offline:
        raise ForwarddError(f"{who_applies}. Nothing was stored: start forwardd, or add --offline to store it "
                            f"for the next forwardd to apply (the state directory {cfg.resolve_state_dir()} is "
                            f"{where})")
    shadowed = [o for o in store.listed(now) if o.voipnumber == number and o.start < end and start < o.end]
    made = store.add(number, phone, person, start, end, args.note or "", _who_am_i(), now)
    if sv.journal is not None:
        sv.journal.record("override", now, number, None, id=made.id, reason=made.reason, to=phone,
                          person=person, start=start.isoformat(), end=end.isoformat(), note=made.note,
                          by=made.made_by)
    print(f"{line_label(cfg, number)}: {_who(cfg, phone, person)} {span(start, end, cfg.tz)} ({made.reason})")
    for old in shadowed:
        print(_shadows(cfg, made, old))
    stored = (f"the cluster database {sv.db.url}" if sv.db is not None
              else f"{sv.state.path if sv.state else '?'} ({where})")
    print(f"stored in {stored}")
    print(who_applies if applies else f"warning: {who_applies}")
    print(f"added override {made.id}")
    return 0


async def _cancel(sv: Services, args: argparse.Namespace) -> int:
    cfg = sv.cfg
    store = sv.overrides
    assert store is not None
    now = sv.clock.now().replace(microsecond=0)
    before = store.get(args.id)
    if before is None:
        raise ForwarddError(f"there is no override {args.id} (see forwardd override list --all)")
    if before.cancelled_at is not None:
        print(f"override {before.id} was already cancelled by {before.cancelled_by} on "
              f"{when(before.cancelled_at, cfg, year=True)}; nothing changed: {_override_line(cfg, before).strip()}")
        return 0
    gone = store.cancel(args.id, _who_am_i(), now)
    assert gone is not None
    if sv.journal is not None:
        sv.journal.record("override", now, gone.voipnumber, None, id=gone.id, cancelled=True,
                          reason=f"{gone.reason} (cancelled by {gone.cancelled_by})", by=gone.cancelled_by)
    print(f"cancelled override {gone.id}: {_override_line(cfg, gone).strip()}")
    if gone.end > now and sv.db is None and sv.state is not None and _daemon(sv.state.path) is None:
        print(f"warning: no forwardd is running on {sv.state.path}: the account keeps what it was last given "
              "until one starts")
    return 0


async def _list(sv: Services, args: argparse.Namespace) -> int:
    cfg = sv.cfg
    if sv.overrides is None:
        print("[]" if args.json else f"no overrides: nothing in {cfg.resolve_state_dir()} ({state_words(cfg)})")
        return 0
    now = sv.clock.now()
    listed = sv.overrides.listed(now, everything=args.all)
    if args.json:
        print(json.dumps([o.as_json() for o in listed], indent=2))
    elif not listed:
        print("no overrides" + ("" if args.all else " in force or to come (--all shows past ones)"))
    else:
        for o in listed:
            print(_override_line(cfg, o))
    return 0


def cmd_override(args: argparse.Namespace) -> int:
    cfg = load(args)
    if args.action == "add":
        number = _number_arg(cfg, args.number)
        phone, person = _target_arg(cfg, args.to)
        where = state_words(cfg)  # (refuses here, before anything is written, when it cannot be decided)
        return with_services(cfg, lambda sv: _add(sv, args, number, phone, person, where), journal="write")
    if args.action == "cancel":
        return with_services(cfg, lambda sv: _cancel(sv, args), journal="write")
    return with_services(cfg, lambda sv: _list(sv, args), journal="read")
