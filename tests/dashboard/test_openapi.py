"""The committed OpenAPI schema matches the code; the docs page needs no CDN."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.helpers import ROOT

pytestmark = pytest.mark.django_db


def test_committed_schema_matches_the_code(tmp_path: Path) -> None:
    generated = tmp_path / "openapi.yaml"
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--file",
            str(generated),
            "--validate",
            "--fail-on-warn",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = (ROOT / "openapi.yaml").read_text()
    assert generated.read_text() == committed, (
        "openapi.yaml is out of date: run `.venv/bin/python manage.py spectacular "
        "--file openapi.yaml` and commit it"
    )


def test_schema_is_served(client: Client) -> None:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/eligibility" in response.content


def test_docs_page_loads_its_assets_locally(client: Client) -> None:
    page = client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any("swagger-ui" in a for a in assets)
    for asset in assets:
        assert not asset.startswith(("http://", "https://", "//")), asset
        response = client.get(asset)
        assert response.status_code == 200, asset
