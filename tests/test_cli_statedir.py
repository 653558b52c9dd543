"""One state directory, found the same way by every command (issue 20, points 1, 2 and 5): the systemd
guide followed literally, with a real daemon whose state directory only it knows ($STATE_DIRECTORY),
and the commands typed in a plain shell."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, UTC
from .e2e import NUMBER, PASSWORD, A, B, FakeProc, journal, start_daemon, stop, wait_for, write_config

UNIT = ROOT / "systemd" / "forwardd.service"


def shell(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A plain shell: no $STATE_DIRECTORY, no credentials, its own XDG state home (never the tester's)."""
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CREDENTIALS_DIRECTORY",
                                                            "SYSTEMD_UNIT_PATH", "XDG_STATE_HOME")}
    return {**env, "XDG_STATE_HOME": str(tmp_path / "xdg"), "USER": "nightshift", "SUDO_USER": "",
            "SYSTEMD_UNIT_PATH": str(tmp_path / "units"), **extra}


def forwardd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forwardd", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60)


def without_state_dir(cfg: Path) -> Path:
    cfg.write_text("\n".join(line for line in cfg.read_text().splitlines() if not line.startswith("state_dir")))
    return cfg


def now_rota() -> list[tuple[dt.datetime, dt.datetime, str]]:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    return [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=6), "Alice")]


def test_an_override_typed_in_a_plain_shell_reaches_the_daemon_that_runs_under_systemd(
        tmp_path: Path, fake_proc: FakeProc) -> None:
    # the guide: a config without state_dir or password; the unit names the config and the password file;
    # systemd gives the daemon (and only it) $STATE_DIRECTORY and the credential under $CREDENTIALS_DIRECTORY
    cfg = without_state_dir(write_config(tmp_path, fake_proc.url, now_rota()))
    cfg.write_text(cfg.read_text().replace('password_env = "AQL_PW"\n', ""))
    password = tmp_path / "etc-forwardd" / "aql-password"
    password.parent.mkdir()
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    install_unit(tmp_path, cfg, credential=password)
    credentials = tmp_path / "run-credentials"
    credentials.mkdir()
    (credentials / "aql-password").write_text(PASSWORD)
    service_state = tmp_path / "var-lib-forwardd"
    env = shell(tmp_path)
    proc = start_daemon(cfg, tmp_path, env={**env, "STATE_DIRECTORY": str(service_state),
                                            "CREDENTIALS_DIRECTORY": str(credentials)})
    state = lambda: fake_proc.get("state")[NUMBER]  # noqa: E731
    try:
        wait_for(lambda: state()["forwardto"] == A)
        r = forwardd(env, "override", "add", "--config", str(cfg), NUMBER, "--to", "bob", "--until", "+1h")
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"forwardd (pid {proc.pid}) on {service_state} will apply it" in r.stdout, r.stdout
        wait_for(lambda: state()["forwardto"] == B, timeout=5)
        # status and history, as typed in the guide, read the daemon's state directory (and the password)
        r = forwardd(env, "status", "--config", str(cfg), "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        (row,) = json.loads(r.stdout)["numbers"]
        assert row["now"]["forwardto"] == B and row["now"]["kind"] == "manual" and row["match"] is True
        r = forwardd(env, "history", "--config", str(cfg), "--json")
        assert any(e["kind"] == "override" for e in json.loads(r.stdout)), r.stdout + r.stderr
        # and a second daemon started from the shell finds the first, rather than a state directory of its own
        r = forwardd(env, "run", "--config", str(cfg))
        assert r.returncode == 1 and f"another forwardd (pid {proc.pid}) is running on {service_state}" in r.stderr
        assert PASSWORD not in r.stdout + r.stderr
    finally:
        assert stop(proc) == 0
    assert not (tmp_path / "xdg" / "forwardd" / "journal.sqlite").exists()  # nothing went astray


def test_override_add_with_no_daemon_running_says_so_and_stores_nothing_unless_offline(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "simulated", now_rota())
    env = shell(tmp_path)
    r = forwardd(env, "override", "add", "--config", str(cfg), NUMBER, "--to", "bob", "--until", "+1h")
    assert r.returncode == 1, r.stdout + r.stderr
    assert (f"no forwardd is running on {tmp_path / 'state'}: nothing will apply this until one starts"
            in r.stderr), r.stderr
    assert "--offline" in r.stderr
    assert [e for e in journal(tmp_path) if e["kind"] == "override"] == []
    r = forwardd(env, "override", "add", "--config", str(cfg), NUMBER, "--to", "bob", "--until", "+1h", "--offline")
    assert r.returncode == 0, r.stderr
    assert f"stored in {tmp_path / 'state'}" in r.stdout and "nothing will apply this until one starts" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "added override 1"


def test_cancelling_twice_says_it_was_already_cancelled(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "simulated", now_rota())
    env = shell(tmp_path)
    r = forwardd(env, "override", "add", "--config", str(cfg), NUMBER, "--to", "bob", "--until", "+1h", "--offline")
    assert r.returncode == 0, r.stderr
    first = forwardd(env, "override", "cancel", "--config", str(cfg), "1")
    assert first.returncode == 0 and "cancelled override 1" in first.stdout
    again = forwardd(env, "override", "cancel", "--config", str(cfg), "1")
    assert again.returncode == 0, again.stderr
    assert "override 1 was already cancelled by nightshift" in again.stdout and "cancelled override 1" not in again.stdout
    cancels = [e for e in journal(tmp_path) if e["kind"] == "override" and e.get("cancelled")]
    assert len(cancels) == 1  # the second cancel changed nothing, and journals nothing


def test_two_daemons_on_one_config_in_two_places_are_refused_with_the_way_to_choose(tmp_path: Path) -> None:
    cfg = without_state_dir(write_config(tmp_path, "simulated", now_rota()))
    env = shell(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    procs = [start_daemon(cfg, tmp_path, env={**env, "STATE_DIRECTORY": str(d)}, name=d.name) for d in (one, two)]
    try:
        wait_for(lambda: all((d / "forwardd.lock").exists() and (d / "journal.sqlite").exists() for d in (one, two)))
        r = forwardd(env, "override", "add", "--config", str(cfg), NUMBER, "--to", "bob", "--until", "+1h")
        assert r.returncode == 1, r.stdout + r.stderr
        assert str(one) in r.stderr and str(two) in r.stderr
        assert "state_dir" in r.stderr and "STATE_DIRECTORY=" in r.stderr  # how to choose
        assert "Traceback" not in r.stderr
    finally:
        for p in procs:
            assert stop(p) == 0


# ------------------------------------------------------------------------------ the unit, read by the CLI


def install_unit(tmp_path: Path, cfg: Path, *, dynamic: bool = True, credential: Path | None = None) -> Path:
    """The shipped unit, as the guide installs it, naming ``cfg`` (and the password file)."""
    units = tmp_path / "units"
    units.mkdir(exist_ok=True)
    text = UNIT.read_text().replace("/etc/forwardd/forwardd.toml", str(cfg))
    if credential is not None:
        text = text.replace("/etc/forwardd/aql-password", str(credential))
    if not dynamic:
        text = text.replace("DynamicUser=yes", "DynamicUser=no")
    (units / "forwardd.service").write_text(text)
    return units


@pytest.mark.parametrize(("dynamic", "where"), [(True, "/var/lib/private/forwardd"), (False, "/var/lib/forwardd")])
def test_the_service_s_config_means_the_service_s_state_directory(tmp_path: Path, dynamic: bool, where: str) -> None:
    cfg = without_state_dir(write_config(tmp_path, "simulated", now_rota()))
    install_unit(tmp_path, cfg, dynamic=dynamic)
    r = forwardd(shell(tmp_path), "history", "--config", str(cfg))  # (reads only: creates nothing there)
    assert r.returncode == 0, r.stderr
    assert f"no journal yet in {where}" in r.stdout, r.stdout
    # another config is not the service's: it keeps the shell's own default, and says how to choose
    other = tmp_path / "other.toml"
    other.write_text(cfg.read_text())
    r = forwardd(shell(tmp_path), "history", "--config", str(other))
    assert f"no journal yet in {tmp_path / 'xdg' / 'forwardd'}" in r.stdout, r.stdout
    assert "state_dir" in r.stdout


def test_status_as_the_guide_writes_it_finds_the_password_the_unit_hands_over(tmp_path: Path,
                                                                              fake_proc: FakeProc) -> None:
    cfg = write_config(tmp_path, fake_proc.url, now_rota())
    cfg.write_text(cfg.read_text().replace('password_env = "AQL_PW"\n', ""))  # the credential is the only way
    password = tmp_path / "aql-password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    install_unit(tmp_path, cfg, credential=password)
    r = forwardd(shell(tmp_path), "status", "--config", str(cfg))
    assert r.returncode in (0, 1), r.stdout + r.stderr  # (1: the account is not programmed yet)
    assert "no password" not in r.stderr and "MATCH" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    # a credential file the user cannot read is named, with the reason
    password.write_text("")
    password.unlink()
    r = forwardd(shell(tmp_path), "status", "--config", str(cfg))
    assert r.returncode == 2 and str(password) in r.stderr and "LoadCredential" in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can leave files another user cannot write")
def test_root_leaves_the_service_s_state_directory_to_the_service_s_user(tmp_path: Path) -> None:
    # sudo forwardd override add / status on the state directory of a DynamicUser service: what root
    # makes there (the journal, its write-ahead log, the calendars' cached copies) stays the service's
    cfg = write_config(tmp_path, "simulated", now_rota())
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    service_user = 65534
    os.chown(state, service_user, service_user)
    env = shell(tmp_path)
    r = forwardd(env, "override", "add", "--config", str(cfg), NUMBER, "--to", "bob", "--until", "+1h", "--offline")
    assert r.returncode == 0, r.stderr
    assert forwardd(env, "status", "--config", str(cfg)).returncode in (0, 1)
    made = [p for p in state.rglob("*")]
    assert made and {p.lstat().st_uid for p in made} == {service_user}, [(p, p.lstat().st_uid) for p in made]


def test_the_unit_is_read_as_systemd_reads_it(tmp_path: Path) -> None:
    from forwardd.config.unit import service_unit

    cfg = tmp_path / "forwardd.toml"
    cfg.write_text("")
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    for d in (etc, lib, etc / "forwardd.service.d", lib / "forwardd.service.d"):
        d.mkdir()
    # the first folder of the search path wins; its drop-ins and the others' count, in name order
    (etc / "forwardd.service").write_text(
        f"[Service]\nExecStart=-/opt/forwardd/.venv/bin/forwardd --log-level info run \\\n  --config={cfg}\n"
        "DynamicUser=yes\nStateDirectory=forwardd-a forwardd-b\nLoadCredential=aql-password:/etc/pw\n")
    (lib / "forwardd.service").write_text(f"[Service]\nExecStart=/usr/bin/forwardd run --config {tmp_path}/other\n")
    (lib / "forwardd.service.d" / "cluster.conf").write_text("[Service]\nLoadCredential=db-password:/etc/db\n")
    (etc / "forwardd.service.d" / "zz.conf").write_text("[Service]\nDynamicUser=no\n")
    env = {"SYSTEMD_UNIT_PATH": f"{etc}:{lib}"}
    unit = service_unit(cfg, env)
    assert unit is not None and unit.path == etc / "forwardd.service"
    assert unit.state_directory == Path("/var/lib/forwardd-a")  # DynamicUser=no by the drop-in
    assert unit.credentials == {"aql-password": Path("/etc/pw"), "db-password": Path("/etc/db")}
    assert service_unit(tmp_path / "elsewhere.toml", env) is None
    # a unit that runs something else is not forwardd's
    (etc / "forwardd.service").write_text(f"[Service]\nExecStart=/usr/bin/cat {cfg}\n")
    assert service_unit(cfg, {"SYSTEMD_UNIT_PATH": str(etc)}) is None


def test_another_user_s_forwardd_on_this_config_is_named_rather_than_missed(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    # (as another user, its open files cannot be seen: only its command line; root sees everything, so the
    # hiding is stood in for here, and the reading of a command line is checked on a real process)
    from forwardd.config import location

    cfg = tmp_path / "forwardd.toml"
    cfg.write_text("")
    lookalike = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "forwardd", "run",
                                  "--config", str(cfg)])
    try:
        wait_for(lambda: location._runs(lookalike.pid, os.path.realpath(cfg)))  # (once it has started)
        assert not location._runs(lookalike.pid, os.path.realpath(tmp_path / "other.toml"))
    finally:
        lookalike.kill()
        lookalike.wait()
    monkeypatch.setattr(location, "daemons_on", lambda config: ([], [location.Hidden(4242, "forwardd")]))
    with pytest.raises(location.StateDirUnknown) as err:
        location.locate(None, tmp_path, cfg, {})
    assert "forwardd (pid 4242, user forwardd) runs on" in str(err.value)
    assert "run this as root (sudo) or as forwardd" in str(err.value) and "STATE_DIRECTORY=" in str(err.value)
