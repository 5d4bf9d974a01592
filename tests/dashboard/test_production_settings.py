"""Production settings from the environment: the secret key's length, HTTPS behind a proxy,
security headers, and 500s that leave their traceback on stderr."""

from __future__ import annotations

from pathlib import Path

from django.test import Client

from tests.helpers import manage, process_env

PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "k" * 40, "ALLOWED_HOSTS": "testserver"}


def setting(tmp_path: Path, code: str, **env: str) -> str:
    done = manage(process_env(tmp_path, **env), "shell", "-c", code)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_short_secret_key_is_refused_in_production(tmp_path: Path) -> None:
    refused = manage(process_env(tmp_path, **{**PRODUCTION, "SECRET_KEY": "short"}), "check")
    assert refused.returncode != 0
    assert "SECRET_KEY must be at least 32 characters" in refused.stderr
    assert "Traceback" not in refused.stderr.split("ImproperlyConfigured")[-1]
    assert manage(process_env(tmp_path, **PRODUCTION), "check").returncode == 0


def test_https_turns_on_secure_cookies_the_proxy_header_and_hsts(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER,"
        " s.SECURE_HSTS_SECONDS)"
    )
    assert setting(tmp_path, code, **PRODUCTION) == "False False None 0"
    assert (
        setting(tmp_path, code, **PRODUCTION, HTTPS="1")
        == "True True ('HTTP_X_FORWARDED_PROTO', 'https') 31536000"
    )
    assert setting(tmp_path, code, **PRODUCTION, HTTPS="1", HSTS_SECONDS="600").endswith(" 600")
    bad = manage(process_env(tmp_path, **PRODUCTION, HTTPS="maybe"), "check")
    assert bad.returncode != 0 and "HTTPS" in bad.stderr


def test_https_answers_carry_hsts_and_secure_cookies(settings, client: Client, personas) -> None:  # type: ignore[no-untyped-def]
    settings.SECURE_HSTS_SECONDS = 600
    settings.SESSION_COOKIE_SECURE = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    page = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert page["Strict-Transport-Security"] == "max-age=600"
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert page["Referrer-Policy"] == "same-origin"
    assert page["X-Frame-Options"] == "DENY"
    from tests.base import PASSWORD

    signed_in = client.post(
        "/login/", {"username": "mona", "password": PASSWORD}, HTTP_X_FORWARDED_PROTO="https"
    )
    assert signed_in.cookies["sessionid"]["secure"] is True


def test_a_production_500_logs_its_traceback_to_stderr(tmp_path: Path) -> None:
    code = (
        "from django.test import Client, override_settings\n"
        "with override_settings(ROOT_URLCONF='tests.dashboard.boom_urls'):\n"
        "    print(Client(raise_request_exception=False).get('/boom').status_code)\n"
    )
    done = manage(process_env(tmp_path, **PRODUCTION), "shell", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "500"
    assert "Traceback" in done.stderr and "RuntimeError: boom: a bug in a view" in done.stderr
