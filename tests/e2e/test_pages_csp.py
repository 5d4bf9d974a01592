"""The pages under their Content-Security-Policy in Chromium: every page and the API docs
render with no violation reported."""

from __future__ import annotations

from typing import Any

PAGES = ["/", "/overview/", "/audit/", "/scanner/", "/keys/", "/login/", "/api/docs/"]


def test_pages_load_under_the_csp_without_violations(sign_in: Any) -> None:
    page = sign_in("ada")  # an admin: every page, API keys included
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text[:60]}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    for path in PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "script-src 'self';" in policy, path
        if path != "/api/docs/":  # Swagger UI sets inline styles; only its page allows them
            assert "style-src 'self';" in policy, path
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        page.wait_for_load_state("networkidle")
    page.goto("/api/docs/")
    page.locator(".swagger-ui .info").wait_for()  # the docs' script ran and rendered
    assert violations == []
