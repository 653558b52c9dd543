"""``forwardd init``: write a first config from an aql account as it is, so that starting forwardd on it
changes nothing (``service.setup`` reads the account and writes the text). A command of the CLI, kept
in a module of its own until the CLI becomes a package."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from ..config import DEFAULT_URL, SIMULATED, config_from_dict
from ..errors import ConfigError, ForwarddError
from ..service.planning import horizon_start
from ..service.services import Services
from ..service.setup import AccountRead, Origin, config_text, plan_differences, probe_config, read_account


def add_init_parser(sub: Any) -> argparse.ArgumentParser:
    """``forwardd init`` on the CLI's subparsers."""
    help = "write a first config from an aql account as it is: starting forwardd on it changes nothing"
    sp: argparse.ArgumentParser = sub.add_parser("init", help=help, description=help)
    sp.add_argument("--url", required=True, help=f"the account's voipapi.php URL ({DEFAULT_URL}), or 'simulated' for "
                                                 "the built-in example account")
    sp.add_argument("--username", help="the aql account (not needed with --url simulated)")
    secret = sp.add_mutually_exclusive_group()
    secret.add_argument("--password-file", help="file holding the password (the config names the file)")
    secret.add_argument("--password-env", metavar="VAR", help="environment variable holding the password (the config "
                                                                "names the variable)")
    sp.add_argument("--output", default="forwardd.toml", help="the config file to write, never overwritten (default "
                                                              "forwardd.toml; '-' prints it)")
    sp.add_argument("--max-requests-per-minute", type=int, help="cap on the reads of the account (default 120)")
    sp.add_argument("--allow-http", action="store_true", help="allow a plain http:// URL (the password in clear)")
    sp.set_defaults(func=cmd_init)
    return sp


def _origin(args: argparse.Namespace) -> Origin:
    if args.url == SIMULATED:
        return Origin(SIMULATED)
    if not args.username:
        raise ForwarddError("init --username: give the aql account's username")
    if args.password_file:
        path = Path(args.password_file).expanduser().resolve()
        if not path.is_file():
            raise ForwarddError(f"init --password-file: {path} is not a file")
        return Origin(args.url, args.username, "password_file", str(path), args.allow_http)
    if args.password_env:
        if args.password_env not in os.environ:
            raise ForwarddError(f"init --password-env: the environment variable {args.password_env} is not set")
        return Origin(args.url, args.username, "password_env", args.password_env, args.allow_http)
    raise ForwarddError("init: give --password-file or --password-env (the config names where the password is, "
                        "never the password)")


def _progress(done: int, total: int) -> None:
    if total >= 50 and (done == total or done % max(1, total // 10) == 0):
        print(f"read {done} of {total} numbers", file=sys.stderr)


def cmd_init(args: argparse.Namespace) -> int:
    out = None if args.output == "-" else Path(args.output)
    if out is not None and out.exists():
        raise ForwarddError(f"{out} exists: forwardd init never overwrites a file (give another --output)")
    origin = _origin(args)
    with tempfile.TemporaryDirectory(prefix="forwardd-init-") as tmp:  # the probe's state: nothing is kept
        account, text, differences = asyncio.run(_init(args, origin, Path(tmp), str(out or "FILE")))
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # (never over a file made meanwhile)
        except FileExistsError:
            raise ForwarddError(f"{out} exists: forwardd init never overwrites a file (give another --output)") from None
        except OSError as err:
            raise ForwarddError(f"cannot write {out}: {err.strerror or err}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    read = [line for line in account.lines if line.reading is not None]
    failed = [line for line in account.lines if line.reading is None]
    say = sys.stderr if out is None else sys.stdout
    print(f"{'wrote ' + str(out) if out else 'the config above'}: {len(read)} number(s) as they forward today; "
          "the password by reference only", file=say)
    for line in failed:
        print(f"warning: {line.voipnumber} could not be read ({line.error}); it is left out (commented)", file=say)
    if differences:
        print("warning: forwardd's plan would not keep these exactly as they are (see their comments):", file=say)
        for d in differences:
            print(f"  {d}", file=say)
    else:
        print("checked with forwardd's own plan: starting forwardd on it changes no number", file=say)
    target = str(out) if out else "FILE"
    print(f"next: rename the people, add your rota, then forwardd check --config {target}", file=say)
    return 1 if failed else 0


async def _init(args: argparse.Namespace, origin: Origin, tmp: Path, output: str) -> tuple[AccountRead, str, list[str]]:
    simulated = None
    numbers: tuple[str, ...] = ()
    if origin.url == SIMULATED:
        from ..aql.simulated import DEMO_LINES, demo_account

        simulated, numbers = demo_account(), tuple(DEMO_LINES)
    probe = await Services.open(probe_config(origin, tmp, numbers or ("600000",), args.max_requests_per_minute),
                                aql=True, simulated_account=simulated)
    try:
        account = await read_account(probe, _progress)
        now = probe.clock.now()
    finally:
        await probe.close()
    if not any(line.reading is not None for line in account.lines):
        raise ForwarddError("the account lists no number that could be read: nothing to write")
    text = config_text(account, origin, now, output)
    try:  # what is written must load (a bug otherwise), and plan to keep every number as it is
        data = tomllib.loads(text)
        base = Path(output).resolve().parent if output not in ("FILE", "-") else Path.cwd()
        cfg = config_from_dict({**data, "state_dir": str(tmp)}, base_dir=base, env={})
    except (tomllib.TOMLDecodeError, ConfigError) as err:
        raise ForwarddError(f"forwardd init wrote a config that does not load (a bug; nothing written): {err}") from None
    sv = await Services.open(cfg, overrides=False)
    try:
        plan = await sv.make_plan(horizon_start(now), days=7)
    finally:
        await sv.close()
    return account, text, plan_differences(plan, account, now)
