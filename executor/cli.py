"""`python -m executor`: the compute node's command line, in the manner of `bacalhau wasm run`.

Storage is the one `open_storage` picks: Kubo RPC when `IPFS_API_URL` is set, else the
embedded store under `DATA_DIR/ipfs`. Compiled modules are cached under `DATA_DIR/wasm-cache`.
Results and CIDs go to stdout (the result CID is the last line; before it, a run shows the
job's own stdout, and its stderr goes to ours); progress and errors go to stderr. Exit
status: a run that finished exits with the job's exit code (255 for codes a shell would read
as 0); otherwise 0 done, 1 the job could not run or a store operation failed, 2 a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from executor import environment
from executor.api_client import ApiError, DashboardClient
from executor.backend import open_storage
from executor.cids import InvalidCID, normalize_cid
from executor.retrieval import RetrievalSettings
from executor.run import JobFailed, module_cache, run_job
from executor.spec import JobSpec, SpecError, parse_mount, parse_spec
from executor.storage import Storage, StorageError
from executor.wasm import TARGET, TARGETS

__all__ = ["main"]


class UsageError(Exception):
    """Bad command-line input; exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        default=environment.api_url(),
        metavar="URL",
        help="a dashboard to work against (default $FILPLUS_API_URL; none: run locally)",
    )
    parser.add_argument(
        "--api-key",
        default=environment.api_key(),
        metavar="KEY",
        help="API key for --api (default $FILPLUS_API_KEY)",
    )


def _client(opts: argparse.Namespace, prog: str) -> DashboardClient | None:
    if not opts.api:
        return None
    if not opts.api_key:
        raise UsageError(f"{prog}: --api needs --api-key (or FILPLUS_API_KEY)")
    try:
        return DashboardClient(opts.api, opts.api_key)
    except ApiError as exc:
        raise UsageError(f"{prog}: {exc}") from None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- add / get ---------------------------------------------------------------------------------


def _add_parser() -> _Parser:
    parser = _Parser(prog="executor add", description="Add a file or folder to IPFS.")
    parser.add_argument("path", type=Path, help="file or folder (folders are added recursively)")
    _api_options(parser)
    return parser


def _cmd_add(argv: Sequence[str]) -> int:
    opts = _add_parser().parse_args(argv)
    if not opts.path.exists():
        raise UsageError(f"executor add: {opts.path}: no such file or directory")
    client = _client(opts, "executor add")
    if client is None:
        for entry in open_storage().add_path(opts.path):
            print(entry.cid)
        return 0
    with client:
        print(_upload(client, opts.path))
    return 0


def _upload(client: DashboardClient, path: Path) -> str:
    """A file as its bytes; a folder as a CAR built here, so the dashboard gets the same CID."""
    if path.is_file():
        with path.open("rb") as data:
            return client.upload(data)
    from executor.embedded_store import EmbeddedStore

    with tempfile.TemporaryDirectory(prefix="filplus-add-") as tmp:
        local = EmbeddedStore(Path(tmp) / "ipfs")
        root = local.add_path(path)[-1].cid
        car = Path(tmp) / "upload.car"
        with car.open("wb") as out:
            local.export_car(root, out)
        with car.open("rb") as data:
            uploaded = client.upload(data, car=True)
    if uploaded != root:
        raise ApiError(f"the dashboard stored {uploaded}, not {root}")
    return root


def _get_parser() -> _Parser:
    parser = _Parser(prog="executor get", description="Download a CID to a file or folder.")
    parser.add_argument("cid")
    parser.add_argument("-o", "--output", type=Path, help="destination (default: ./CID)")
    _api_options(parser)
    return parser


def _cmd_get(argv: Sequence[str]) -> int:
    opts = _get_parser().parse_args(argv)
    cid = _parse_cid(opts.cid, "executor get")
    dest = opts.output or Path(cid)
    if dest.exists():
        raise UsageError(f"executor get: {dest} already exists")
    client = _client(opts, "executor get")
    if client is None:
        open_storage().get(cid, dest)
    else:
        with client:
            client.download(cid, dest)
    _say(f"saved {cid} to {dest}")
    return 0


def _parse_cid(text: str, prog: str) -> str:
    try:
        return normalize_cid(text)
    except InvalidCID:
        raise UsageError(f"{prog}: {text!r} is not a CID") from None


# --- wasm run / docker run ---------------------------------------------------------------------


def _job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v", dest="inputs", action="append", default=[], metavar="CID:/path", help="mount input"
    )
    parser.add_argument("-e", dest="env", action="append", default=[], metavar="K=V")
    parser.add_argument("--timeout", type=float, metavar="SECONDS")
    parser.add_argument("--memory", type=int, metavar="BYTES")
    parser.add_argument(
        "--annotation", dest="annotations", action="append", default=[], metavar="TEXT"
    )
    parser.add_argument(
        "--wait", action="store_true", help="with --api, wait and print the result CID"
    )
    parser.add_argument(
        "--wait-timeout", type=float, metavar="SECONDS", help="give up waiting after this long"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print the result CID (or job id) alone: no job output, progress or summary",
    )
    _api_options(parser)


def _wasm_run_parser() -> _Parser:
    parser = _Parser(
        prog="executor wasm run",
        description="Run a WASM module deterministically on IPFS inputs; print the result CID.",
    )
    parser.add_argument(
        "module", help="module CID, or a local .wasm or .wat file (added to IPFS first)"
    )
    parser.add_argument("args", nargs="*", help="arguments for the module (after argv[0])")
    parser.add_argument("--entry-point", default="_start", metavar="NAME")
    parser.add_argument("--fuel", type=int, metavar="N")
    parser.add_argument(
        "--engine",
        choices=sorted(TARGETS),
        help=f"run here on this engine (default {TARGET}); pulley is wasmtime's interpreter",
    )
    _job_options(parser)
    return parser


def _docker_run_parser() -> _Parser:
    parser = _Parser(
        prog="executor docker run",
        description="Run a command in a local Docker image with no network; print the result CID.",
    )
    parser.add_argument("image", help="a local image, e.g. local/debian-py:bookworm")
    parser.add_argument("command", nargs="*", help="after --: the command and its arguments")
    _job_options(parser)
    return parser


def _module_bytes(path: Path, prog: str) -> bytes:
    """A .wasm file's bytes, or a .wat file (WebAssembly text) compiled to them."""
    data = path.read_bytes()
    if path.suffix != ".wat":
        return data
    import wasmtime

    try:
        return bytes(wasmtime.wat2wasm(data.decode("utf-8")))
    except (UnicodeDecodeError, wasmtime.WasmtimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{prog}: {path}: not valid WebAssembly text: {first}") from None


def _module_cid(
    text: str, storage: Storage | None, client: DashboardClient | None, quiet: bool
) -> str:
    prog = "executor wasm run"
    path = Path(text)
    if path.is_file():
        module = _module_bytes(path, prog)
        if client is not None:
            cid = client.upload(module)
        else:
            assert storage is not None
            cid = storage.add_bytes(module)
        if not quiet:
            _say(f"added {path} as {cid}")
        return cid
    try:
        return normalize_cid(text)
    except InvalidCID:
        if text.endswith((".wasm", ".wat")):
            raise UsageError(f"{prog}: {text}: no such file") from None
        raise UsageError(f"{prog}: {text!r} is neither a file nor a CID") from None


_FLAGS = {
    "limits.timeout_s": "--timeout",
    "limits.memory_bytes": "--memory",
    "limits.fuel": "--fuel",
    "wasm.entry_point": "--entry-point",
}


def _common_body(opts: argparse.Namespace, prog: str) -> dict[str, object]:
    env: dict[str, str] = {}
    for item in opts.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"{prog}: -e {item!r} is not of the form K=V")
        env[key] = value
    try:
        inputs = [parse_mount(text, "-v") for text in opts.inputs]
    except SpecError as exc:
        raise UsageError(f"{prog}: {exc}") from None
    limits: dict[str, object] = {}
    if opts.timeout is not None:
        limits["timeout_s"] = opts.timeout
    if opts.memory is not None:
        limits["memory_bytes"] = opts.memory
    if getattr(opts, "fuel", None) is not None:
        limits["fuel"] = opts.fuel
    return {
        "env": env,
        "inputs": [{"cid": m.cid, "path": m.path} for m in inputs],
        "limits": limits,
        "annotations": opts.annotations,
    }


def _validated(body: dict[str, object], prog: str) -> JobSpec:
    try:
        return parse_spec(body)
    except SpecError as exc:
        flag = _FLAGS.get(exc.field, exc.field)
        raise UsageError(f"{prog}: {flag}: {exc.message}") from None


def _cmd_wasm_run(argv: Sequence[str]) -> int:
    prog = "executor wasm run"
    opts = _wasm_run_parser().parse_intermixed_args(argv)
    common = _common_body(opts, prog)
    client = _client(opts, prog)
    if client is not None and opts.engine is not None:
        raise UsageError(f"{prog}: --engine: runs here only; the dashboard's workers choose theirs")
    storage = None if client is not None else open_storage()
    body = {
        "engine": "wasm",
        "wasm": {
            "module": _module_cid(opts.module, storage, client, opts.quiet),
            "entry_point": opts.entry_point,
            "args": opts.args,
            "env": common.pop("env"),
        },
        **common,
    }
    spec = _validated(body, prog)
    return _execute(spec, opts, client, storage, opts.engine or TARGET)


def _cmd_docker_run(argv: Sequence[str]) -> int:
    prog = "executor docker run"
    opts = _docker_run_parser().parse_intermixed_args(argv)
    common = _common_body(opts, prog)
    client = _client(opts, prog)
    body = {
        "engine": "docker",
        "docker": {"image": opts.image, "entrypoint": opts.command, "env": common.pop("env")},
        **common,
    }
    spec = _validated(body, prog)
    return _execute(spec, opts, client, None if client is not None else open_storage())


def _execute(
    spec: JobSpec,
    opts: argparse.Namespace,
    client: DashboardClient | None,
    storage: Storage | None,
    target: str = TARGET,
) -> int:
    say = (lambda _: None) if opts.quiet else _say
    if client is None:
        assert storage is not None
        cache = module_cache(environment.data_dir() / "wasm-cache")
        result = run_job(
            spec, storage, cache=cache, progress=say, retrieval=_retrieval(), target=target
        )
        if not opts.quiet:
            _show(lambda cid: storage.iter_cat(cid), result.stdout_cid, result.stderr_cid)
        fuel = f"; fuel {result.fuel_used}" if result.fuel_used is not None else ""
        engine = (result.receipt or {}).get("target")
        on = f" on {engine}" if engine else ""
        say(
            f"exit code {result.exit_code}; {result.runtime_ms} ms{on}{fuel}; "
            f"stdout {result.stdout_cid}; outputs {result.outputs_cid}"
        )
        print(result.result_cid)
        return _exit_status(result.exit_code)
    with client:
        job = client.submit(spec.to_json())
        print(job["id"], flush=True)
        if not opts.wait:
            say(f"submitted job {job['id']} ({job['state']}); `executor describe {job['id']}`")
            return 0
        job = client.wait(
            job["id"],
            timeout_s=opts.wait_timeout,
            on_change=lambda j: say(f"job {j['id']}: {j['state']}"),
        )
        if job["state"] != "completed":
            error = job.get("error") or "no reason given"
            raise JobFailed(f"job {job['id']} {job['state']}: {error}")
        result = job["result"]
        if not opts.quiet:
            _show(client.iter_cat, result["stdout_cid"], result["stderr_cid"])
    say(f"exit code {result['exit_code']}; {result['runtime_ms']} ms")
    print(result["result_cid"])
    return _exit_status(result["exit_code"])


def _retrieval() -> RetrievalSettings:
    """Where a local run fetches inputs its store lacks: IPNI_URL, IPFS_GATEWAYS."""
    try:
        return RetrievalSettings.from_environment()
    except environment.BadSetting as exc:
        raise JobFailed(str(exc)) from None


SHOW_BYTES = 64 * 1024  # of each stream on the terminal; the rest stays in the result


def _show(read: Callable[[str], Iterable[bytes]], stdout_cid: str, stderr_cid: str) -> None:
    """The job's stdout and stderr on ours, as it finished. stdout ends with a newline, so
    the result CID is still a line of its own and the last one."""
    for cid, stream in ((stdout_cid, sys.stdout), (stderr_cid, sys.stderr)):
        shown = bytearray()
        more = False
        for chunk in read(cid):
            shown += chunk
            if len(shown) > SHOW_BYTES:
                more = True
                del shown[SHOW_BYTES:]
                break
        if not shown:
            continue
        stream.flush()
        stream.buffer.write(bytes(shown))
        if not shown.endswith(b"\n"):
            stream.buffer.write(b"\n")
        stream.buffer.flush()
        if more:
            _say(f"… the rest of it: `python -m executor get {cid}`")


def _exit_status(job_exit_code: int) -> int:
    """The job's exit code as ours; a shell sees only the low 8 bits, so a code that would
    read as 0 there reads as 255."""
    if job_exit_code == 0:
        return 0
    return job_exit_code if 0 < job_exit_code < 256 else 255


# --- commp -------------------------------------------------------------------------------------


def _commp_parser() -> _Parser:
    parser = _Parser(
        prog="executor commp",
        description="Print the piece CID (CommP) and padded piece size a storage deal of this "
        "data has: of a file's bytes, or of a CID's CAR as the dashboard builds it.",
    )
    parser.add_argument("target", help="a file (e.g. a .car), or a CID in the store")
    parser.add_argument("--piece-size", type=int, metavar="BYTES", help="pad to this size")
    _api_options(parser)
    return parser


def _cmd_commp(argv: Sequence[str]) -> int:
    from executor.commp import commp

    prog = "executor commp"
    opts = _commp_parser().parse_args(argv)
    path = Path(opts.target)
    with tempfile.TemporaryDirectory(prefix="filplus-commp-") as tmp:
        if not path.is_file():
            cid = _parse_cid(opts.target, prog)
            path = Path(tmp) / "data.car"
            client = _client(opts, prog)
            with path.open("wb") as out:
                if client is None:
                    open_storage().export_car(cid, out)
                else:
                    with client:
                        for chunk in client.iter_car(cid):
                            out.write(chunk)
        try:
            with path.open("rb") as data:
                piece = commp(data, piece_size=opts.piece_size)
        except ValueError as exc:
            raise UsageError(f"{prog}: --piece-size: {exc}") from None
    _say(f"{piece.payload_size} bytes in a piece of {piece.size} bytes")
    print(piece.cid, piece.size)
    return 0


# --- aggregate ---------------------------------------------------------------------------------

_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def _parse_size(text: str) -> int:
    """Bytes, or a number with KiB, MiB or GiB after it: 2048, 2KiB, 32GiB."""
    number = text.rstrip("KMGiB")
    unit = text[len(number) :]
    if not number.isdigit() or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (bytes, or e.g. 32GiB)")
    return int(number) * _UNITS[unit]


def _aggregate_parser() -> _Parser:
    parser = _Parser(
        prog="executor aggregate",
        description="Pack CAR files into one FRC-0058 aggregate (largest first): write its "
        "bytes, print its piece CID and size, and write one registration JSON per CAR with "
        "the CAR's piece and its inclusion proof.",
    )
    parser.add_argument("cars", nargs="*", type=Path, metavar="RESULT.car")
    parser.add_argument(
        "--size", type=_parse_size, required=True, help="padded aggregate size: bytes or 32GiB"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="AGG_FILE")
    parser.add_argument(
        "--registrations",
        type=Path,
        metavar="DIR",
        help="where the registration files go (default: next to --out), one PIECE_CID.json each",
    )
    return parser


def _cmd_aggregate(argv: Sequence[str]) -> int:
    from executor.aggregate import pack_aggregate, place_pieces
    from executor.car import CarError, CarReader
    from executor.cids import cid_from_bytes
    from executor.commp import minimal_piece_size

    prog = "executor aggregate"
    opts = _aggregate_parser().parse_args(argv)
    if not opts.cars:
        raise UsageError(f"{prog}: no CAR files given")
    with contextlib.ExitStack() as files:
        # Each CAR is opened once: its length places it (placement needs only the piece
        # sizes), and its CommP is computed while it is copied into the aggregate, so its
        # bytes are read once. One that changes length meanwhile is refused.
        inputs = []
        for path in opts.cars:
            data = files.enter_context(path.open("rb"))
            roots = CarReader(data).roots
            if not roots:
                raise CarError(f"{path}: the CAR names no root")
            length = data.seek(0, 2)
            data.seek(0)
            inputs.append((path, cid_from_bytes(roots[0]), data, length))
        # largest first wastes least alignment (a stable sort: ties keep the order given)
        inputs.sort(key=lambda item: -minimal_piece_size(item[3]))
        names = [str(path) for path, _, _, _ in inputs]
        try:
            place_pieces([minimal_piece_size(n) for _, _, _, n in inputs], opts.size, names)
        except ValueError as exc:
            raise UsageError(f"{prog}: {exc}") from None

        partial = opts.out.with_name(opts.out.name + ".part")
        try:
            with partial.open("wb") as out:
                aggregate = pack_aggregate(
                    [(data, length) for _, _, data, length in inputs], opts.size, out, names=names
                )
        except ValueError as exc:  # a CAR changed since it was measured
            partial.unlink(missing_ok=True)
            raise StorageError(str(exc)) from None
    partial.replace(opts.out)

    folder = opts.registrations or opts.out.parent
    folder.mkdir(parents=True, exist_ok=True)
    for (path, payload, _, _), piece in zip(inputs, aggregate.pieces, strict=True):
        body = {
            "piece_cid": piece.cid,
            "piece_size": piece.size,
            "payload_cid": payload,
            "aggregate": {
                "piece_cid": aggregate.cid,
                "piece_size": aggregate.size,
                "proof": aggregate.proof(piece.cid).to_json(),
            },
        }
        target = folder / f"{piece.cid}.json"
        target.write_text(json.dumps(body, indent=2) + "\n")
        _say(f"{path}: {piece.cid} ({piece.size} bytes) -> {target}")
    _say(f"{len(inputs)} pieces in an aggregate of {aggregate.size} bytes -> {opts.out}")
    print(aggregate.cid, aggregate.size)
    return 0


# --- describe ----------------------------------------------------------------------------------


def _describe_parser() -> _Parser:
    parser = _Parser(prog="executor describe", description="Show a job of the dashboard.")
    parser.add_argument("job_id")
    _api_options(parser)
    return parser


def _cmd_describe(argv: Sequence[str]) -> int:
    opts = _describe_parser().parse_args(argv)
    client = _client(opts, "executor describe")
    if client is None:
        raise UsageError("executor describe: needs --api URL (or FILPLUS_API_URL)")
    with client:
        print(json.dumps(client.job(opts.job_id), indent=2, sort_keys=True))
    return 0


# --- verify ------------------------------------------------------------------------------------


def _verify_parser() -> _Parser:
    parser = _Parser(
        prog="executor verify",
        description="Re-run other nodes' jobs a dashboard queued for re-execution and report "
        "the result CIDs (a node key made with create_api_key --verifier).",
    )
    parser.add_argument("--once", action="store_true", help="one re-execution at most, then exit")
    parser.add_argument(
        "--poll", type=float, default=5.0, metavar="SECONDS", help="pause when none is queued"
    )
    _api_options(parser)
    return parser


def _cmd_verify(argv: Sequence[str]) -> int:
    from executor.verify import verify_one

    opts = _verify_parser().parse_args(argv)
    if opts.poll <= 0:
        raise UsageError("executor verify: --poll must be more than 0 seconds")
    client = _client(opts, "executor verify")
    if client is None:
        raise UsageError("executor verify: needs --api URL (or FILPLUS_API_URL)")
    storage = open_storage()
    cache = module_cache(environment.data_dir() / "wasm-cache")
    retrieval = _retrieval()
    with client:
        try:
            while True:
                done = verify_one(client, storage, cache, _say, retrieval)
                if done is not None:
                    print(done["job_id"], done["state"], flush=True)
                elif opts.once:
                    _say("nothing queued for re-execution")
                if opts.once:
                    return 0
                if done is None:
                    time.sleep(opts.poll)
        except KeyboardInterrupt:
            _say("stopped")
            return 0


# --- conformance -------------------------------------------------------------------------------


def _cmd_conformance(argv: Sequence[str]) -> int:
    from executor.conformance import run_probes

    parser = argparse.ArgumentParser(
        prog="executor conformance",
        description="Run the determinism probes on each engine: one line a probe, exit 1 on "
        'any divergence (docs/jobs.md, "Conformance").',
    )
    parser.add_argument(
        "--engines", default="cranelift,pulley", help="comma-separated: cranelift, pulley"
    )
    opts = parser.parse_args(argv)
    targets = [t.strip() for t in opts.engines.split(",") if t.strip()]
    try:
        passed = run_probes(targets, print)
    except ValueError as exc:
        raise UsageError(f"--engines: {exc}") from None
    print("conformance: " + ("ok" if passed else "FAILED"))
    return 0 if passed else 1


# --- dispatch ----------------------------------------------------------------------------------

_COMMANDS: dict[tuple[str, ...], Callable[[Sequence[str]], int]] = {
    ("add",): _cmd_add,
    ("get",): _cmd_get,
    ("wasm", "run"): _cmd_wasm_run,
    ("docker", "run"): _cmd_docker_run,
    ("describe",): _cmd_describe,
    ("commp",): _cmd_commp,
    ("aggregate",): _cmd_aggregate,
    ("verify",): _cmd_verify,
    ("conformance",): _cmd_conformance,
}

_USAGE = """usage: python -m executor COMMAND ...

commands:
  add PATH                      add a file or folder to IPFS; prints CIDs, the root last
  get CID [-o DEST]             download a file or folder
  wasm run {CID | file.wasm | file.wat} [--entry-point NAME] [-v CID:/path]... [-e K=V]...
           [--timeout SECONDS] [--memory BYTES] [--fuel N] [--engine cranelift|pulley]
           [--wait] [-q] [ARGS...]
                                run a WASM job; shows its stdout and stderr, prints the
                                result CID last, exits with the job's exit code
  docker run IMAGE [-v CID:/path]... [-e K=V]... [--timeout S] [--memory B] -- CMD...
                                run a Docker job (no network); prints the result CID last
  describe JOB_ID               a dashboard's job as JSON (needs --api)
  commp {FILE | CID} [--piece-size BYTES]
                                the piece CID and padded size of a file, or of a CID's CAR
  aggregate --size {BYTES | 32GiB} --out AGG_FILE [--registrations DIR] RESULT.car...
                                pack CARs into an FRC-0058 aggregate; prints its piece CID
                                and size, writes a registration JSON (with proof) per CAR
  verify [--once] [--poll SECONDS]
                                as a verifier node: re-run other nodes' jobs a dashboard
                                queued for re-execution, print "JOB_ID match|mismatch|failed"
  conformance [--engines cranelift,pulley]
                                run the determinism probes on each engine; exit 1 on any
                                divergence: check a machine before it joins

With --api URL --api-key KEY (or FILPLUS_API_URL / FILPLUS_API_KEY) jobs are submitted to a
dashboard: `run` prints the job id, and with --wait then the result CID; add, get and
describe work against it too.

`python -m executor COMMAND --help` for details. Local storage: IPFS_API_URL (Kubo RPC) or
the embedded store under DATA_DIR/ipfs."""


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
            except (JobFailed, StorageError, ApiError, environment.BadSetting) as exc:
                _say(f"error: {exc}")
                return 1
            except OSError as exc:
                _say(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
                return 1
    _say(f"error: unknown command {' '.join(args[:2])!r}\n\n{_USAGE}")
    return 2
