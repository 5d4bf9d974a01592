"""The production settings plus the bare baseline views, for bench_api only."""

from dashboard.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.api.urls"
