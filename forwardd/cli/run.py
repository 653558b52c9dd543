"""``forwardd run`` (the daemon) and ``forwardd fake-aql`` (a fake aql account, for trials and tests)."""

from __future__ import annotations

import argparse
import json
import os

from .common import load


def cmd_run(args: argparse.Namespace) -> int:
    from ..service.daemon import run_daemon

    cfg = load(args)
    return run_daemon(cfg, args.config)


def cmd_fake_aql(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..aql.account import Account
    from ..aql.fake import FakeAqlServer

    password = os.environ.get(args.password_env, "") if args.password_env else "secret"
    account = Account.with_numbers(args.username, password, args.numbers.split(","), wraps=args.wraps)
    srv = FakeAqlServer(account, port=args.port).start()
    print(json.dumps({"url": srv.url, "port": srv.server_address[1]}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    srv.stop()
    return 0


