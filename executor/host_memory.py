"""Can this machine give a WASM job every byte of memory its limit allows?

The engine reserves each linear memory's whole address range when the module is instantiated
(executor.wasm._config), so a `memory.grow` within the job's limit only changes page
protection inside that reservation. Linux can still refuse that step: under its default
heuristic overcommit (vm.overcommit_memory=0) one request larger than RAM + swap fails, and
under strict accounting (=2) any request may fail when the machine is busy. The guest would see
-1 from `memory.grow`, a result another machine does not reproduce. So a job whose limit this
machine may refuse does not run here: it fails as a host failure, before the guest starts.

Pressure the kernel does not refuse up front (a cgroup's limit, memory touched later) ends in
the OOM killer, which stops the process: an infrastructure error too, never a guest's -1.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WASM32_MEMORY_BYTES", "refusal"]

WASM32_MEMORY_BYTES = 1 << 32  # the most one grow can ask for, and the engine's reservation

_OVERCOMMIT = Path("/proc/sys/vm/overcommit_memory")
_MEMINFO = Path("/proc/meminfo")


def _meminfo_bytes(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0]) * 1024
    return 0


def refusal(
    memory_bytes: int, *, overcommit: str | None = None, meminfo: str | None = None
) -> str | None:
    """Why this machine may refuse memory a job's limit allows, or None when it will not.
    `overcommit` and `meminfo` are the /proc files' texts (read from /proc when None)."""
    try:
        overcommit = _OVERCOMMIT.read_text() if overcommit is None else overcommit
        meminfo = _MEMINFO.read_text() if meminfo is None else meminfo
    except OSError:
        return None  # not Linux: the kernel gives no rule to check
    mode = overcommit.strip()
    if mode == "2":
        return (
            "this machine accounts memory strictly (vm.overcommit_memory=2), so a memory.grow"
            " the job's limit allows can fail under load; set vm.overcommit_memory to 0 or 1"
        )
    if mode == "1":
        return None  # always overcommit: the kernel never refuses a grow
    most = min(memory_bytes, WASM32_MEMORY_BYTES)
    capacity = _meminfo_bytes(meminfo, "MemTotal") + _meminfo_bytes(meminfo, "SwapTotal")
    if most > capacity:
        return (
            f"the job's memory limit ({most} bytes) is more than this machine's RAM and swap"
            f" ({capacity} bytes): Linux would refuse a memory.grow the limit allows"
        )
    return None
