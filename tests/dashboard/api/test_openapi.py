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


API_DOC = ROOT / "docs" / "api.md"
# Error codes of the account and key commands (manage.py, the admin): not API answers.
NOT_API_CODES = {
    "invalid_role", "invalid_username", "weak_password", "invalid_scope", "invalid_name",
    "invalid_provider", "invalid_verifier", "user_required", "unknown_moderator",
    "user_not_allowed", "unknown_key",
    "invalid_node", "invalid_client", "invalid_key",  # admin and CLI: Bacalhau nodes, clients
}  # fmt: skip


def _codes_in_code() -> set[str]:
    """Every error code the dashboard can answer with: DomainError and error_body calls, the
    input serializers' codes, and the DRF exception handler's table."""
    codes = set()
    for path in (ROOT / "dashboard").rglob("*.py"):
        text = path.read_text()
        codes |= set(re.findall(r'(?:DomainError|error_body)\(\s*"([a-z_]+)"', text))
        codes |= set(re.findall(r'\(exceptions\.\w+, "([a-z_]+)"\)', text))
        codes |= set(
            re.findall(r'^\s+(?:cid_)?error_code(?:: ClassVar\[str\])? = "([a-z_]+)"', text, re.M)
        )
    return codes - NOT_API_CODES


def test_the_contract_page_names_every_operation_and_every_error_code() -> None:
    """docs/api.md is the contract in words: it may not fall behind the schema or the code,
    nor name a code the code never sends."""
    import yaml

    doc = API_DOC.read_text()
    schema = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    for path, operations in schema["paths"].items():
        for method in operations:
            assert f"`{method.upper()} {path}`" in doc, (
                f"{method.upper()} {path} not in docs/api.md"
            )
    in_code = _codes_in_code()
    assert len(in_code) >= 40
    table = set(re.findall(r"^\| `([a-z_]+)` \| \d{3} \|", doc, re.M))
    assert in_code - table == set(), "codes the API sends that docs/api.md does not list"
    assert table - in_code == set(), "codes docs/api.md lists that the code never sends"


def test_every_setting_is_in_the_readme_table() -> None:
    """Every environment variable dashboard/settings.py reads is in the README's table."""
    settings_py = (ROOT / "dashboard" / "settings.py").read_text()
    names = set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', settings_py))
    assert len(names) >= 30
    readme = (ROOT / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `"))
    missing = {name for name in names if f"`{name}`" not in table}
    assert missing == set(), f"settings missing from the README's configuration table: {missing}"
