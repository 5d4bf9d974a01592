"""Run one command and write its own wall time and rusage (os.wait4) to a JSON file.

    python -S benchmarks/_spawn.py RESULT.json COMMAND [ARG…]

Why a separate, small launcher: on Linux a child's ru_maxrss starts at the RSS of the
process it was forked from (exec keeps the old address space's high-water mark), so a
child forked straight from a benchmark holding a 100,000-deal fake chain would report that
chain's memory as its own. Forked from this process (~10 MB, standard library only, no
site-packages) the floor is negligible. Exit status: the command's.
"""

import json
import os
import signal
import sys
import time


def main() -> int:
    result_path, args = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(args[0], args)
        finally:
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    _pid, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    with open(result_path, "w") as out:  # noqa: PTH123 (no pathlib: keep this launcher tiny)
        json.dump(
            {
                "wall_s": wall,
                "max_rss_kib": usage.ru_maxrss,
                "user_s": usage.ru_utime,
                "sys_s": usage.ru_stime,
                "returncode": os.waitstatus_to_exitcode(status),
            },
            out,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
