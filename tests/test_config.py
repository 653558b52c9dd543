from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwardd.config import aql_password, config_from_dict, load_config, parse_duration
from forwardd.errors import ConfigError

from .conftest import ROOT, run_cli

GOOD = """
timezone = "Europe/London"
[aql]
url = "simulated"
username = "acme"
[people]
alice = "07700 900001"
[calendars]
rota = { source = "rota.ics" }
[[numbers]]
voipnumber = "606309"
rota = "rota"
office_hours = ["Mon-Fri 09:00-17:30"]
fallback = "07700 900999"
"""

ROTA = "BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n"


def write(tmp_path: Path, text: str, name: str = "forwardd.toml") -> Path:
    (tmp_path / "rota.ics").write_text(ROTA)
    p = tmp_path / name
    p.write_text(text)
    p.chmod(0o600)
    return p


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env=env or {})
    return info.value.problems


def test_good_config_loads_and_normalises_numbers(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={})
    assert cfg.phones["alice"] == "07700900001"
    assert cfg.fallback_of(cfg.numbers[0]) == ("07700900999", None)
    assert cfg.numbers[0].office_hours[0].weekdays == frozenset(range(5))
    assert cfg.aql.min_slack == dt.timedelta(minutes=5)


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (("[[numbers]]", "[[numbers]]\ncolour = 'red'"), "numbers[0].colour", "unknown key"),
        (("[[numbers]]", "[[numbers]]\nrotaa = 'rota'"), "numbers[0].rotaa", "did you mean 'rota'"),
        (('voipnumber = "606309"', 'voipnumber = "506309"'), "numbers[0].voipnumber", "not an aql VoIP number"),
        (('voipnumber = "606309"', 'voipnumber = "60630"'), "numbers[0].voipnumber", "6 digits"),
        (('alice = "07700 900001"', 'alice = "12345"'), "people.alice", "not a valid phone number"),
        (('fallback = "07700 900999"', 'fallback = "call bob"'), "numbers[0].fallback", "phone number"),
        (("Mon-Fri 09:00-17:30", "Mon-Fri 09:00-25:30"), "numbers[0].office_hours[0]", "does not exist"),
        (("Mon-Fri 09:00-17:30", "Mon-Fry 09:00-17:30"), "numbers[0].office_hours[0]", "not a weekday"),
        (("Mon-Fri 09:00-17:30", "Mon-Fri 17:30-09:00"), "numbers[0].office_hours[0]", "must end after"),
        (('rota = "rota"', 'rota = "rotaa"'), "numbers[0].rota", "calendar 'rotaa' is not defined"),
        (('timezone = "Europe/London"', 'timezone = "Europe/Londn"'), "timezone", "not an IANA time zone"),
        (('url = "simulated"', 'url = "gw.aql.com"'), "aql.url", "expected 'simulated' or an http(s) URL"),
        (('url = "simulated"', 'url = "http://gw.aql.com/voipapi.php"'), "aql", "plain http://"),
        (('url = "simulated"', 'url = "simulated"\nmin_slack = "soon"'), "aql.min_slack", "not a duration"),
        (('rota = { source = "rota.ics" }', 'rota = { source = "missing.ics" }'), "calendars.rota.source", "does not exist"),
        (('rota = { source = "rota.ics" }', 'rota = { builtin = "FR" }'), "calendars.rota.builtin", "GB-ENG"),
    ],
)
def test_each_mistake_names_its_key_path_and_reason(tmp_path: Path, change: tuple[str, str], path: str, reason: str) -> None:
    old, new = change
    assert old in GOOD
    found = problems(tmp_path, GOOD.replace(old, new, 1))
    assert any(p == path and reason in r for p, r in found), found


def password_problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    cfg = load_config(write(tmp_path, text), env={})  # the config itself is fine without a password
    with pytest.raises(ConfigError) as info:
        aql_password(cfg, env or {})
    return info.value.problems


def test_missing_password_file_is_reported_at_its_key(tmp_path: Path) -> None:
    text = GOOD.replace('url = "simulated"', 'url = "https://gw.aql.com/reseller/voipapi.php"\npassword_file = "nope"')
    found = password_problems(tmp_path, text)
    assert found[0][0] == "aql.password_file" and "cannot read" in found[0][1]


def test_real_account_without_any_password_is_an_error(tmp_path: Path) -> None:
    text = GOOD.replace('url = "simulated"', 'url = "https://gw.aql.com/reseller/voipapi.php"')
    assert password_problems(tmp_path, text)[0][0] == "aql.password"


def test_password_is_found_in_systemd_credentials(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "aql-password").write_text("from-credential\n")
    text = GOOD.replace('url = "simulated"', 'url = "https://gw.aql.com/reseller/voipapi.php"')
    cfg = load_config(write(tmp_path, text), env={})
    assert aql_password(cfg, {"CREDENTIALS_DIRECTORY": str(creds)}).get_secret_value() == "from-credential"
    assert "from-credential" not in repr(cfg)


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace('voipnumber = "606309"', 'voipnumber = "1"').replace('alice = "07700 900001"', 'alice = "x"')
    paths = {p for p, _ in problems(tmp_path, text)}
    assert {"numbers[0].voipnumber", "people.alice"} <= paths


def test_inline_password_readable_by_others_warns(tmp_path: Path) -> None:
    text = GOOD.replace('url = "simulated"', 'url = "https://gw.aql.com/reseller/voipapi.php"\npassword = "hunter2hunter2"')
    p = write(tmp_path, text)
    p.chmod(0o644)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(p, env={})
    assert any("can be read by other users" in str(w.message) for w in caught)
    assert not any("hunter2hunter2" in str(w.message) for w in caught)
    p.chmod(0o600)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(p, env={})
    assert not caught


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    load_config(path, env={})


def test_check_command_exits_zero_on_the_example() -> None:
    r = run_cli("check", "--config", "config/example.toml")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "calendar rota: OK" in r.stdout


def test_check_command_prints_path_and_reason_and_exits_nonzero(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace('voipnumber = "606309"', 'voipnumber = "12"'))
    r = run_cli("check", "--config", str(p))
    assert r.returncode != 0
    assert "At 'numbers[0].voipnumber'" in r.stderr
    assert "Traceback" not in r.stderr


def test_check_command_on_broken_toml(tmp_path: Path) -> None:
    p = write(tmp_path, "timezone = \n")
    r = run_cli("check", "--config", str(p))
    assert r.returncode != 0 and "not valid TOML" in r.stderr and "Traceback" not in r.stderr


def test_durations() -> None:
    assert parse_duration("1h30m") == dt.timedelta(hours=1, minutes=30)
    assert parse_duration("2d") == dt.timedelta(days=2)
    assert parse_duration(90) == dt.timedelta(seconds=90)
    for bad in ("", "5 minutes", "-5m", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
    st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_keys = st.sampled_from(
    ["timezone", "aql.url", "aql.min_slack", "aql.window_wraps_midnight", "aql.concurrency", "people.alice",
     "calendars.rota", "numbers.voipnumber", "numbers.office_hours", "numbers.fallback", "numbers.rota",
     "numbers.forwardcli", "daemon.horizon", "on_drift", "state_dir", "alerts.webhook", "nonsense"]
)


@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(_keys, _values), min_size=1, max_size=4))
def test_fuzzed_values_give_path_and_reason_never_a_traceback(tmp_path_factory: pytest.TempPathFactory, edits: list) -> None:
    base = tmp_path_factory.mktemp("cfg")
    (base / "rota.ics").write_text(ROTA)
    data = {
        "timezone": "Europe/London", "aql": {"url": "simulated"}, "people": {"alice": "07700 900001"},
        "calendars": {"rota": {"source": "rota.ics"}},
        "numbers": [{"voipnumber": "606309", "rota": "rota"}],
    }
    for key, value in edits:
        head, _, tail = key.partition(".")
        if head == "numbers":
            data["numbers"][0][tail] = value
        elif tail:
            data.setdefault(head, {})
            if isinstance(data[head], dict):
                data[head][tail] = value
        else:
            data[head] = value
    try:
        config_from_dict(data, base_dir=base, env={})
    except ConfigError as err:
        assert err.problems and all(isinstance(p, str) and r for p, r in err.problems)


def test_schema_and_cross_reference_errors_are_reported_in_one_run(tmp_path: Path) -> None:
    text = (GOOD.replace('voipnumber = "606309"', 'voipnumber = "1"').replace('rota = "rota"', 'rota = "rotaa"')
            .replace("[aql]", "[aql]\npasword = 'x'"))
    found = dict(problems(tmp_path, text))
    assert "not an aql VoIP number" in found["numbers[0].voipnumber"]
    assert "calendar 'rotaa' is not defined" in found["numbers[0].rota"] and "did you mean 'rota'" in found["numbers[0].rota"]
    assert found["aql.pasword"] == "unknown key; did you mean 'password'?"


def test_unknown_keys_in_tables_get_a_suggestion(tmp_path: Path) -> None:
    text = GOOD.replace('rota = { source = "rota.ics" }', 'rota = { sorce = "rota.ics" }').replace(
        'alice = "07700 900001"', 'alice = { phone = "07700 900001", notfy = [] }')
    found = dict(problems(tmp_path, text))
    assert "did you mean 'source'" in found["calendars.rota.sorce"]
    assert "did you mean 'notify'" in found["people.alice.notfy"]


def test_fallback_may_name_a_person_in_any_case(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD.replace('fallback = "07700 900999"', 'fallback = "Alice"')), env={})
    assert cfg.fallback_of(cfg.numbers[0]) == ("07700900001", "alice")
    found = dict(problems(tmp_path, GOOD.replace('fallback = "07700 900999"', 'fallback = "alicia"')))
    assert "nor a person in [people]" in found["numbers[0].fallback"]


def test_people_in_table_form_with_notify_urls(tmp_path: Path) -> None:
    text = GOOD.replace('alice = "07700 900001"',
                        'alice = { phone = "07700 900001", notify = ["json://127.0.0.1:9/x"] }\nbob = "07700 900002"')
    cfg = load_config(write(tmp_path, text), env={})
    assert cfg.phones == {"alice": "07700900001", "bob": "07700900002"}
    assert cfg.people["alice"].notify == ["json://127.0.0.1:9/x"] and cfg.people["bob"].notify == []
    found = dict(problems(tmp_path, GOOD.replace('alice = "07700 900001"', 'alice = "12345"')))
    assert "not a valid phone number" in found["people.alice"]  # the short form's key, not people.alice.phone


def test_web_page_is_off_by_default_and_listens_on_loopback(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={})
    assert (cfg.web.port, cfg.web.listen) == (None, "127.0.0.1")
    cfg = load_config(write(tmp_path, GOOD + "[web]\nport = 8080\nlisten = '::1'\n"), env={})
    assert (cfg.web.port, cfg.web.listen) == (8080, "::1")


@pytest.mark.parametrize("listen", ["0.0.0.0", "192.0.2.10", "::"])
def test_web_page_on_the_network_needs_allow_remote(tmp_path: Path, listen: str) -> None:
    (where, why), = problems(tmp_path, GOOD + f"[web]\nport = 8080\nlisten = '{listen}'\n")
    assert where == "web.listen" and "not a loopback address" in why and "allow_remote = true" in why
    cfg = load_config(write(tmp_path, GOOD + f"[web]\nport = 8080\nlisten = '{listen}'\nallow_remote = true\n"), env={})
    assert cfg.web.listen == listen


def test_web_listen_must_be_an_address_and_port_a_port(tmp_path: Path) -> None:
    found = dict(problems(tmp_path, GOOD + "[web]\nport = 70000\nlisten = 'example.org'\n"))
    assert set(found) == {"web.port", "web.listen"}
    assert "not an IP address" in found["web.listen"]


# ------------------------------------------------------------------------------------------- [cluster]

CLUSTER = GOOD + '[cluster]\ndatabase = "postgresql://forwardd@db.example:5432/forwardd?sslmode=require"\n'


def test_without_cluster_nothing_is_shared(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).cluster is None


def test_cluster_defaults_name_the_host_and_give_the_documented_timings(tmp_path: Path) -> None:
    import socket

    from forwardd.config import db_password

    cfg = load_config(write(tmp_path, CLUSTER))
    assert cfg.cluster is not None
    assert cfg.cluster.instance_name() == socket.gethostname().split(".")[0]
    assert (cfg.cluster.check_every, cfg.cluster.fence, cfg.cluster.lease) == (
        dt.timedelta(seconds=1), dt.timedelta(seconds=3), dt.timedelta(seconds=6))
    assert db_password(cfg, env={}) is None  # libpq's own ways (.pgpass, peer) then


@pytest.mark.parametrize("extra,path,reason", [
    ('database = "postgresql://forwardd:hunter2@db/forwardd"', "cluster.database", "holds a password"),
    ('database = "postgresql://db/forwardd?password=hunter2"', "cluster.database", "holds a password"),
    ('database = "postgresql://forwardd:hun?ter2@db/forwardd"', "cluster.database", "holds a password"),
    ('database = "postgresql://db/forwardd?sslpassword=hunter2"', "cluster.database", "holds a sslpassword"),
    ('database = "postgresql://db/forwardd?PASSWORD=hunter2"', "cluster.database", "libpq cannot read"),
    ('database = "mysql://db/forwardd"', "cluster.database", "postgresql://"),
    ('database = "postgresql://db/f"\ninstance = "host a"', "cluster.instance", "not a name"),
    ('database = "postgresql://db/f"\nfence = "10s"', "cluster", "2 × check_every < fence < lease"),
    ('database = "postgresql://db/f"\ncheck_every = "2s"', "cluster", "2 × check_every < fence < lease"),
    ('database = "postgresql://db/f"\ncheck_every = "0s"', "cluster.check_every", "longer than 0s"),
    ('database = "postgresql://db/f"\npassword_file = "a"\npassword_env = "B"', "cluster", "only one of"),
    ('databse = "postgresql://db/f"', "cluster.databse", "did you mean 'database'"),
])
def test_cluster_mistakes_name_their_key(tmp_path: Path, extra: str, path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD + "[cluster]\n" + extra + "\n"))
    assert any(p == path and reason in r for p, r in info.value.problems), info.value.problems
    assert "hunter2" not in str(info.value)


def test_database_password_from_env_file_or_systemd_credential(tmp_path: Path) -> None:
    from forwardd.config import db_password

    cfg = load_config(write(tmp_path, CLUSTER + 'password_env = "DB_PW"\n'))
    assert db_password(cfg, env={"DB_PW": "s3cret"}).get_secret_value() == "s3cret"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="cluster.password_env"):
        db_password(cfg, env={})
    (tmp_path / "db-pw").write_text("from-file\n")
    cfg = load_config(write(tmp_path, CLUSTER + 'password_file = "db-pw"\n'))
    assert db_password(cfg, env={}).get_secret_value() == "from-file"  # type: ignore[union-attr]
    cfg = load_config(write(tmp_path, CLUSTER + 'password_file = "missing"\n'))
    with pytest.raises(ConfigError, match="cluster.password_file"):
        db_password(cfg, env={})
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "db-password").write_text("from-systemd\n")
    cfg = load_config(write(tmp_path, CLUSTER))
    assert db_password(cfg, env={"CREDENTIALS_DIRECTORY": str(creds)}).get_secret_value() == "from-systemd"  # type: ignore[union-attr]


ACCOUNTS = """
[accounts.north]
url = "https://gw.aql.com/reseller/voipapi.php"
username = "north-ltd"
password_file = "north.secret"
max_requests_per_minute = 60
concurrency = 4
timeout = "5s"
window_wraps_midnight = true
min_slack = "2m"
[accounts.south]
url = "simulated"
[people]
alice = "07700 900001"
[[numbers]]
voipnumber = "606309"
account = "north"
fallback = "alice"
[[numbers]]
voipnumber = "606310"
account = "south"
fallback = "alice"
"""


def test_accounts_take_every_key_aql_takes_and_numbers_name_theirs(tmp_path: Path) -> None:
    (tmp_path / "north.secret").write_text("n0rth\n")
    cfg = load_config(write(tmp_path, ACCOUNTS), env={})
    assert cfg.account_names == ("north", "south")
    north = cfg.settings_of("606309")
    assert (north.username, north.max_requests_per_minute, north.concurrency, north.timeout.total_seconds(),
            north.window_wraps_midnight, north.min_slack) == ("north-ltd", 60, 4, 5.0, True, dt.timedelta(minutes=2))
    assert cfg.account_of("606310") == "south" and [n.voipnumber for n in cfg.numbers_of("north")] == ["606309"]
    from forwardd.config import account_password, credential_name

    assert account_password(cfg, "north", env={}).get_secret_value() == "n0rth"
    assert credential_name("north") == "aql-password-north" and credential_name("aql") == "aql-password"
    cred = tmp_path / "creds"
    cred.mkdir()
    (cred / "aql-password-north").write_text("from-systemd")
    bare = write(tmp_path, ACCOUNTS.replace('password_file = "north.secret"\n', ""), "bare.toml")
    assert account_password(load_config(bare, env={}), "north",
                            env={"CREDENTIALS_DIRECTORY": str(cred)}).get_secret_value() == "from-systemd"
    with pytest.raises(ConfigError, match=r"accounts.north.password.*aql-password-north"):
        account_password(load_config(bare, env={}), "north", env={})


@pytest.mark.parametrize(
    ("edit", "path", "reason"),
    [
        (('account = "south"', 'account = "sauth"'), "numbers[1].account", "did you mean 'south'?"),
        (('account = "south"\n', ''), "numbers[1].account", "no account named, and there is no [aql] table"),
        (("[accounts.south]", "[aql]\n[accounts.aql]"), "accounts.aql", "the name of the [aql] table's account"),
        (("max_requests_per_minute = 60", "max_requests_per_minut = 60"), "accounts.north.max_requests_per_minut",
         "did you mean 'max_requests_per_minute'?"),
    ],
)
def test_account_mistakes_are_named_at_their_key(tmp_path: Path, edit: tuple[str, str], path: str,
                                                 reason: str) -> None:
    found = dict(problems(tmp_path, ACCOUNTS.replace(*edit)))
    assert path in found and reason in found[path], found


def test_without_accounts_the_aql_table_is_every_numbers_account(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={})
    assert cfg.account_names == ("aql",) and cfg.settings_of("606309") is cfg.aql


def test_a_persons_notify_urls_are_checked_like_the_alerts(tmp_path: Path) -> None:
    bad = GOOD.replace('alice = "07700 900001"', 'alice = { phone = "07700 900001", notify = ["nonsense://x"] }')
    found = dict(problems(tmp_path, bad))
    assert "not a notification URL" in found["people.alice.notify[0]"], found
