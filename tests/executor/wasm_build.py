"""Build the test suite's WASM workloads from the sources in wasm_src/, cached across runs.

`require("cat")` is what tests call: it returns the path of a built module, or skips the test
(fails it when CI is "true") with a reason naming the installer script when a toolchain is
missing. Modules land in `${FILPLUS_TOOLS_DIR:-~/.cache/filplus}/wasm/<name>-<key>.wasm`, where
the key hashes the source, the compiler's version and the command line, so an edit or a
compiler upgrade rebuilds and an unchanged tree reuses the file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE_DIR = Path(__file__).resolve().parent / "wasm_src"
INSTALLER = ".ci/install-wasm-toolchains.sh"

# rustup's rustc comes first on PATH and has no wasm32-wasi std (it cannot be downloaded
# offline); Debian's rustc with libstd-rust-dev-wasm32 does.
RUSTC = "/usr/bin/rustc"
RUST_LLD = "/usr/bin/rust-lld"  # Debian's rustc ships it as a link to lld-14
CLANG = "clang-14"


@dataclass(frozen=True)
class _Toolchain:
    compiler: str
    version_args: tuple[str, ...]
    # Files the compiler needs besides itself (glob patterns, absolute), with the Debian
    # package that provides each.
    needs: tuple[tuple[str, str], ...]
    packages: str

    def version(self) -> str | None:
        """The compiler's full version text (part of the cache key), or None when absent."""
        return _version_text(self.compiler, self.version_args)

    def command(self, source: Path, output: Path) -> list[str]:
        if self.compiler == CLANG:
            return [CLANG, "--target=wasm32-wasi", "-O2", "-Wl,--strip-all",
                    "-o", str(output), str(source)]  # fmt: skip
        # The remap keeps the checkout's absolute path (it appears in panic messages) out of
        # the module, so the same source gives the same bytes, hence CID, on any machine. The
        # linker is named by path because rustc otherwise looks `rust-lld` up on PATH.
        return [RUSTC, "--edition", "2021", "--target", "wasm32-wasi", "-O",
                "-C", "strip=symbols", "-C", f"linker={RUST_LLD}",
                f"--remap-path-prefix={source.parent}=wasm_src",
                "-o", str(output), str(source)]  # fmt: skip


_TOOLCHAINS = {
    ".c": _Toolchain(
        compiler=CLANG,
        version_args=("--version",),
        needs=(
            ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"),
            (
                "/usr/lib/llvm-14/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a",
                "libclang-rt-14-dev-wasm32",
            ),
            ("/usr/lib/llvm-14/bin/wasm-ld", "lld-14"),
        ),
        packages="clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32",
    ),
    ".rs": _Toolchain(
        compiler=RUSTC,
        version_args=("-vV",),
        needs=(
            ("/usr/lib/rustlib/wasm32-wasi/lib/libstd-*.rlib", "libstd-rust-dev-wasm32"),
            (RUST_LLD, "rustc, lld-14"),
        ),
        packages="rustc libstd-rust-dev-wasm32",
    ),
}


class BuildError(RuntimeError):
    """The compiler rejected a source: the message carries its output."""


def source_path(name: str) -> Path:
    """The one source called `name` (cat -> wasm_src/cat.c, probe -> wasm_src/probe.rs)."""
    candidates = [SOURCE_DIR / f"{name}{ext}" for ext in _TOOLCHAINS]
    found = [path for path in candidates if path.is_file()]
    if len(found) != 1:
        known = sorted(p.stem for p in SOURCE_DIR.iterdir() if p.suffix in _TOOLCHAINS)
        raise ValueError(f"no single WASM source named {name!r} in {SOURCE_DIR} (have {known})")
    return found[0]


def cache_dir() -> Path:
    root = os.environ.get("FILPLUS_TOOLS_DIR") or Path.home() / ".cache" / "filplus"
    return Path(root) / "wasm"


def build_command(source: Path, output: Path) -> list[str]:
    """The compiler command line that turns `source` (.c or .rs) into the module `output`."""
    return _TOOLCHAINS[source.suffix].command(source, output)


def toolchain_missing(name: str) -> str | None:
    """Why `name` cannot be built on this machine, or None when it can."""
    toolchain = _TOOLCHAINS[source_path(name).suffix]
    absent = []
    if toolchain.version() is None:
        absent.append(toolchain.compiler)
    absent += [
        f"{pattern} ({package})" for pattern, package in toolchain.needs if not _exists(pattern)
    ]
    if not absent:
        return None
    return (
        f"cannot build {name}.wasm: missing {', '.join(absent)}; "
        f"run {INSTALLER} (apt-get install {toolchain.packages})"
    )


def build(name: str) -> Path:
    """Compile wasm_src/<name>.{c,rs} unless the cache already holds this exact build."""
    source = source_path(name)
    toolchain = _TOOLCHAINS[source.suffix]
    reason = toolchain_missing(name)
    if reason is not None:
        raise BuildError(reason)
    key = hashlib.sha256()
    for part in (
        source.read_bytes(),
        (toolchain.version() or "").encode(),
        # The command with neutral paths: where the checkout lives must not change the key.
        "\0".join(toolchain.command(Path("SOURCE"), Path("OUTPUT"))).encode(),
    ):
        key.update(hashlib.sha256(part).digest())
    target_dir = cache_dir()
    target = target_dir / f"{name}-{key.hexdigest()}.wasm"
    if target.is_file():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    # Compile into a private temporary file and rename it into place, so a concurrent test run
    # never sees a half-written module.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-", suffix=".wasm", dir=target_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        result = subprocess.run(
            toolchain.command(source, tmp), capture_output=True, text=True, timeout=300, check=False
        )
        if result.returncode != 0:
            raise BuildError(
                f"building {source.name} failed (exit {result.returncode}):\n"
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def require(name: str) -> Path:
    """The built module for a test: skips when a toolchain is missing, but CI must build it."""
    reason = toolchain_missing(name)
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return build(name)


def _exists(pattern: str) -> bool:
    # exists() follows links, so a dangling one (rust-lld without lld-14) counts as missing.
    return any(path.exists() for path in Path("/").glob(pattern.lstrip("/")))


@functools.cache
def _version_text(compiler: str, args: tuple[str, ...]) -> str | None:
    if shutil.which(compiler) is None:
        return None
    try:
        result = subprocess.run([compiler, *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None
