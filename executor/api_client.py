"""The dashboard's HTTP API from a compute node or a job author's machine (httpx, no Django).

Used by the CLI's `--api` mode and by the Airflow operators: submit a job, wait for it,
describe it, cancel it, upload content, and download content as a CAR that is verified block
by block before anything is written out.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from executor.locations import Location, LocationError, locations_from_json

__all__ = ["ApiError", "DashboardClient", "TERMINAL_STATES"]

TERMINAL_STATES = ("completed", "failed", "cancelled")
CAR_TYPE = "application/vnd.ipld.car"


class ApiError(Exception):
    """The dashboard refused or could not be reached; `code` is the API's error code."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DashboardClient:
    def __init__(self, url: str, api_key: str, *, timeout: float = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ApiError(f"the dashboard URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "filplus-executor"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DashboardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the dashboard at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._json_of(self._request(method, path, **kwargs))

    @staticmethod
    def _json_of(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            where = f"{response.request.method} {response.request.url.path}"
            raise ApiError(f"{where}: the dashboard answered with no JSON") from None

    # --- jobs ------------------------------------------------------------------------------

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/api/v1/jobs", json=spec)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/jobs/{job_id}")

    def jobs(self, **filters: str) -> Iterator[dict[str, Any]]:
        """Every job the key may see, following the pagination."""
        url: str | None = "/api/v1/jobs"
        params: dict[str, str] | None = filters
        while url:
            page = self._json("GET", url, params=params)
            yield from page["results"]
            url, params = page.get("next"), None

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/jobs/{job_id}/cancel")

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float | None = None,
        poll_s: float = 1.0,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job is completed, failed or cancelled; ApiError on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        state = None
        while True:
            job = self.job(job_id)
            if job["state"] != state and on_change is not None:
                on_change(job)
            state = job["state"]
            if state in TERMINAL_STATES:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise ApiError(
                    f"job {job_id} is still {state} after {timeout_s:g} s", code="timeout"
                )
            time.sleep(
                poll_s if deadline is None else max(0.0, min(poll_s, deadline - time.monotonic()))
            )

    # --- re-executions (verifier nodes) ------------------------------------------------------

    def claim_reexecution(self) -> dict[str, Any] | None:
        """The oldest queued re-execution of another node's job, now ours; None when none."""
        response = self._request("POST", "/api/v1/reexecutions/claim")
        if response.status_code == 204:
            return None
        return self._json_of(response)

    def renew_reexecution(self, run_id: int) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/reexecutions/{run_id}/lease")

    def report_reexecution(self, run_id: int, outcome: dict[str, Any]) -> dict[str, Any]:
        """`outcome`: {"result_cid", "exit_code", "runtime_ms"}, or {"error"}."""
        kind = "failure" if "error" in outcome else "result"
        return self._json("POST", f"/api/v1/reexecutions/{run_id}/{kind}", json=outcome)

    # --- where content is stored --------------------------------------------------------------

    def locations(self, cid: str) -> list[Location]:
        """The storage providers the dashboard knows to hold `cid` (`GET /api/v1/locations/
        {cid}`: claims and deals of a piece, or of the piece a payload was sealed in). Hints
        only: whatever they serve is verified. ApiError, or LocationError when malformed."""
        body = self._json("GET", f"/api/v1/locations/{cid}")
        if not isinstance(body, dict):
            raise LocationError("the locations answer is not an object")
        return locations_from_json(body.get("locations"))

    # --- content ---------------------------------------------------------------------------

    def upload(self, data: bytes | BinaryIO, *, car: bool = False) -> str:
        """Store a file's bytes, or a CAR, in the dashboard's store; the CID (a CAR's root)."""
        content_type = CAR_TYPE if car else "application/octet-stream"
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)  # httpx would stream these as an iterable of ints
        body = self._json(
            "POST", "/api/v1/content", content=data, headers={"Content-Type": content_type}
        )
        return body["cid"]

    def iter_cat(self, cid: str) -> Iterator[bytes]:
        """A stored file's bytes as the dashboard serves them (for showing, not for keeping:
        `download` checks every block against its CID)."""
        return self._stream(f"/ipfs/{cid}", chunk=1 << 16)

    def iter_car(self, cid: str) -> Iterator[bytes]:
        """The CAR of a CID, as the dashboard builds it (`/ipfs/{cid}?format=car`)."""
        return self._stream(f"/ipfs/{cid}", params={"format": "car"}, headers={"Accept": CAR_TYPE})

    def _stream(self, path: str, *, chunk: int = 1 << 20, **kwargs: Any) -> Iterator[bytes]:
        try:
            with self._http.stream("GET", path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                yield from response.iter_bytes(chunk)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the dashboard at {self.url}: {exc}") from None

    def download(self, cid: str, dest: Path) -> Path:
        """Fetch a CID as a CAR, check every block against its CID, then write it at dest."""
        from executor.embedded_store import EmbeddedStore

        with tempfile.TemporaryDirectory(prefix="filplus-get-") as tmp:
            car_path = Path(tmp) / "content.car"
            with car_path.open("wb") as out:
                for chunk in self.iter_car(cid):
                    out.write(chunk)
            store = EmbeddedStore(Path(tmp) / "ipfs")
            with car_path.open("rb") as car:
                store.import_car(car)
            return store.get(cid, dest)


def _error(response: httpx.Response) -> ApiError:
    code, message = "", response.text[:200]
    try:
        body = response.json()
        code = body["error"]["code"]
        message = body["error"]["message"]
        fields = body["error"].get("fields")
        if fields:
            message += " (" + "; ".join(f"{k}: {v}" for k, v in fields.items()) + ")"
    except (ValueError, KeyError, TypeError):
        pass
    return ApiError(
        f"HTTP {response.status_code}: {message}", status=response.status_code, code=code
    )
