"""The site's icon: a static SVG that every page links, and /favicon.ico (what browsers and
crawlers ask for without looking) leads to it instead of a 404."""

from __future__ import annotations

from django.test import Client


def test_favicon_ico_leads_to_the_static_icon(client: Client) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301
    icon = client.get(answer["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"] == "image/svg+xml"
    body = b"".join(icon.streaming_content) if icon.streaming else icon.content  # type: ignore[attr-defined]
    assert body.lstrip().startswith(b"<svg") and b"</svg>" in body


def test_every_page_links_the_icon(client: Client) -> None:
    page = client.get("/login/")
    assert '<link rel="icon" href="/static/dashboard/favicon.svg" type="image/svg+xml">' in (
        page.content.decode()
    )
