"""The environment readers of dashboard/env.py, value by value, with their exact errors, and
NAME_FILE in place of NAME; and that settings.py wires each checked setting to its check (in a
real start-up)."""

from __future__ import annotations

import re
from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import (
    env_bool,
    env_choice,
    env_http_urls,
    env_int,
    env_list,
    env_match,
    env_networks,
    env_rate,
    env_str,
    env_url,
)
from tests.helpers import manage, process_env

NAME = "FILPLUS_TEST_SETTING"
PROVIDER = re.compile(r"f0\d{1,20}")

Read = Callable[[], object]
# (what reads NAME, NAME's value or None for unset, what it gives)
GOOD: list[tuple[Read, str | None, object]] = [
    (lambda: env_str(NAME), None, None),
    (lambda: env_str(NAME, "d"), None, "d"),
    (lambda: env_str(NAME, "d"), "  ", "d"),
    (lambda: env_str(NAME, "d"), " v ", "v"),
    (lambda: env_bool(NAME, True), None, True),
    (lambda: env_bool(NAME, True), "", False),
    (lambda: env_bool(NAME, False), " Yes ", True),
    (lambda: env_bool(NAME, True), "off", False),
    (lambda: env_int(NAME, 5), None, 5),
    (lambda: env_int(NAME, 5), " ", 5),
    (lambda: env_int(NAME, 5), " 7 ", 7),
    (lambda: env_int(NAME, 5, minimum=0), "0", 0),
    (lambda: env_int(NAME, 5, maximum=10), "10", 10),
    (lambda: env_int(NAME, 5, minimum=0, maximum=100), "100", 100),
    (lambda: env_choice(NAME, "all", ("all", "sample")), None, "all"),
    (lambda: env_choice(NAME, "all", ("all", "sample")), " sample ", "sample"),
    (lambda: env_match(NAME, pattern=PROVIDER, expected="f0…"), None, None),
    (lambda: env_match(NAME, pattern=PROVIDER, expected="f0…"), "f01234", "f01234"),
    (lambda: env_url(NAME, schemes=("http", "https")), None, None),
    (lambda: env_url(NAME, schemes=("http", "https")), "HTTPS://a.example", "HTTPS://a.example"),
    (lambda: env_list(NAME), None, []),
    (lambda: env_list(NAME), " a, b,, ", ["a", "b"]),
    (lambda: env_http_urls(NAME), None, []),
    (lambda: env_http_urls(NAME), "http://a:1/, https://b/x/,", ["http://a:1", "https://b/x"]),
    (lambda: env_rate(NAME, "1200/min"), None, "1200/min"),
    (lambda: env_rate(NAME, "1200/min"), "", "1200/min"),
    (lambda: env_rate(NAME, "1200/min"), "0", None),
    (lambda: env_rate(NAME, "1200/min"), "10/s", "10/s"),
    (lambda: env_networks(NAME), None, ()),
    (
        lambda: env_networks(NAME),
        "10.0.0.0/8, 192.0.2.7 ,::1",
        (ip_network("10.0.0.0/8"), ip_network("192.0.2.7/32"), ip_network("::1/128")),
    ),
]
# (what reads NAME, NAME's value, the whole error)
BAD: list[tuple[Read, str, str]] = [
    (
        lambda: env_bool(NAME, False),
        "maybe",
        f"{NAME} must be a boolean (true/false/1/0), got 'maybe'",
    ),
    (lambda: env_int(NAME, 5), "7.5", f"{NAME} must be an integer, got '7.5'"),
    (lambda: env_int(NAME, 5, minimum=1), "0", f"{NAME} must be >= 1, got 0"),
    (lambda: env_int(NAME, 5, maximum=10), "11", f"{NAME} must be <= 10, got 11"),
    (lambda: env_int(NAME, 5, minimum=0, maximum=100), "101", f"{NAME} must be 0 to 100, got 101"),
    (lambda: env_int(NAME, 5, minimum=0, maximum=100), "-1", f"{NAME} must be 0 to 100, got -1"),
    (
        lambda: env_choice(NAME, "all", ("all", "sample", "on_request")),
        "some",
        f"{NAME} must be all, sample or on_request, got 'some'",
    ),
    (
        lambda: env_choice(NAME, "all_blessed", ("all_blessed", "always")),
        "never",
        f"{NAME} must be all_blessed or always, got 'never'",
    ),
    (
        lambda: env_match(NAME, pattern=PROVIDER, expected="a provider like f01234"),
        "t01234",
        f"{NAME} must be a provider like f01234, got 't01234'",
    ),
    (
        lambda: env_url(NAME, schemes=("http", "https")),
        "ftp://a",
        f"{NAME} must be a URL starting with one of http://, https://, got 'ftp://a'",
    ),
    (lambda: env_http_urls(NAME), "http://a, ftp://b", f"{NAME}: 'ftp://b' is not an http(s) URL"),
    (lambda: env_http_urls(NAME), "/", f"{NAME}: '' is not an http(s) URL"),
    (lambda: env_http_urls(NAME), "http://a b", f"{NAME}: 'http://a b' is not an http(s) URL"),
    (
        lambda: env_http_urls(NAME),
        "http://" + "a" * 494,
        f"{NAME}: {'http://' + 'a' * 494!r} is not an http(s) URL",
    ),
    (
        lambda: env_rate(NAME, "1200/min"),
        "10/x",
        f"{NAME} must look like 1200/min (or 0 for no limit), got '10/x'",
    ),
    (
        lambda: env_rate(NAME, "1200/min"),
        "0/min",
        f"{NAME} must look like 1200/min (or 0 for no limit), got '0/min'",
    ),
    (
        lambda: env_networks(NAME),
        "10.0.0.0/8, proxy.internal",
        f"{NAME}: 'proxy.internal' is not an IP address or a CIDR network "
        "('proxy.internal' does not appear to be an IPv4 or IPv6 network)",
    ),
    (
        lambda: env_networks(NAME),
        "10.0.0.1/8",
        f"{NAME}: '10.0.0.1/8' is not an IP address or a CIDR network "
        "(10.0.0.1/8 has host bits set)",
    ),
]


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)
    monkeypatch.delenv(f"{NAME}_FILE", raising=False)


@pytest.mark.parametrize(("read", "value", "expected"), GOOD)
def test_a_good_value_is_read(
    read: Read, value: str | None, expected: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is not None:
        monkeypatch.setenv(NAME, value)
    assert read() == expected


@pytest.mark.parametrize(("read", "value", "error"), BAD)
def test_a_bad_value_is_refused_naming_the_variable(
    read: Read, value: str, error: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NAME, value)
    with pytest.raises(ImproperlyConfigured) as refused:
        read()
    assert str(refused.value) == error


# (variable, a value settings.py refuses, the error)
WIRED = [
    ("SCANNER_EVENT_RANGE", "2881", "SCANNER_EVENT_RANGE must be 1 to 2880, got 2881"),
    ("REEXECUTE_SAMPLE_PERCENT", "101", "REEXECUTE_SAMPLE_PERCENT must be 0 to 100, got 101"),
    (
        "REEXECUTE_POLICY",
        "some",
        "REEXECUTE_POLICY must be all, sample or on_request, got 'some'",
    ),
    (
        "BACALHAU_PROBE_POLICY",
        "never",
        "BACALHAU_PROBE_POLICY must be all_blessed or always, got 'never'",
    ),
    (
        "EXECUTOR_PROVIDER",
        "t01234",
        "EXECUTOR_PROVIDER must be a storage provider id address like f01234, got 't01234'",
    ),
    (
        "BACALHAU_ORCHESTRATORS",
        "https://a, b",
        "BACALHAU_ORCHESTRATORS: 'b' is not an http(s) URL",
    ),
    (
        "API_RATE_LIMIT",
        "lots",
        "API_RATE_LIMIT must look like 1200/min (or 0 for no limit), got 'lots'",
    ),
    (
        "API_ADDRESS_RATE_LIMIT",
        "lots",
        "API_ADDRESS_RATE_LIMIT must look like 1200/min (or 0 for no limit), got 'lots'",
    ),
    (
        "TRUSTED_PROXIES",
        "10.0.0.0/33",
        "TRUSTED_PROXIES: '10.0.0.0/33' is not an IP address or a CIDR network "
        "('10.0.0.0/33' does not appear to be an IPv4 or IPv6 network)",
    ),
]


@pytest.mark.parametrize(("variable", "value", "error"), WIRED)
def test_start_up_refuses_a_setting_outside_its_bounds(
    tmp_path: Path, variable: str, value: str, error: str
) -> None:
    refused = manage(process_env(tmp_path, **{variable: value}), "check")
    assert refused.returncode != 0
    assert f"ImproperlyConfigured: {error}\n" in refused.stderr


def test_a_value_can_come_from_the_file_name_file_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    monkeypatch.setenv(f"{NAME}_FILE", str(secret))
    secret.write_text(" v \n")
    assert env_str(NAME) == "v"
    secret.write_text("42\r\n\n")
    assert env_int(NAME, 5, maximum=100) == 42
    secret.write_text("a,b\n")
    assert env_list(NAME) == ["a", "b"]
    secret.write_text("")
    assert env_str(NAME, "d") == "d"
    # Checked as NAME's own value would be.
    secret.write_text("101\n")
    with pytest.raises(ImproperlyConfigured) as refused:
        env_int(NAME, 5, maximum=100)
    assert str(refused.value) == f"{NAME} must be <= 100, got 101"


def test_an_empty_name_or_name_file_counts_as_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from the file\n")
    monkeypatch.setenv(NAME, "")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret))
    assert env_str(NAME) == "from the file"
    monkeypatch.setenv(NAME, "from the environment")
    monkeypatch.setenv(f"{NAME}_FILE", "")
    assert env_str(NAME) == "from the environment"


def test_name_and_name_file_both_set_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("v\n")
    monkeypatch.setenv(NAME, "v")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret))
    with pytest.raises(ImproperlyConfigured) as refused:
        env_str(NAME)
    assert str(refused.value) == f"{NAME} and {NAME}_FILE are both set: set one of them"


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda path: None, "No such file or directory"),
        (lambda path: path.mkdir(), "Is a directory"),
        (lambda path: path.write_bytes(b"\xff\xfe\n"), "not UTF-8 text"),
    ],
)
def test_a_name_file_that_cannot_be_read_is_refused_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[Path], object],
    why: str,
) -> None:
    secret = tmp_path / "secret"
    make(secret)
    monkeypatch.setenv(f"{NAME}_FILE", str(secret))
    with pytest.raises(ImproperlyConfigured) as refused:
        env_bool(NAME, False)
    assert str(refused.value) == f"{NAME}_FILE: cannot read {NAME} from {str(secret)!r}: {why}"


# Start-ups in a subprocess, as production starts: DEBUG off, a key and the hosts given.
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "k" * 40, "ALLOWED_HOSTS": "testserver"}


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    files = {
        "SECRET_KEY": "f" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'from-file.sqlite3'}",
        "LOTUS_RPC_TOKEN": "a.jwt.token",
        "CACHE_URL": "redis://cache.example:6379/1",
        "CELERY_BROKER_URL": "amqp://broker.example:5672//",
    }
    env = process_env(tmp_path, **PRODUCTION)
    for name, value in files.items():
        env.pop(name, None)  # SECRET_KEY, and any the parent process has
        (tmp_path / name).write_text(value + "\n")
        env[f"{name}_FILE"] = str(tmp_path / name)
    code = (
        "from django.conf import settings as s;"
        "print([s.SECRET_KEY, str(s.DATABASES['default']['NAME']), s.LOTUS_RPC_TOKEN,"
        " s.CACHE_URL, s.CELERY_BROKER_URL])"
    )
    done = manage(env, "shell", "-c", code)
    assert done.returncode == 0, done.stderr
    database = str(tmp_path / "from-file.sqlite3")
    expected = [
        "f" * 40,
        database,
        "a.jwt.token",
        "redis://cache.example:6379/1",
        "amqp://broker.example:5672//",
    ]
    assert done.stdout.strip().splitlines()[-1] == repr(expected)
    assert manage(env, "check").returncode == 0


def test_a_secret_in_the_environment_and_in_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("f" * 40 + "\n")
    both = process_env(tmp_path, **PRODUCTION, SECRET_KEY_FILE=str(tmp_path / "key"))
    refused = manage(both, "check")
    assert refused.returncode != 0
    assert "SECRET_KEY and SECRET_KEY_FILE are both set" in refused.stderr
    assert "Traceback" not in refused.stderr.split("ImproperlyConfigured")[-1]
    missing = str(tmp_path / "missing")
    env = process_env(tmp_path, **{**PRODUCTION, "SECRET_KEY": "", "SECRET_KEY_FILE": missing})
    refused = manage(env, "check")
    assert refused.returncode != 0
    assert f"SECRET_KEY_FILE: cannot read SECRET_KEY from {missing!r}" in refused.stderr


@pytest.mark.parametrize(
    "value",
    [
        "mysql://filplus:s3cret-pw@db.example/filplus",  # a scheme we do not take
        "redis//filplus:s3cret-pw@cache.example:6379/0",  # no "://" at all
        "postgres:/filplus:s3cret-pw@db.example/x",
    ],
)
def test_a_refused_url_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Start-up errors go to logs that more people read than the secret store: a URL that
    carries a password is named with the password masked."""
    monkeypatch.setenv(NAME, value)
    for read in (lambda: env_url(NAME, schemes=("postgres", "redis")), lambda: env_http_urls(NAME)):
        with pytest.raises(ImproperlyConfigured) as refused:
            read()
        message = str(refused.value)
        assert "s3cret-pw" not in message
        assert NAME in message and ":***@" in message
