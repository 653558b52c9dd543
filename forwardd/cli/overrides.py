"""``forwardd override add|list|cancel``: one-off overrides from the command line."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..config import Config
from ..core.timeline import display_name
from ..errors import ForwarddError
from ..service.services import Services
from .common import load, parse_when, person_words, when, with_services


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


def _override_line(cfg: Config, o: Any) -> str:
    who = "no forwarding" if o.target is None else person_words(cfg, o.target, display_name(o.person)
                                                                if o.person else None)
    span = f"{when(o.start, cfg, year=True)} .. {when(o.end, cfg, year=True)} {o.end.astimezone(cfg.tz):%Z}"
    state = "cancelled" if o.cancelled_at else ""
    return f"{o.id:>4}  {cfg.number(o.voipnumber).label}: {who}, {span}, {o.reason}{' (' + state + ')' if state else ''}"


def cmd_override(args: argparse.Namespace) -> int:
    cfg = load(args)

    async def body(sv: Services) -> int:
        store = sv.overrides
        if store is None:
            raise ForwarddError(f"no state directory at {cfg.resolve_state_dir()}: nothing to list")
        now = sv.clock.now().replace(microsecond=0)
        if args.action == "add":
            number = _number_arg(cfg, args.number)
            phone, person = _target_arg(cfg, args.to)
            start = parse_when(args.start, cfg, "--from", now) if args.start else now.replace(microsecond=0)
            end = parse_when(args.until, cfg, "--until", now)
            if end <= now:
                raise ForwarddError(f"--until {args.until!r} is in the past")
            if end <= start:
                raise ForwarddError(f"--until {args.until!r} is not after --from ({start.isoformat()})")
            made = store.add(number, phone, person, start, end, args.note or "", _who_am_i(), now)
            if sv.journal is not None:
                sv.journal.record("override", now, number, None, id=made.id, reason=made.reason, to=phone,
                                  person=person, start=start.isoformat(), end=end.isoformat(), note=made.note,
                                  by=made.made_by)
            who = "no forwarding" if phone is None else person_words(cfg, phone, display_name(person) if person else None)
            print(f"{cfg.number(number).label}: {who} from {when(start, cfg, year=True)} until "
                  f"{when(end, cfg, year=True)} {end.astimezone(cfg.tz):%Z} ({made.reason})")
            print(f"added override {made.id}")
            return 0
        if args.action == "cancel":
            gone = store.cancel(args.id, _who_am_i(), now)
            if gone is None:
                raise ForwarddError(f"there is no override {args.id} (see forwardd override list --all)")
            if sv.journal is not None:
                sv.journal.record("override", now, gone.voipnumber, None, id=gone.id, cancelled=True,
                                  reason=f"{gone.reason} (cancelled by {gone.cancelled_by})", by=gone.cancelled_by)
            print(f"cancelled override {gone.id}: {_override_line(cfg, gone).strip()}")
            return 0
        listed = store.listed(now, everything=args.all)
        if args.json:
            print(json.dumps([o.as_json() for o in listed], indent=2))
        elif not listed:
            print("no overrides" + ("" if args.all else " in force or to come (--all shows past ones)"))
        else:
            for o in listed:
                print(_override_line(cfg, o))
        return 0

    return with_services(cfg, body, journal="write" if args.action != "list" else "read")


