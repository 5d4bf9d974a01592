"""`manage.py serve --port`: documented in --help, and PORT in the environment sets its
default (read in settings like every other variable, so a bad value stops start-up)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import manage, process_env


def _help(env: dict[str, str]) -> str:
    answer = manage(env, "serve", "--help")
    assert answer.returncode == 0, answer.stderr
    return " ".join(answer.stdout.split())  # argparse wraps its lines


def test_port_has_help_and_defaults_to_8000(tmp_path: Path) -> None:
    env = process_env(tmp_path)
    env.pop("PORT", None)
    text = _help(env)
    assert "--port PORT" in text
    assert "the web server's port (default: the PORT variable, else 8000; now 8000)" in text


def test_the_port_variable_sets_the_default(tmp_path: Path) -> None:
    text = _help(process_env(tmp_path, PORT="9123"))
    assert "now 9123)" in text


def test_a_bad_port_variable_stops_start_up_naming_it(tmp_path: Path) -> None:
    for bad in ("http", "0", "70000"):
        answer = manage(process_env(tmp_path, PORT=bad), "serve", "--help")
        assert answer.returncode != 0
        assert "PORT must be" in answer.stderr, answer.stderr
