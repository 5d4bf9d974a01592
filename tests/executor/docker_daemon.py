"""A private Docker engine for tests, and the images its tests run.

The daemon runs with no bridge and no iptables changes (`--bridge=none --iptables=false
--ip-masq=false`) on its own socket, so it touches neither the host's network nor a Docker
engine the machine may already run. Its data root lives under /tmp and is kept between runs,
so the images built here are built once; a second test session running at the same time gets
a throwaway data root of its own (two daemons must not share one).

Images are built without a registry, which our machines cannot reach:
- `tiny:1`: busybox-static and a link per applet, imported from a tar (about 2 MB);
- `local/debian-py:bookworm`: Debian bookworm minbase with python3-minimal from debootstrap,
  whose tar is cached under `${FILPLUS_TOOLS_DIR:-~/.cache/filplus}/docker/`.

`.ci/install-docker.sh` installs dockerd, busybox-static and debootstrap.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import docker
import requests
from docker.errors import DockerException, ImageNotFound

INSTALL_COMMAND = "bash .ci/install-docker.sh"
TINY_IMAGE = "tiny:1"
DEBIAN_IMAGE = "local/debian-py:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Kept between runs: the image cache. Under /tmp because dockerd needs a local filesystem
# that supports overlayfs, which a home directory on a network or overlay mount may not be.
SHARED_STATE = Path("/tmp/filplus-dockerd")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class DockerDaemonError(Exception):
    """The daemon or an image could not be made ready; the message says why."""


def _which(name: str) -> str | None:
    # /usr/sbin is not on a non-login PATH everywhere, and dockerd and debootstrap live there.
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    return shutil.which(name, path=path)


def tools_dir() -> Path:
    """Where test tools and their caches go: `${FILPLUS_TOOLS_DIR:-~/.cache/filplus}`."""
    tools = os.environ.get("FILPLUS_TOOLS_DIR") or str(Path.home() / ".cache" / "filplus")
    return Path(tools)


def debian_tar_path() -> Path:
    return tools_dir() / "docker" / "debian-py-bookworm.tar"


def docker_missing() -> str | None:
    """Why a private dockerd cannot start here, or None when it can."""
    if _which("dockerd") is None:
        return f"dockerd is not installed; run `{INSTALL_COMMAND}` (Debian package docker.io)"
    if os.geteuid() != 0:
        return "a private dockerd needs root; run the Docker engine tests as root"
    if _which("busybox") is None:
        return f"busybox is not installed; run `{INSTALL_COMMAND}` (busybox-static)"
    return None


def debootstrap_missing() -> str | None:
    """Why the Debian image cannot be built here, or None (a cached tar needs no tool)."""
    if debian_tar_path().exists() or _which("debootstrap") is not None:
        return None
    return f"debootstrap is not installed; run `{INSTALL_COMMAND}`"


@contextlib.contextmanager
def _flock(path: Path, *, blocking: bool) -> Iterator[IO[str] | None]:
    """Hold an exclusive lock on `path` while open; yields None when `blocking` is off and
    someone else holds it. The lock lasts while any process has the file open."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        yield handle


class DockerDaemon:
    """`dockerd` on a socket of its own under a short /tmp directory.

    The exec root holds containerd's sockets, whose paths must stay under the 108-byte limit
    of a unix socket address, hence `/tmp/fpd-XXXXXXXX/` rather than pytest's deep temp dirs.
    """

    def __init__(self) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix="fpd-", dir="/tmp"))
        self.socket_path = self.run_dir / "docker.sock"
        self.host = f"unix://{self.socket_path}"
        self.log_path = self.run_dir / "dockerd.log"
        self.data_root = SHARED_STATE / "data"
        self.private_data = False
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0
        self._lock_stack = contextlib.ExitStack()
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 60) -> float:
        """Start dockerd and wait until it answers; returns the seconds that took.

        On any failure the daemon is stopped again, so a failed start leaves nothing running.
        """
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> float:
        lock = self._lock_stack.enter_context(_flock(SHARED_STATE / "lock", blocking=False))
        if lock is None:
            # Another session's daemon owns the shared data root.
            self.data_root = Path(tempfile.mkdtemp(prefix="fpd-data-", dir="/tmp"))
            self.private_data = True
        dockerd = _which("dockerd")
        assert dockerd is not None
        command = [
            dockerd,
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            f"--data-root={self.data_root}",
            f"--exec-root={self.run_dir / 'exec'}",
            f"--host={self.host}",
            f"--pidfile={self.run_dir / 'dockerd.pid'}",
            # Used only when the machine already runs a containerd: keep apart from its moby.
            "--containerd-namespace=filplus-test",
            "--containerd-plugins-namespace=filplus-test-plugins",
        ]
        self._log = self.log_path.open("wb")
        started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # dockerd holds the shared root's lock too: should this session die and leave it
            # running, the next session sees the root taken and uses a private one.
            pass_fds=() if lock is None else (lock.fileno(),),
        )
        deadline = started + timeout
        while True:
            if self.process.poll() is not None:
                raise DockerDaemonError(
                    f"dockerd exited with code {self.process.returncode} at start: "
                    f"{self.log_tail()} (log: {self.log_path})"
                )
            if self.socket_path.exists() and self._pings():
                break
            if time.monotonic() > deadline:
                raise DockerDaemonError(
                    f"dockerd did not answer on {self.host} within {timeout:g} s: "
                    f"{self.log_tail()} (log: {self.log_path})"
                )
            time.sleep(0.02)
        self.start_seconds = time.monotonic() - started
        self._remove_leftover_containers()
        return self.start_seconds

    def _pings(self) -> bool:
        try:
            with self.client(timeout=5) as client:
                return bool(client.ping())
        except (DockerException, requests.RequestException):
            return False

    def _remove_leftover_containers(self) -> None:
        # A previous session killed mid-test can leave containers in the shared data root.
        with self.client() as client:
            for container in client.containers.list(all=True):
                container.remove(force=True)

    @contextlib.contextmanager
    def client(self, timeout: int = 120) -> Iterator[docker.DockerClient]:
        """A client on this daemon, closed at the end of the `with` block."""
        with contextlib.closing(docker.DockerClient(base_url=self.host, timeout=timeout)) as c:
            yield c

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def stop(self, timeout: float = 20) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL) and remove what this session created."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
        finally:
            if self._log is not None:
                self._log.close()
            self._lock_stack.close()
            if self.private_data:
                shutil.rmtree(self.data_root, ignore_errors=True)
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # --- images ----------------------------------------------------------------------------

    def has_image(self, name: str) -> bool:
        with self.client() as client:
            try:
                client.images.get(name)
            except ImageNotFound:
                return False
            return True

    def ensure_tiny_image(self) -> str:
        """`tiny:1`: busybox-static with every applet linked into /bin (imported once)."""
        if not self.has_image(TINY_IMAGE):
            repository, tag = TINY_IMAGE.split(":")
            with self.client() as client:
                client.api.import_image_from_data(
                    busybox_rootfs_tar(), repository=repository, tag=tag
                )
        return TINY_IMAGE

    def ensure_debian_image(self) -> str:
        """`local/debian-py:bookworm`, imported from the cached debootstrap tar."""
        if not self.has_image(DEBIAN_IMAGE):
            tar = build_debian_rootfs_tar()
            repository, tag = DEBIAN_IMAGE.split(":")
            with self.client(timeout=600) as client:
                client.api.import_image_from_file(str(tar), repository=repository, tag=tag)
        return DEBIAN_IMAGE


def busybox_rootfs_tar() -> bytes:
    """A root filesystem of busybox-static alone, as a tar (about 2 MB)."""
    busybox = _which("busybox")
    if busybox is None:
        raise DockerDaemonError(f"busybox is not installed; run `{INSTALL_COMMAND}`")
    listing = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in sorted(set(listing.stdout.split()) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def build_debian_rootfs_tar(timeout: float = 900) -> Path:
    """The Debian + python3 rootfs tar, built with debootstrap unless already cached."""
    target = debian_tar_path()
    if target.exists():
        return target
    with _flock(target.with_suffix(".lock"), blocking=True):
        if target.exists():  # built by another session while we waited
            return target
        debootstrap = _which("debootstrap")
        if debootstrap is None:
            raise DockerDaemonError(f"debootstrap is not installed; run `{INSTALL_COMMAND}`")
        work = Path(tempfile.mkdtemp(prefix="fpd-debootstrap-", dir="/tmp"))
        rootfs = work / "rootfs"
        try:
            command = [
                debootstrap,
                "--variant=minbase",
                "--include=python3-minimal",
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ]
            try:
                run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise DockerDaemonError(
                    f"debootstrap did not finish within {timeout:g} s ({DEBIAN_MIRROR})"
                ) from None
            if run.returncode != 0:
                tail = " | ".join((run.stderr or run.stdout).strip().splitlines()[-3:])
                raise DockerDaemonError(f"debootstrap failed ({DEBIAN_MIRROR}): {tail}")
            # The downloaded packages and indexes are a third of the tree and no job needs them.
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (rootfs / leftover).glob("*"):
                    if path.is_file():
                        path.unlink()
            partial = target.with_suffix(".tar.partial")
            subprocess.run(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
                check=True,
                capture_output=True,
            )
            partial.rename(target)
        finally:
            _unmount_below(rootfs)
            shutil.rmtree(work, ignore_errors=True)
    return target


def _unmount_below(root: Path) -> None:
    # debootstrap mounts /proc and /sys in the target; a failed run can leave them mounted,
    # and removing the tree through them would walk the host's /proc.
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(root) + "/"
    targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for mountpoint in sorted(targets, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], capture_output=True)
