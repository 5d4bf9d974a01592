"""The environment readers of dashboard/env.py, value by value, with their exact errors; and
that settings.py wires each checked setting to its check (in a real start-up)."""

from __future__ import annotations

import re
from collections.abc import Callable
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
]


@pytest.mark.parametrize(("variable", "value", "error"), WIRED)
def test_start_up_refuses_a_setting_outside_its_bounds(
    tmp_path: Path, variable: str, value: str, error: str
) -> None:
    refused = manage(process_env(tmp_path, **{variable: value}), "check")
    assert refused.returncode != 0
    assert f"ImproperlyConfigured: {error}\n" in refused.stderr
