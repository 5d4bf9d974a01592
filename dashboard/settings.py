"""Settings for the FIL+ moderation dashboard, all read from environment variables.

The defaults are the embedded mode: SQLite under DATA_DIR, no broker, no IPFS daemon.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dashboard.addresses import PROVIDER_ADDRESS
from dashboard.env import (
    env_bool,
    env_choice,
    env_choices,
    env_http_urls,
    env_int,
    env_list,
    env_match,
    env_networks,
    env_rate,
    env_str,
    env_url,
    env_url_or_off,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data"))).resolve()

_DEV_SECRET = "dev-insecure-secret-key-change-me"


def _check_security(secret_key: str, debug: bool, allowed_hosts: list[str]) -> None:
    """Refuse a key, DEBUG and hosts that are unsafe together: no key is for development
    only (DEBUG on), a key needs the hosts named, and with DEBUG off the key needs at least
    32 characters."""
    if secret_key == _DEV_SECRET:
        if not debug:
            raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
        warnings.warn(
            "SECRET_KEY is not set: using an insecure development key (never use this in "
            "production)",
            stacklevel=2,
        )
    elif not allowed_hosts:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS is required when SECRET_KEY is set (comma-separated)"
        )
    if not debug and len(secret_key) < 32:
        raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters when DEBUG is off")


SECRET_KEY: str = env_str("SECRET_KEY", _DEV_SECRET)
DEBUG = env_bool("DEBUG", SECRET_KEY == _DEV_SECRET)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if SECRET_KEY == _DEV_SECRET:
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]
_check_security(SECRET_KEY, DEBUG, ALLOWED_HOSTS)

# Behind a TLS proxy (HTTPS=1): cookies only over HTTPS, the proxy's X-Forwarded-Proto
# trusted to say the request came over HTTPS, and HSTS for HSTS_SECONDS.
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31_536_000, minimum=0) if HTTPS else 0
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The pages load scripts and styles from our own static files only, and have no inline ones.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "dashboard",
    "chain_scanner",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dashboard.middleware.content_security_policy",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
_default_db_url = f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
DATABASE_URL = env_url(
    "DATABASE_URL", _default_db_url, schemes=("sqlite", "postgres", "postgresql")
)
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, scanner, worker) share one file: wait on locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("TEST", {})["NAME"] = ""  # in-memory test database
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg prepares a statement after it ran this many times on a connection, but only
    # for cursors that bind parameters on the server: the API's hot-path queries
    # (dashboard/sql.py). Django's own cursors bind on the client and never prepare.
    # A transaction-pooling pgbouncer in between needs max_prepared_statements (1.21+).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- chain scanning -------------------------------------------------------------------------
LOTUS_RPC_URL = env_url(
    "LOTUS_RPC_URL", "https://api.node.glif.io/rpc/v1", schemes=("http", "https")
)
LOTUS_RPC_TOKEN = env_str("LOTUS_RPC_TOKEN")
LOTUS_RPC_TIMEOUT_S = env_int("LOTUS_RPC_TIMEOUT_S", 60, minimum=1)
LOTUS_RPC_RETRIES = env_int("LOTUS_RPC_RETRIES", 5, minimum=0)
SCANNER_START_EPOCH = env_int("SCANNER_START_EPOCH", 3855360, minimum=0)
SCANNER_INTERVAL_S = env_int("SCANNER_INTERVAL_S", 30, minimum=1)
# Beyond this lag behind the head, answers say the scanner's view is not complete. The
# processing tipset is the finalized one: head − 900 where F3 has not finalized.
SCANNER_STALE_EPOCHS = env_int("SCANNER_STALE_EPOCHS", 960, minimum=1)
# How many deal ids one pass fetches at most, and how many ride in one JSON-RPC batch.
SCANNER_MAX_DEALS_PER_PASS = env_int("SCANNER_MAX_DEALS_PER_PASS", 200_000, minimum=1)
SCANNER_DEAL_BATCH = env_int("SCANNER_DEAL_BATCH", 500, minimum=1)
# How many deals waiting for their one re-read from state (rows from a dump, or undone by a
# reorg) one pass reads; every other change comes as a market event.
SCANNER_RECHECK_PER_PASS = env_int("SCANNER_RECHECK_PER_PASS", 20_000, minimum=0)
# Epochs per GetActorEventsRaw call: Lotus refuses ranges wider than 2880 by default.
SCANNER_EVENT_RANGE = env_int("SCANNER_EVENT_RANGE", 2880, minimum=1, maximum=2880)
# Storage providers' addresses (StateMinerInfo) for locations answers: kept this long, and
# read with this timeout (the whole request, one try) while a locations request waits.
PROVIDER_ADDRESS_TTL_S = env_int("PROVIDER_ADDRESS_TTL_S", 3600, minimum=1)
PROVIDER_ADDRESS_TIMEOUT_S = env_int("PROVIDER_ADDRESS_TIMEOUT_S", 2, minimum=1, maximum=60)

# How long the overview's job and DataCap figures are kept before they are computed again
# (grouping every job by day is slow with many jobs; benchmarks/README.md, bench_pages).
OVERVIEW_CACHE_S = env_int("OVERVIEW_CACHE_S", 30, minimum=0)

# --- executor and IPFS (used by later components) ---------------------------------------------
IPFS_API_URL = env_url("IPFS_API_URL", None, schemes=("http", "https"))
IPFS_GATEWAY_URL = env_url("IPFS_GATEWAY_URL", None, schemes=("http", "https"))
EXECUTOR_PROVIDER = env_match(
    "EXECUTOR_PROVIDER",
    pattern=PROVIDER_ADDRESS,
    expected="a storage provider id address like f01234",
)
# A running job's lease: a worker renews it every third of this; a job whose lease lapsed
# goes back to the queue, at most EXECUTOR_MAX_ATTEMPTS runs in all, then fails.
EXECUTOR_LEASE_S = env_int("EXECUTOR_LEASE_S", 60, minimum=1)
EXECUTOR_MAX_ATTEMPTS = env_int("EXECUTOR_MAX_ATTEMPTS", 3, minimum=1)
# Executor threads `manage.py serve` runs (embedded mode; production uses celery workers).
EXECUTOR_WORKERS = env_int("EXECUTOR_WORKERS", 1, minimum=0)
# What one job's inputs may write to the worker's disk: file bytes plus 4096 a file or folder.
EXECUTOR_MAX_INPUT_BYTES = env_int("EXECUTOR_MAX_INPUT_BYTES", 4 << 30, minimum=1)
# Where the bundled executor fetches an input its store lacks, after the storage providers
# the chain names (docs/jobs.md): delegated routing (set but empty: none) and trustless
# gateways; each request to one of them has EXECUTOR_RETRIEVAL_TIMEOUT_S, start to last byte.
IPNI_URL = env_url_or_off("IPNI_URL", "https://cid.contact", schemes=("http", "https"))
IPFS_GATEWAYS = env_http_urls("IPFS_GATEWAYS")
EXECUTOR_RETRIEVAL_TIMEOUT_S = env_int("EXECUTOR_RETRIEVAL_TIMEOUT_S", 600, minimum=1)
# Largest upload `POST /content` takes: its body, and for a CAR what its blocks take on disk
# (each its bytes plus 4096).
CONTENT_MAX_BYTES = env_int("CONTENT_MAX_BYTES", 256 * 1024 * 1024, minimum=1)
# What GET /ipfs/… sends: at most this in one answer, and to one caller (a key, or a
# moderator's session) at most GATEWAY_BYTES_PER_HOUR in an hour (0: no limit). A small
# upload can be a large file (UnixFS links may repeat a block), so uploads bound neither.
GATEWAY_MAX_RESPONSE_BYTES = env_int("GATEWAY_MAX_RESPONSE_BYTES", 1 << 30, minimum=1)
GATEWAY_BYTES_PER_HOUR = env_int("GATEWAY_BYTES_PER_HOUR", 16 << 30, minimum=0)

# --- re-execution (docs/reexecution.md) --------------------------------------------------------
# Which finished external WASM jobs the bundled executor runs again to check the reported
# result: all of them, a sample of REEXECUTE_SAMPLE_PERCENT, or only those a moderator asks
# for (on_request). A node that was once caught reporting a result its job does not give has
# every later WASM job re-executed whatever the policy.
REEXECUTE_POLICY = env_choice("REEXECUTE_POLICY", "all", ("all", "sample", "on_request"))
REEXECUTE_SAMPLE_PERCENT = env_int("REEXECUTE_SAMPLE_PERCENT", 10, minimum=0, maximum=100)
# Refuse to verify (moderate) an external WASM job until a re-execution of it matched: on by
# default, since a result no one reproduced is only its node's word.
REEXECUTE_BEFORE_VERIFY = env_bool("REEXECUTE_BEFORE_VERIFY", True)
# The limits a re-execution may ask for: a job whose spec asks for more time or memory (or,
# with REEXECUTE_MAX_FUEL set, more fuel or none) is not re-executed, only marked
# `not_verifiable` ("over re-execution limits"). The defaults are a job's default time (600 s)
# and 1 GiB of memory; 0 fuel means no fuel limit is asked for (time bounds the run).
# The engines a WASM re-execution runs on, in turn (executor.wasm.TARGETS): with
# "cranelift,pulley" both must give the same result and fuel; when they do not, the run
# fails as a defect of ours (engine_divergence), never as the node's mismatch. Pulley, an
# interpreter, takes 10-30 times as long (benchmarks/bench_wasm.py).
REEXECUTE_ENGINES = env_choices("REEXECUTE_ENGINES", "cranelift", ("cranelift", "pulley"))
REEXECUTE_MAX_TIMEOUT_S = env_int("REEXECUTE_MAX_TIMEOUT_S", 600, minimum=1, maximum=86_400)
REEXECUTE_MAX_MEMORY_BYTES = env_int(
    "REEXECUTE_MAX_MEMORY_BYTES", 1 << 30, minimum=65_536, maximum=1 << 40
)
REEXECUTE_MAX_FUEL = env_int("REEXECUTE_MAX_FUEL", 0, minimum=0, maximum=(1 << 63) - 1)
# A running re-execution's whole time: its time limit plus this, after which its lease is
# taken back however often its runner renewed it (a verifier node's record shows it).
REEXECUTE_GRACE_S = env_int("REEXECUTE_GRACE_S", 60, minimum=1)
# Re-executions queued per hour for the jobs of one node key, one Bacalhau legacy client, one
# Bacalhau orchestrator; beyond that a job's re-execution is `not_verifiable` ("quota").
# 0: no quota.
REEXECUTE_QUOTA_PER_NODE = env_int("REEXECUTE_QUOTA_PER_NODE", 60, minimum=0)
REEXECUTE_QUOTA_PER_CLIENT = env_int("REEXECUTE_QUOTA_PER_CLIENT", 60, minimum=0)
REEXECUTE_QUOTA_PER_ORCHESTRATOR = env_int("REEXECUTE_QUOTA_PER_ORCHESTRATOR", 600, minimum=0)
# The embedded worker stops a running re-execution (it goes back to the queue, no attempt
# counted) when a submitted job is waiting, at most this many times; after that the
# re-execution runs to its end on a thread of its own beside the jobs.
REEXECUTE_MAX_PREEMPTIONS = env_int("REEXECUTE_MAX_PREEMPTIONS", 3, minimum=0)

# --- Bacalhau (docs/bacalhau.md) ------------------------------------------------------------
# What the job-selection probe answers: bid only when all of a job's IPFS CIDs are blessed
# (all_blessed), or bid on every job and say in `reason` what is blessed (always).
BACALHAU_PROBE_POLICY = env_choice(
    "BACALHAU_PROBE_POLICY", "all_blessed", ("all_blessed", "always")
)
# Orchestrators whose jobs are scanned and imported: comma-separated base URLs.
BACALHAU_ORCHESTRATORS = env_http_urls("BACALHAU_ORCHESTRATORS")
# A label selector the orchestrator filters jobs by (its `labels` parameter), e.g. filplus.
BACALHAU_LABELS = env_str("BACALHAU_LABELS", "")
BACALHAU_SCAN_INTERVAL_S = env_int("BACALHAU_SCAN_INTERVAL_S", 60, minimum=1)
# An orchestrator is a peer that may be hostile: what one request to it, and one pass over
# it, may take. A request has BACALHAU_TIMEOUT_S from its start to its answer's last byte (a
# read that stalls is given as long); a pass stops at BACALHAU_PASS_DEADLINE_S or after
# BACALHAU_PAGES_PER_PASS answers, and the next pass resumes where it stopped.
BACALHAU_TIMEOUT_S = env_int("BACALHAU_TIMEOUT_S", 30, minimum=1)
BACALHAU_PASS_DEADLINE_S = env_int("BACALHAU_PASS_DEADLINE_S", 300, minimum=1)
BACALHAU_PAGES_PER_PASS = env_int("BACALHAU_PAGES_PER_PASS", 2000, minimum=1)
# The largest answer read (its bytes as sent); a larger one fails like an error answer.
BACALHAU_MAX_ANSWER_BYTES = env_int("BACALHAU_MAX_ANSWER_BYTES", 16 << 20, minimum=1024)
# Executions one orchestrator's passes import in any hour, at most; what is over waits for a
# later pass (0: none are imported).
BACALHAU_IMPORTS_PER_HOUR = env_int("BACALHAU_IMPORTS_PER_HOUR", 100, minimum=0)

# --- moderator pages ------------------------------------------------------------------------
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
# Failed sign-ins allowed per username and per client address before a pause of LOGIN_LOCKOUT_S.
LOGIN_FAILURES_ALLOWED = env_int("LOGIN_FAILURES_ALLOWED", 5, minimum=1)
LOGIN_LOCKOUT_S = env_int("LOGIN_LOCKOUT_S", 900, minimum=1)
# The suggested DataCap is the result's padded piece size times this.
DATACAP_REPLICAS = env_int("DATACAP_REPLICAS", 1, minimum=1)
# A verification may grant at most this many times the suggested DataCap (the replica count
# is already in the suggestion), and one above DATACAP_SECOND_APPROVAL_BYTES waits for a
# second moderator's approval before the notary may award it (dashboard/moderation/).
DATACAP_MAX_OVER_SUGGESTION = env_int("DATACAP_MAX_OVER_SUGGESTION", 1, minimum=1)
DATACAP_SECOND_APPROVAL_BYTES = env_int("DATACAP_SECOND_APPROVAL_BYTES", 1 << 40, minimum=1)
# A result less than this percent of which is new data (not found in its inputs, blessed
# content or earlier results: dashboard/novelty/) is a risk a verification must accept.
NOVELTY_MIN_PERCENT = env_int("NOVELTY_MIN_PERCENT", 50, minimum=0, maximum=100)
# The most bytes one measurement or one indexed item reads, decompressed views included.
NOVELTY_MAX_BYTES = env_int("NOVELTY_MAX_BYTES", 16 << 30, minimum=1)
# An award whose piece no claim (or verified deal) stores this many epochs after it was
# taken is not_landed: the allocation's longest expiration, 60 days of 30-second epochs
# (dashboard/notary/awards.py).
AWARD_LANDING_EPOCHS = env_int("AWARD_LANDING_EPOCHS", 60 * 2880, minimum=1)
# Refuse awards to a provider that has an award claimed by another provider
# (mismatched_provider) until an admin looks: off by default, since the notary decides.
NOTARY_REFUSE_MISMATCHED_PROVIDERS = env_bool("NOTARY_REFUSE_MISMATCHED_PROVIDERS", False)

# --- background work ------------------------------------------------------------------------
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", None, schemes=("redis", "rediss", "amqp", "amqps", "memory")
)
# Embedded mode has no broker: tasks run inline in the calling process.
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
if CELERY_BROKER_URL is None:
    CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = env_url("CELERY_RESULT_BACKEND", None, schemes=("redis", "rediss", "rpc"))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {
    "chain_scanner.*": {"queue": "scanner"},
    "dashboard.run_job": {"queue": "executor"},
    "dashboard.recover_jobs": {"queue": "executor"},
    # Re-executions have a queue of their own, so that submitted jobs never wait behind them.
    "dashboard.reexecute": {"queue": "reexecute"},
    # Novelty is measured after a job, by the workers that run jobs.
    "dashboard.measure_novelty": {"queue": "executor"},
    "dashboard.follow_chain": {"queue": "scanner"},
    "dashboard.scan_bacalhau": {"queue": "scanner"},
}
CELERY_BEAT_SCHEDULE = {
    "scan-chain": {
        "task": "chain_scanner.scan_pass",
        "schedule": float(SCANNER_INTERVAL_S),
        # A pass that is still queued when the next one is due is pointless.
        "options": {"expires": float(SCANNER_INTERVAL_S)},
    },
    "follow-chain": {
        "task": "dashboard.follow_chain",
        "schedule": float(SCANNER_INTERVAL_S),
        "options": {"expires": float(SCANNER_INTERVAL_S)},
    },
    "scan-bacalhau": {
        "task": "dashboard.scan_bacalhau",
        "schedule": float(BACALHAU_SCAN_INTERVAL_S),
        "options": {"expires": float(BACALHAU_SCAN_INTERVAL_S)},
    },
    "recover-jobs": {
        "task": "dashboard.recover_jobs",
        "schedule": max(1.0, EXECUTOR_LEASE_S / 2),
        "options": {"expires": max(1.0, EXECUTOR_LEASE_S / 2)},
    },
}


# --- API ----------------------------------------------------------------------------------
# Requests per API key (or session, or Bacalhau legacy client), as DRF reads a rate; 0 for
# no limit (None). Every request also counts on its client's address (an IPv6 client's /64),
# at API_ADDRESS_RATE_LIMIT (by default the same rate).
API_RATE_LIMIT = env_rate("API_RATE_LIMIT", "1200/min")
API_ADDRESS_RATE_LIMIT = env_rate("API_ADDRESS_RATE_LIMIT", API_RATE_LIMIT or "0")
# Our own reverse proxies (addresses or CIDR networks): only a request from one of them has
# its X-Forwarded-For read, for the address it came from (rate limits, sign-in limits).
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dashboard.keys.auth.ApiKeyAuthentication",
        "dashboard.keys.auth.ModeratorSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["dashboard.api.permissions.AnyKeyOrSession"],
    "DEFAULT_RENDERER_CLASSES": ["dashboard.api.renderers.JsonRenderer"],
    "DEFAULT_PARSER_CLASSES": ["dashboard.api.parsers.JsonParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "dashboard.api.throttling.AddressRateThrottle",
        "dashboard.api.throttling.KeyRateThrottle",
    ],
    "EXCEPTION_HANDLER": "dashboard.api.exceptions.handle",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FIL+ moderation dashboard API",
    "DESCRIPTION": "Eligibility of input CIDs, jobs, moderation and the notary API (docs/api.md).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Operations are tagged by the path segment after this (v1), whatever else is routed.
    "SCHEMA_PATH_PREFIX": r"/api",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CidStatusEnum": ["active", "expired", "pending", "unknown"],
        "SourceStatusEnum": ["active", "expired", "pending"],
        "KindEnum": ["claim", "deal"],
        "LocationKindEnum": ["piece", "payload"],
        "HealthStatusEnum": ["ok", "stale", "error"],
        "JobStateEnum": ["queued", "running", "completed", "failed", "cancelled"],
        "AwardChainStateEnum": [
            "awaiting",
            "landed",
            "mismatched_provider",
            "not_landed",
            "removed",
        ],
        "ModerationStateEnum": [
            "pending",
            "verified",
            "rejected",
            "revoked",
            "awaiting_second_approval",
        ],
        # dashboard.moderation.risks.RISK_LABELS
        "RiskEnum": [
            "inputs_not_blessed",
            "nonzero_exit",
            "rerun_not_match",
            "node_caught",
            "result_not_measured",
            "novelty_not_measured",
            "novelty_low",
        ],
        "ReexecutionStateEnum": [
            "not_verified_by_rerun",
            "queued",
            "running",
            "match",
            "mismatch",
            "failed",
            "not_verifiable",
        ],
    },
}
# Shared by every web worker when CACHE_URL names Redis: rate limits then hold across them.
CACHE_URL = env_url("CACHE_URL", None, schemes=("redis", "rediss"))
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- web ------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
# `manage.py serve`'s port when --port is not given (gunicorn binds GUNICORN_BIND instead).
PORT = env_int("PORT", 8000, minimum=1, maximum=65535)
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The lines that show a request's path never show a key from it (the probe URL's).
    "filters": {"mask_keys": {"()": "dashboard.keys.logs.MaskKeys"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "loggers": {
        # A 500's traceback, to stderr in production too (Django's default mails it).
        "django.request": {
            "handlers": ["stderr"],
            "level": "ERROR",
            "propagate": False,
            "filters": ["mask_keys"],
        },
        # `manage.py serve`'s access lines (gunicorn's: dashboard/gunicorn_worker.py).
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["mask_keys"],
        },
        "chain_scanner": {
            "handlers": ["stderr"],
            "level": env_str("SCANNER_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
# Serve app static files (admin, API docs) straight from their apps, no collectstatic step.
WHITENOISE_USE_FINDERS = True
