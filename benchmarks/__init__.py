"""Benchmarks for the chain scanner: `python -m benchmarks.bench_dump_import`,
`python -m benchmarks.bench_incremental`. They print figures and assert nothing about speed."""
