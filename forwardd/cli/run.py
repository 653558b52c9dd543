"""``forwardd run`` (the daemon) and ``forwardd fake-aql`` (a fake aql account, for trials and tests)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..store.statedir import describe_lock
from .common import load


def cmd_run(args: argparse.Namespace) -> int:
    from ..service.daemon import run_daemon

    cfg = load(args)
    describe_lock(args.config, "run")  # the lock in the state directory names this config: the commands find it
    return run_daemon(cfg, args.config)


def cmd_fake_aql(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..aql.account import Account
    from ..aql.fake import FakeAqlServer

    password = os.environ.get(args.password_env, "") if args.password_env else "secret"
    numbers = [n.strip() for n in args.numbers.split(",") if n.strip()]
    account = Account.with_numbers(args.username, password, numbers, wraps=args.wraps)
    srv = FakeAqlServer(account, port=args.port).start()
    print(json.dumps({"url": srv.url, "port": srv.server_address[1]}), flush=True)
    print(f"fake aql account {args.username!r} with {', '.join(numbers)} at {srv.url} "
          f"(password {'from $' + args.password_env if args.password_env else 'secret'}); Ctrl-C stops it",
          file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    srv.stop()
    return 0
