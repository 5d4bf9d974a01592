"""Sign-in limits that hold against look-alike names, racing requests, several web
processes and the admin's own sign-in page; failed sign-ins are audited."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from django.test import Client

from dashboard.models import AuditEvent
from tests.base import PASSWORD, Personas
from tests.helpers import ROOT, answers, database_urls, free_port, manage, process_env, wait_until


@pytest.mark.parametrize("look_alike", ["ｍona", "ᵐona", "𝐦ona", "MONA", "Mona"])
def test_look_alike_names_share_the_accounts_count(
    personas: Personas, settings, look_alike: str
) -> None:  # type: ignore[no-untyped-def]
    settings.LOGIN_FAILURES_ALLOWED = 3
    for _ in range(3):
        Client(REMOTE_ADDR="10.1.0.1").post("/login/", {"username": "mona", "password": "x"})
    other = Client(REMOTE_ADDR="10.1.0.2")
    refused = other.post("/login/", {"username": look_alike, "password": PASSWORD})
    assert refused.status_code == 429
    # and the other way round: failures under a look-alike count for the account
    settings.LOGIN_FAILURES_ALLOWED = 100
    assert Client().post("/login/", {"username": "ada", "password": PASSWORD}).status_code == 302


def test_failures_under_a_look_alike_lock_the_real_name(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOGIN_FAILURES_ALLOWED = 4
    for i, name in enumerate(["ｍona", "ᵐona", "𝐦ona", "MONA"]):
        Client(REMOTE_ADDR=f"10.2.0.{i}").post("/login/", {"username": name, "password": "x"})
    assert Client().post("/login/", {"username": "mona", "password": PASSWORD}).status_code == 429


def test_the_admin_sign_in_has_the_same_limit(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOGIN_FAILURES_ALLOWED = 3
    client = Client()
    for _ in range(3):
        client.post("/admin/login/", {"username": "ada", "password": "wrong"})
    assert (
        client.post("/admin/login/", {"username": "ada", "password": PASSWORD}).status_code == 429
    )
    assert AuditEvent.objects.filter(action="sign_in.failed", target="user:ada").count() == 4


def test_failed_sign_ins_are_audited_without_the_password(personas: Personas) -> None:
    Client(REMOTE_ADDR="10.3.0.1").post("/login/", {"username": "mona", "password": "s3cret!pw"})
    [event] = AuditEvent.objects.filter(action="sign_in.failed")
    assert (event.actor, event.target) == ("address:10.3.0.1", "user:mona")
    assert event.after == {"address": "10.3.0.1", "password_checked": True}
    assert "s3cret" not in repr(
        list(AuditEvent.objects.values_list("actor", "target", "before", "after", "reason"))
    )
    # a name with a NUL (which PostgreSQL refuses in text) is audited, not a 500: the form's
    # error on the sign-in page, like any failed sign-in
    assert Client().post("/login/", {"username": "a\x00b", "password": "x"}).status_code == 200


def _sign_in(url: str, password: str, out: list[int], start: threading.Barrier) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        form = client.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None
        start.wait()
        answer = client.post(
            "/login/",
            data={"username": "mod2", "password": password, "csrfmiddlewaretoken": token[1]},
            headers={"Referer": f"{url}/login/"},
        )
        out.append(answer.status_code)


def test_racing_attempts_on_two_workers_check_at_most_the_allowed_passwords(
    tmp_path: Path,
) -> None:
    databases = database_urls(tmp_path)
    env = process_env(tmp_path, DATABASE_URL=next(databases), LOGIN_FAILURES_ALLOWED="5")
    env.pop("CACHE_URL", None)  # counters per process, if they lived in the cache
    assert manage(env, "migrate", "-v0").returncode == 0
    made = manage(
        dict(env, MODERATOR_PASSWORD=PASSWORD), "create_moderator", "mod2", "--role", "moderator"
    )
    assert made.returncode == 0, made.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi", "-c", "gunicorn.conf.py"]
        + ["-w", "2", "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null"],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_until(lambda: answers(f"{url}/healthz"), "gunicorn")
        statuses: list[int] = []
        passwords = ["wrong"] * 23 + [PASSWORD]
        start = threading.Barrier(len(passwords))
        threads = [
            threading.Thread(target=_sign_in, args=(url, pw, statuses, start)) for pw in passwords
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(statuses) == 24 and set(statuses) <= {200, 302, 429}
        checked = manage(
            env,
            "shell",
            "-c",
            "from dashboard.models import AuditEvent as A;"
            "failed = A.objects.filter(action='sign_in.failed');"
            "print(failed.filter(after__password_checked=True).count())",
        )
        assert checked.returncode == 0, checked.stderr
        wrong_checked = int(checked.stdout.split()[-1])
        signed_in = statuses.count(302)
        # at most 5 wrong passwords were checked, however the 24 requests raced
        assert wrong_checked <= 5 and signed_in <= 1
        assert statuses.count(429) >= 18
    finally:
        server.terminate()
        server.wait(timeout=30)
        databases.close()


def test_behind_a_trusted_proxy_each_client_address_counts(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    """The address counted is the client's: behind our own proxy (TRUSTED_PROXIES) the one it
    forwards; from anyone else, a forwarded-for header is ignored."""
    from ipaddress import ip_network

    settings.LOGIN_FAILURES_ALLOWED = 2
    settings.TRUSTED_PROXIES = (ip_network("10.9.0.0/16"),)
    proxy = Client(REMOTE_ADDR="10.9.0.1")
    for name in ("a", "b"):  # two failures from one client, under two names
        proxy.post("/login/", {"username": name, "password": "x"}, HTTP_X_FORWARDED_FOR="1.2.3.4")
    refused = proxy.post(
        "/login/", {"username": "mona", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="1.2.3.4"
    )
    assert refused.status_code == 429
    other = proxy.post(
        "/login/", {"username": "mona", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="5.6.7.8"
    )
    assert other.status_code == 302
    event = AuditEvent.objects.filter(action="sign_in.failed").first()
    assert event is not None and event.after["address"] == "1.2.3.4"
    # not through our proxy: the header is the client's own invention
    direct = Client(REMOTE_ADDR="192.0.2.1")
    for name in ("c", "d"):
        direct.post("/login/", {"username": name, "password": "x"}, HTTP_X_FORWARDED_FOR="9.9.9.9")
    assert direct.post("/login/", {"username": "ada", "password": PASSWORD}).status_code == 429
