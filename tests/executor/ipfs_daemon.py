"""A real IPFS node for tests: the js-ipfs daemon, offline, on 127.0.0.1.

Kubo cannot be installed on our machines (its npm package downloads from github.com); js-ipfs
serves the same `/api/v0` RPC. `.ci/install-jsipfs.sh` installs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx

from tests.helpers import free_port

INSTALL_COMMAND = "bash .ci/install-jsipfs.sh"


def jsipfs_dir() -> Path:
    """Where `.ci/install-jsipfs.sh` installs js-ipfs."""
    tools = os.environ.get("FILPLUS_TOOLS_DIR") or str(Path.home() / ".cache" / "filplus")
    return Path(tools) / "jsipfs"


def jsipfs_missing() -> str | None:
    """Why the daemon cannot start here, or None when it can."""
    cli = jsipfs_dir() / "node_modules" / ".bin" / "jsipfs"
    if not cli.exists():
        return f"js-ipfs is not installed in {jsipfs_dir()}; run `{INSTALL_COMMAND}`"
    if not (jsipfs_dir() / "withresolvers.cjs").exists():
        return f"the js-ipfs polyfill is missing; run `{INSTALL_COMMAND}`"
    return None


class JsIpfsDaemon:
    """`jsipfs daemon --offline` with its own repository, API and gateway on free ports.

    The repository uses the `test` profile (no bootstrap peers, no MDNS) and no swarm
    addresses: with any, js-ipfs 0.66 hangs at start on libp2p version skew, and a test node
    must not listen for peers anyway.
    """

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.log_path = repo.parent / "jsipfs.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0

    def _env(self) -> dict[str, str]:
        polyfill = jsipfs_dir() / "withresolvers.cjs"
        return dict(os.environ, IPFS_PATH=str(self.repo), NODE_OPTIONS=f"--require {polyfill}")

    def _jsipfs(self, *args: str) -> list[str]:
        return ["node", str(jsipfs_dir() / "node_modules" / ".bin" / "jsipfs"), *args]

    def start(self, timeout: float = 90) -> str:
        """Initialise the repository, start the daemon and wait until the RPC answers."""
        started = time.monotonic()
        init = subprocess.run(
            self._jsipfs("init", "--profile=test"),
            env=self._env(),
            capture_output=True,
            timeout=timeout,
        )
        if init.returncode != 0:
            raise RuntimeError(f"jsipfs init failed: {init.stderr.decode(errors='replace')}")
        # Edited in the file: one `jsipfs config` call costs a second of Node start-up.
        config_path = self.repo / "config"
        config = json.loads(config_path.read_text())
        config["Addresses"].update(
            API=f"/ip4/127.0.0.1/tcp/{self.api_port}",
            Gateway=f"/ip4/127.0.0.1/tcp/{free_port()}",
            RPC=f"/ip4/127.0.0.1/tcp/{free_port()}",  # js-ipfs's gRPC-over-websocket server
            Swarm=[],
        )
        config_path.write_text(json.dumps(config, indent=2))

        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self._jsipfs("daemon", "--offline"),
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in pytest must not reach the daemon first
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jsipfs daemon exited {self.process.returncode}: {self.log()}")
            try:
                if httpx.post(f"{self.url}/api/v0/version", timeout=2).status_code == 200:
                    self.start_seconds = time.monotonic() - started
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"jsipfs daemon not ready after {timeout:g} s: {self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (js-ipfs closes its repository), then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> JsIpfsDaemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
