"""Which storage backend a process uses: Kubo's RPC when `IPFS_API_URL` is set, else the
embedded store. The one place that knows both backends, so that neither `storage.py` (the
interface) nor a backend imports the other backend."""

from __future__ import annotations

import os
from pathlib import Path

from executor.embedded_store import EmbeddedStore
from executor.kubo import KuboClient
from executor.storage import Storage, StorageError

__all__ = ["open_storage"]


def open_storage(ipfs_api_url: str | None = None, data_dir: Path | None = None) -> Storage:
    """The configured backend: Kubo RPC when `IPFS_API_URL` is set, else the embedded store.

    Arguments override the environment so that the dashboard passes its settings and the
    CLI, which has no Django, reads the same variables itself.
    """
    url = ipfs_api_url if ipfs_api_url is not None else os.environ.get("IPFS_API_URL") or None
    if url:
        # How long a node may look for a block before we call it absent: 2 s suits an
        # offline node; an online Kubo searching the network needs longer.
        raw = os.environ.get("IPFS_FIND_TIMEOUT_S") or "2"
        try:
            find_timeout = float(raw)
        except ValueError:
            raise StorageError(
                f"IPFS_FIND_TIMEOUT_S must be a number of seconds, got {raw!r}"
            ) from None
        return KuboClient(url, find_timeout=find_timeout)
    root = data_dir if data_dir is not None else Path(os.environ.get("DATA_DIR") or "data")
    return EmbeddedStore(root / "ipfs")
