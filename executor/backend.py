"""Which storage backend a process uses: Kubo's RPC when `IPFS_API_URL` is set, else the
embedded store. The one place that knows both backends, so that neither `storage.py` (the
interface) nor a backend imports the other backend."""

from __future__ import annotations

from pathlib import Path

from executor import environment
from executor.embedded_store import EmbeddedStore
from executor.kubo import KuboClient
from executor.storage import Storage, StorageError

__all__ = ["open_storage"]


def open_storage(ipfs_api_url: str | None = None, data_dir: Path | None = None) -> Storage:
    """The configured backend: Kubo RPC when `IPFS_API_URL` is set, else the embedded store.

    Arguments override the environment so that the dashboard passes its settings and the
    CLI, which has no Django, reads the same variables itself.
    """
    url = ipfs_api_url if ipfs_api_url is not None else environment.ipfs_api_url()
    if url:
        try:
            find_timeout = environment.ipfs_find_timeout_s()
        except environment.BadSetting as exc:
            raise StorageError(str(exc)) from None
        return KuboClient(url, find_timeout=find_timeout)
    root = data_dir if data_dir is not None else environment.data_dir()
    return EmbeddedStore(root / "ipfs")
