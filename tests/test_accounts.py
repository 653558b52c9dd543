"""Several aql accounts in one daemon (issue 19), end to end as processes: two fake aql servers with their
own passwords, one line each, hand-overs 12 s apart. The second account's password is wrong: the first
account's hand-overs still land on time, and the second is alerted once."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from forwardd.core.timeline import Segment

from .conftest import UTC
from .e2e import A, B, C, FakeProc, ics, journal, misrouted_samples, sleep_until, start_daemon, stop


def test_a_wrong_password_on_one_account_never_delays_anothers_hand_overs(tmp_path: Path) -> None:
    north = FakeProc(tmp_path, numbers="606309", password="north-Secret-1", username="north-ltd")
    south = FakeProc(tmp_path, numbers="606310", password="south-Secret-2", username="south-ltd")
    try:
        t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=10)).replace(microsecond=0)
        s = lambda n: t0 + dt.timedelta(seconds=n)  # noqa: E731
        (tmp_path / "rota.ics").write_text(ics([(s(0), s(12), "Alice"), (s(12), s(24), "Bob"), (s(24), s(40), "Carol")]))
        cfg = tmp_path / "forwardd.toml"
        cfg.write_text(f"""
state_dir = "{tmp_path / 'state'}"
[accounts.north]
url = "{north.url}"
username = "north-ltd"
password_env = "NORTH_PW"
min_slack = "1s"
[accounts.south]
url = "{south.url}"
username = "south-ltd"
password_env = "SOUTH_PW"
min_slack = "1s"
[people]
alice = "{A}"
bob = "{B}"
carol = "{C}"
[calendars]
rota = {{ source = "rota.ics", refresh = "1s" }}
[[numbers]]
voipnumber = "606309"
name = "North line"
rota = "rota"
account = "north"
[[numbers]]
voipnumber = "606310"
name = "South line"
rota = "rota"
account = "south"
""")
        proc = start_daemon(cfg, tmp_path, env={"NORTH_PW": "north-Secret-1", "SOUTH_PW": "not-south's"})
        try:
            sleep_until(s(28))
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
        finally:
            assert stop(proc) == 0
        timeline = [Segment(s(-3), s(0), None, ""), Segment(s(0), s(12), A, ""), Segment(s(12), s(24), B, ""),
                    Segment(s(24), s(27), C, "")]
        history = [{**h, "voipnumber": "606309"} for h in north.get("history")]
        # every second of North's line as the rota says, both exact hand-overs within a second
        assert misrouted_samples(history, timeline, skip=[(s(12), 1.0), (s(24), 1.0)]) == []
        assert south.get("history") == []  # nothing changed on the account whose password is wrong
        alerts = [e for e in journal(tmp_path) if e["kind"] == "alert" and e.get("alert") == "auth"]
        assert len(alerts) == 1 and alerts[0]["account"] == "south" and "south" in alerts[0]["key"], alerts
        entries = journal(tmp_path)
        assert {e.get("account") for e in entries if e["kind"] == "readback"} == {"north"}  # the journal names each
        assert any(e["kind"] == "error" and e.get("account") == "south" and e.get("failure") == "auth" for e in entries)
        log = (tmp_path / "daemon.log").read_text()
        assert "not-south's" not in log and "north-Secret-1" not in log
        assert os.environ.get("SOUTH_PW") is None
    finally:
        north.stop()
        south.stop()
