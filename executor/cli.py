"""`python -m executor`: the compute node's command line, in the manner of `bacalhau wasm run`.

Storage is the one `open_storage` picks: Kubo RPC when `IPFS_API_URL` is set, else the
embedded store under `DATA_DIR/ipfs`. Compiled modules are cached under `DATA_DIR/wasm-cache`.
Results and CIDs go to stdout (the result CID is the last line); progress and errors go to
stderr. Exit status: 0 done, 1 the job or a store operation failed, 2 a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from executor.cids import InvalidCID, normalize_cid
from executor.run import JobFailed, module_cache, run_job
from executor.spec import SpecError, parse_mount, parse_spec
from executor.storage import Storage, StorageError, open_storage

__all__ = ["main"]


class UsageError(Exception):
    """Bad command-line input; exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR") or "data")


def _storage() -> Storage:
    return open_storage(data_dir=_data_dir())


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- add / get ---------------------------------------------------------------------------------


def _add_parser() -> _Parser:
    parser = _Parser(prog="executor add", description="Add a file or folder to IPFS.")
    parser.add_argument("path", type=Path, help="file or folder (folders are added recursively)")
    return parser


def _cmd_add(argv: Sequence[str]) -> int:
    opts = _add_parser().parse_args(argv)
    if not opts.path.exists():
        raise UsageError(f"executor add: {opts.path}: no such file or directory")
    for entry in _storage().add_path(opts.path):
        print(entry.cid)
    return 0


def _get_parser() -> _Parser:
    parser = _Parser(prog="executor get", description="Download a CID to a file or folder.")
    parser.add_argument("cid")
    parser.add_argument("-o", "--output", type=Path, help="destination (default: ./CID)")
    return parser


def _cmd_get(argv: Sequence[str]) -> int:
    opts = _get_parser().parse_args(argv)
    cid = _parse_cid(opts.cid, "executor get")
    dest = opts.output or Path(cid)
    if dest.exists():
        raise UsageError(f"executor get: {dest} already exists")
    _storage().get(cid, dest)
    _say(f"saved {cid} to {dest}")
    return 0


def _parse_cid(text: str, prog: str) -> str:
    try:
        return normalize_cid(text)
    except InvalidCID:
        raise UsageError(f"{prog}: {text!r} is not a CID") from None


# --- wasm run ----------------------------------------------------------------------------------


def _wasm_run_parser() -> _Parser:
    parser = _Parser(
        prog="executor wasm run",
        description="Run a WASM module deterministically on IPFS inputs; print the result CID.",
    )
    parser.add_argument("module", help="module CID, or a local .wasm file (added to IPFS first)")
    parser.add_argument("args", nargs="*", help="arguments for the module (after argv[0])")
    parser.add_argument("--entry-point", default="_start", metavar="NAME")
    parser.add_argument(
        "-v", dest="inputs", action="append", default=[], metavar="CID:/path", help="mount input"
    )
    parser.add_argument("-e", dest="env", action="append", default=[], metavar="K=V")
    parser.add_argument("--timeout", type=float, metavar="SECONDS")
    parser.add_argument("--memory", type=int, metavar="BYTES")
    parser.add_argument("--fuel", type=int, metavar="N")
    parser.add_argument(
        "--wait", action="store_true", help="wait for the result (local runs always do)"
    )
    return parser


def _module_cid(text: str, storage: Storage) -> str:
    path = Path(text)
    if path.is_file():
        cid = storage.add_bytes(path.read_bytes())
        _say(f"added {path} as {cid}")
        return cid
    try:
        return normalize_cid(text)
    except InvalidCID:
        if text.endswith(".wasm"):
            raise UsageError(f"executor wasm run: {text}: no such file") from None
        raise UsageError(f"executor wasm run: {text!r} is neither a file nor a CID") from None


def _cmd_wasm_run(argv: Sequence[str]) -> int:
    parser = _wasm_run_parser()
    opts = parser.parse_intermixed_args(argv)
    env: dict[str, str] = {}
    for item in opts.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"executor wasm run: -e {item!r} is not of the form K=V")
        env[key] = value
    try:
        inputs = [parse_mount(text, "-v") for text in opts.inputs]
    except SpecError as exc:
        raise UsageError(f"executor wasm run: {exc}") from None
    storage = _storage()
    limits: dict[str, object] = {}
    if opts.timeout is not None:
        limits["timeout_s"] = opts.timeout
    if opts.memory is not None:
        limits["memory_bytes"] = opts.memory
    if opts.fuel is not None:
        limits["fuel"] = opts.fuel
    body = {
        "engine": "wasm",
        "wasm": {
            "module": _module_cid(opts.module, storage),
            "entry_point": opts.entry_point,
            "args": opts.args,
            "env": env,
        },
        "inputs": [{"cid": m.cid, "path": m.path} for m in inputs],
        "limits": limits,
    }
    try:
        spec = parse_spec(body)
    except SpecError as exc:
        flag = {"limits.timeout_s": "--timeout", "limits.memory_bytes": "--memory"}.get(
            exc.field, "--fuel" if exc.field == "limits.fuel" else exc.field
        )
        raise UsageError(f"executor wasm run: {flag}: {exc.message}") from None
    cache = module_cache(_data_dir() / "wasm-cache")
    result = run_job(spec, storage, cache=cache, progress=_say)
    _say(
        f"exit code {result.exit_code}; {result.runtime_ms} ms; fuel {result.fuel_used}; "
        f"stdout {result.stdout_cid}; outputs {result.outputs_cid}"
    )
    print(result.result_cid)
    return 0


# --- dispatch ----------------------------------------------------------------------------------

_COMMANDS: dict[tuple[str, ...], Callable[[Sequence[str]], int]] = {
    ("add",): _cmd_add,
    ("get",): _cmd_get,
    ("wasm", "run"): _cmd_wasm_run,
}

_USAGE = """usage: python -m executor COMMAND ...

commands:
  add PATH                      add a file or folder to IPFS; prints CIDs, the root last
  get CID [-o DEST]             download a file or folder
  wasm run {CID | file.wasm} [--entry-point NAME] [-v CID:/path]... [-e K=V]...
           [--timeout SECONDS] [--memory BYTES] [--fuel N] [ARGS...]
                                run a WASM job locally; prints the result CID last

`python -m executor COMMAND --help` for details. Storage: IPFS_API_URL (Kubo RPC) or the
embedded store under DATA_DIR/ipfs."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_USAGE)
        return 0 if args else 2
    for words, command in _COMMANDS.items():
        if tuple(args[: len(words)]) == words:
            try:
                return command(args[len(words) :])
            except UsageError as exc:
                _say(f"error: {exc}")
                return 2
            except (JobFailed, StorageError) as exc:
                _say(f"error: {exc}")
                return 1
            except OSError as exc:
                _say(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
                return 1
    _say(f"error: unknown command {' '.join(args[:2])!r}\n\n{_USAGE}")
    return 2
