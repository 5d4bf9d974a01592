"""Fixtures of the re-execution tests: the dashboard's store, an external node's store, and a
verifier node's key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.keys.services import create_api_key
from dashboard.models import ApiKey
from executor.embedded_store import EmbeddedStore


@pytest.fixture
def store(settings, tmp_path: Path) -> EmbeddedStore:
    """The dashboard's own store (the embedded default)."""
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    settings.REEXECUTE_POLICY = "all"
    settings.REEXECUTE_BEFORE_VERIFY = False
    return EmbeddedStore(settings.DATA_DIR / "ipfs")


@pytest.fixture
def node_store(tmp_path: Path) -> EmbeddedStore:
    """The external node's own store, elsewhere on disk."""
    return EmbeddedStore(tmp_path / "node")


@pytest.fixture
def verifier(db) -> tuple[ApiKey, str]:  # type: ignore[no-untyped-def]
    return create_api_key(scope="node", name="verifier-1", verifier=True, actor="test")
