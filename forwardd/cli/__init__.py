"""The ``forwardd`` command: the parser, and one top-level handler that turns forwardd's errors into
messages (no traceback). Each group of commands lives in a module of its own (``check``, ``plan``,
``simulate``, ``status`` for apply and status, ``history``, ``overrides``, ``run`` for run and fake-aql),
as borgmatic's actions do; ``common`` holds what they share.

Every command builds its edges through ``Services`` (the composition root), asking only for what it
needs: ``plan``, ``check``, ``history`` and ``simulate`` never talk to aql, so they never need the
password; only ``run`` and ``apply`` take the state directory's lock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Sequence

from .. import __version__
from ..errors import ConfigError, ForwarddError
from ..logs import configure
from .check import cmd_check
from .common import DEFAULT_CONFIG
from .history import cmd_history
from .init import add_init_parser
from .overrides import cmd_override
from .plan import cmd_plan
from .run import cmd_fake_aql, cmd_run
from .simulate import cmd_simulate
from .status import cmd_apply, cmd_status

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="forwardd",
        description="Keep aql VoIP numbers forwarded to whoever the rota and holiday calendars say.",
        epilog="Start with: forwardd check --config config/example.toml, then forwardd plan, then forwardd run.",
    )
    p.add_argument("--version", action="version", version=f"forwardd {__version__}")
    p.add_argument("--log-level", help="debug, info, warning (default: info; warning for simulate)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
        return sp

    sp = with_config("run", "run the daemon: keep every number right, continuously")
    sp.set_defaults(func=cmd_run)
    sp = with_config("check", "validate the config and load every calendar")
    sp.add_argument("--online", action="store_true", help="also confirm the numbers belong to the aql account")
    sp.add_argument("--days", type=float, default=60, help="look this far ahead for gaps and unknown names (default 60)")
    sp.set_defaults(func=cmd_check)
    sp = with_config("plan", "show who gets each number's calls, and the changes forwardd will send")
    sp.add_argument("--start", help="ISO 8601 instant, a local date or 'YYYY-MM-DD HH:MM', or +2h (default now)")
    sp.add_argument("--days", type=float, default=7, help="days to show (default 7)")
    sp.add_argument("--json", action="store_true", help="print the stable JSON form")
    sp.add_argument("--html", metavar="OUT.html", help="write the week view as one self-contained page")
    sp.set_defaults(func=cmd_plan)
    sp = with_config("simulate", "run the reconcile logic on a virtual clock and count misrouted seconds")
    sp.add_argument("--start", required=True, help="ISO 8601 instant, or a local date")
    sp.add_argument("--days", type=float, required=True, help="days to simulate")
    sp.add_argument("--outage", action="append", default=[], help="daemon down: START/DURATION, e.g. 2027-03-26T17:00:00+00:00/PT2H")
    sp.add_argument("--naive", action="store_true", help="one change per transition, at the transition")
    sp.add_argument("--drift", help="at this time, change every number by hand (another target), as in the aql portal")
    sp.add_argument("--json", action="store_true", help="print figures as JSON")
    sp.set_defaults(func=cmd_simulate)
    sp = with_config("apply", "one reconcile pass now, then exit (non-zero if a number is not confirmed)")
    sp.set_defaults(func=cmd_apply)
    sp = with_config("status", "each number: what the account has, what it should have, the next change")
    sp.add_argument("--json", action="store_true", help="print the stable JSON form")
    sp.set_defaults(func=cmd_status)
    sp = with_config("history", "show the journal: changes, read-backs, alerts, calendar refreshes")
    sp.add_argument("--number", help="only this voipnumber")
    sp.add_argument("--since", help="a date (2026-12-01), a local 'YYYY-MM-DD HH:MM', ISO 8601 with offset, "
                                     "or -2h (two hours ago)")
    sp.add_argument("--json", action="store_true", help="print the entries as JSON (as stored, ISO times in UTC)")
    sp.set_defaults(func=cmd_history)
    ov = sub.add_parser("override", help="one-off overrides: add, list, cancel",
                        description="One-off overrides: who gets a number's calls for a while, whatever the "
                                    "calendars say. A running daemon applies them within seconds.")
    ovs = ov.add_subparsers(dest="action", required=True, metavar="ACTION")

    def ov_parser(name: str, help: str) -> argparse.ArgumentParser:
        sp = ovs.add_parser(name, help=help, description=help)
        sp.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
        sp.set_defaults(func=cmd_override)
        return sp

    sp = ov_parser("add", "send a number's calls to someone (or nowhere) from --from until --until")
    sp.add_argument("number", metavar="NUMBER", help="the voipnumber (or the number's name)")
    sp.add_argument("--to", required=True, help="a person from [people], a phone number, or off")
    sp.add_argument("--from", dest="start", help="when it starts (default now): ISO 8601, 'YYYY-MM-DD HH:MM', +90m")
    sp.add_argument("--until", required=True, help="when it ends: ISO 8601, 'YYYY-MM-DD HH:MM' (local), +2h")
    sp.add_argument("--note", help="why, for the journal, the plan and the page")
    sp.add_argument("--long", action="store_true",
                    help="allow an override longer than overrides.max_length (default 7d): a long one is meant")
    sp.add_argument("--offline", action="store_true",
                    help="store it even when no forwardd is running to apply it (the next one to start does)")
    sp = ov_parser("list", "the overrides in force or to come")
    sp.add_argument("--all", action="store_true", help="past and cancelled ones too")
    sp.add_argument("--json", action="store_true", help="print the overrides as JSON")
    sp = ov_parser("cancel", "cancel an override (by the ID add printed); cancelling one twice changes nothing")
    sp.add_argument("id", metavar="ID", type=int, help="the override's ID (see override list)")
    sp = sub.add_parser("fake-aql", help="serve a fake aql account on 127.0.0.1 (for tests and trials)",
                        description="Serve a fake aql account (voipapi.php, with getuser, changeuser and listusers) "
                                    "on 127.0.0.1, for trials and tests. Its first line of output is JSON with its "
                                    "url and port; Ctrl-C or SIGTERM stops it.")
    sp.add_argument("--port", type=int, default=0,
                    help="the port to listen on, on 127.0.0.1 (default 0: any free port, printed on the first line)")
    sp.add_argument("--numbers", default="606309", help="the account's VoIP numbers, comma-separated (default 606309)")
    sp.add_argument("--username", default="acme", help="the account's username (default acme)")
    sp.add_argument("--password-env", metavar="VAR",
                    help="an environment variable holding the account's password (default: the password is 'secret')")
    sp.add_argument("--wraps", action="store_true",
                    help="accept forwardstart later than forwardend as an overnight window (default: refuse it)")
    sp.set_defaults(func=cmd_fake_aql)
    add_init_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level or ("warning" if args.command == "simulate" else "info")
    configure(level, stream=sys.stderr if args.command != "run" else sys.stdout)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"forwardd: {err}", file=sys.stderr)
        return 2
    except ForwarddError as err:
        print(f"forwardd: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("forwardd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `forwardd plan | head`: the reader left; that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())



