"""How a run ends, and which endings another honest machine would reproduce (docs/jobs.md).

A re-execution compares only reproducible outcomes: a run that ends in a way another honest
machine may not repeat (wall time, the engine's stack, the host) says nothing about what a
node reported, so it is `not_verifiable`, never a mismatch and never a node caught.
"""

from __future__ import annotations

__all__ = [
    "ALL",
    "COMPLETED",
    "FAILED_IN_PROGRAM",
    "FUEL_EXHAUSTED",
    "HOST_FAILURE",
    "NOT_REPRODUCIBLE",
    "STACK_EXHAUSTED",
    "TIMED_OUT",
]

COMPLETED = "completed"  # the program exited (any exit code): a result
# A trap in the guest's own code that any engine gives (unreachable, divide by zero, an
# out-of-bounds access, a failed conversion...).
FAILED_IN_PROGRAM = "failed_in_program"
FUEL_EXHAUSTED = "fuel_exhausted"  # the spec's fuel: counted the same on every run
TIMED_OUT = "timed_out"  # wall time: where a run stops depends on the machine and its load
# The engine's native stack: the depth at which a recursion traps differs between engines
# (Cranelift and the Pulley interpreter) and their versions.
STACK_EXHAUSTED = "stack_exhausted"
HOST_FAILURE = "host_failure"  # the host, not the program: out of memory, an engine error

NOT_REPRODUCIBLE = frozenset({TIMED_OUT, STACK_EXHAUSTED, HOST_FAILURE})
# Every way a run ends, in the order the docs name them.
ALL = (COMPLETED, FAILED_IN_PROGRAM, FUEL_EXHAUSTED, TIMED_OUT, STACK_EXHAUSTED, HOST_FAILURE)
