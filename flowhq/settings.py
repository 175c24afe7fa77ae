"""FlowHQ settings: every knob is read from the environment here, and only here.

The table in README.md lists each variable with its default. A malformed value
raises `flowhq.env.EnvError` naming the variable.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext

from flowhq.env import Env, EnvError, load_dotenv

# Django's admin and form classes take a type argument for mypy (`ModelAdmin[Tenant]`); this lets
# them take it at run time too. It adds `__class_getitem__` and changes nothing else.
django_stubs_ext.monkeypatch(include_builtins=False)

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()
if env.bool("FLOWHQ_DOTENV", True):
    load_dotenv(BASE_DIR / ".env")

# --- Core -------------------------------------------------------------------

DEBUG = env.bool("DEBUG", False)
# Empty in production means "not configured": the flowhq.E001 check refuses it.
SECRET_KEY = env.str("SECRET_KEY", "insecure-dev-only-secret-key" if DEBUG else "")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])
VAR_DIR = env.path("FLOWHQ_VAR_DIR", Path("var"), base=BASE_DIR)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "flowhq.apps.FlowHQConfig",
    "tenants",
    "workers",
    "webhooks",
    "metrics",
    "portal",
    "console",
]

MIDDLEWARE = [
    # First, so it times and counts every request, whatever answers it (metrics/middleware.py).
    "metrics.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "flowhq.edge.EdgeInputMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its response (flowhq.lockout).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "flowhq.urls"
WSGI_APPLICATION = "flowhq.wsgi.application"
ASGI_APPLICATION = "flowhq.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "flowhq" / "templates"],
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

# --- Database ---------------------------------------------------------------

DATABASE_URL = env.url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'flowhq.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql", "pgsql"),
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The first-run default: WAL lets the web, beat, fleet and tenant workers
    # read while one of them writes; IMMEDIATE takes the write lock up front
    # so concurrent transactions queue instead of failing with "locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
# Behind PgBouncer in transaction mode one client connection is not one server session from
# one transaction to the next: no server-side cursors (Django's advice for transaction pooling).
DATABASE_TRANSACTION_POOLING = env.bool("DATABASE_TRANSACTION_POOLING", False)
if DATABASE_TRANSACTION_POOLING:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security (production unless DEBUG) ---------------------------------------

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BODY_BYTES", 256 * 1024, minimum=1024)
# Django's debug pages hide secret-looking settings; this also masks passwords in URLs (REDIS_URL).
DEFAULT_EXCEPTION_REPORTER_FILTER = "flowhq.censor.SafeSettingsFilter"

# --- Sign-in lockout (django-axes, flowhq/lockout.py) ---------------------------

# The admin login, the API's Basic auth and the portal key: after this many failures within
# AUTH_LOCKOUT_MINUTES, the user name, or the address, is refused until they are that old.
AUTHENTICATION_BACKENDS = ["flowhq.lockout.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("AUTH_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AUTH_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = "flowhq.lockout.lockout_parameters"
AXES_LOCKOUT_CALLABLE = "flowhq.lockout.lockout_response"
# A refused attempt neither counts nor hashes: the lockout ends AUTH_LOCKOUT_MINUTES after the last
# counted failure, and a client hammering a locked account costs no password hashing.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
# The address is the TCP peer (REMOTE_ADDR); behind a proxy that is the proxy's (see README).
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)

# --- API --------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Basic first: an anonymous call gets 401 with a WWW-Authenticate challenge.
        "flowhq.api.authentication.BasicAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PAGINATION_CLASS": "flowhq.api.pagination.Pagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["flowhq.api.parsers.BoundedJSONParser"],
    # Counted in the default cache (Redis), so every gunicorn worker shares one count.
    "DEFAULT_THROTTLE_CLASSES": [
        "flowhq.api.throttling.AnonRateThrottle",
        "flowhq.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.rate("API_THROTTLE_ANON", "60/minute"),
        "user": env.rate("API_THROTTLE_USER", "1200/minute"),
    },
    "EXCEPTION_HANDLER": "flowhq.api.exceptions.handle",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# OpenAPI (drf-spectacular); Swagger UI is served from drf-spectacular-sidecar, so /api/docs/ works offline.
SPECTACULAR_SETTINGS = {
    "TITLE": "FlowHQ API",
    "DESCRIPTION": "Control-plane (staff) and portal APIs of FlowHQ. Every error is "
    '`{"error": {"code", "message", "details"}}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status"/"state": one named enum per choice set.
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.states.TenantStatus",
        "SessionStateEnum": "tenants.states.SessionState",
        "SetupRequestStateEnum": "tenants.states.SetupRequestState",
        "MessageStatusEnum": "tenants.models.MessageStatus",
        "DirectionEnum": "tenants.models.Direction",
        "MatchKindEnum": "tenants.models.MatchKind",
        "WorkerStatusEnum": "workers.states.WorkerStatus",
        "DesiredStateEnum": "workers.states.DesiredState",
    },
    "PREPROCESSING_HOOKS": ["flowhq.api.schema.strip_optional_trailing_slash"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "flowhq.api.schema.postprocess_error_responses",
    ],
}

PORTAL_INTERNAL_KEY = env.str("PORTAL_INTERNAL_KEY", "")
# Server-Sent Events of the portal: how often a stream looks at the database, how
# often it sends a keep-alive comment, and how long one stream lives before the
# client reconnects (so a gunicorn thread is never held for ever).
PORTAL_SSE_POLL_MS = env.int("PORTAL_SSE_POLL_MS", 750, minimum=50)
PORTAL_SSE_KEEPALIVE_SECONDS = env.int("PORTAL_SSE_KEEPALIVE_SECONDS", 15, minimum=1)
PORTAL_SSE_LIFETIME_SECONDS = env.int("PORTAL_SSE_LIFETIME_SECONDS", 300, minimum=1)
PORTAL_SSE_RETRY_MS = env.int("PORTAL_SSE_RETRY_MS", 2000, minimum=100)
# Threads of one `web` process (gunicorn --threads); event streams may hold at most half.
WEB_THREADS = env.int("WEB_THREADS", 8, minimum=2)
PORTAL_SSE_MAX_STREAMS = env.int("PORTAL_SSE_MAX_STREAMS", WEB_THREADS // 2, minimum=1)
if PORTAL_SSE_MAX_STREAMS >= WEB_THREADS:
    raise EnvError("PORTAL_SSE_MAX_STREAMS", str(PORTAL_SSE_MAX_STREAMS),
                   f"less than WEB_THREADS ({WEB_THREADS}): event streams must leave the API a thread")

# The portal web app (/portal/, portal/web/): how long an invitation link stays valid, and
# the address links in emails start with when no request gives one (a command, behind a proxy).
PORTAL_INVITATION_DAYS = env.int("PORTAL_INVITATION_DAYS", 7, minimum=1)
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", "").rstrip("/")
# How many of the newest messages the portal's live log (the `activity` event) carries.
PORTAL_LIVE_MESSAGES = env.int("PORTAL_LIVE_MESSAGES", 20, minimum=1, maximum=200)
LOGIN_URL = "portal:sign-in"
LOGIN_REDIRECT_URL = "portal:home"
# Password-reset emails the portal sends per address asked for, and per client address.
PORTAL_RESET_RATE = env.rate("PORTAL_RESET_RATE", "5/hour")
# Password reset links (Django's): valid this long.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT_SECONDS", 3 * 24 * 3600, minimum=60)

# The operators' fleet console (/console/, console/): a worker with this many crashes in a row is
# "crash-looping"; the message rate reads at most this many of the newest log rows; the page reloads
# itself this often (0: never).
CONSOLE_CRASH_LOOP_FAILURES = env.int("CONSOLE_CRASH_LOOP_FAILURES", 2, minimum=1)
CONSOLE_RATE_MAX_ROWS = env.int("CONSOLE_RATE_MAX_ROWS", 20000, minimum=100)
CONSOLE_REFRESH_SECONDS = env.int("CONSOLE_REFRESH_SECONDS", 15, minimum=0)

# --- Email (invitations, password resets) ---------------------------------------

# Unset EMAIL_HOST: emails are printed on the web process's console (the demo). Set it (and the
# rest) to send by SMTP in production; EMAIL_BACKEND overrides either choice.
EMAIL_HOST = env.str("EMAIL_HOST", "")
EMAIL_PORT = env.int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", "")
# STARTTLS on EMAIL_PORT by default; EMAIL_USE_SSL=1 for TLS from the first byte (port 465) instead.
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", False)
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise EnvError("EMAIL_USE_TLS", "1", "not together with EMAIL_USE_SSL: choose one")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", 10, minimum=1)
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "FlowHQ <noreply@localhost>")

# --- Metrics (metrics/, docs/architecture.md "Metrics") ------------------------

# GET /metrics also answers `Authorization: Bearer <METRICS_TOKEN>` (Prometheus); unset: staff only.
METRICS_TOKEN = env.str("METRICS_TOKEN", "")
# How often a process sends its counts (per-tenant counters, request metrics) to Redis.
METRICS_FLUSH_INTERVAL_MS = env.int("METRICS_FLUSH_INTERVAL_MS", 1000, minimum=50)

# --- Celery and Redis ---------------------------------------------------------

REDIS_URL = env.url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix"))
# The API's throttle counts (flowhq/api/throttling.py): one Redis for every web process. Short
# timeouts, and the throttles let calls through while Redis is down.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "flowhq-cache",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}
CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport with every short command on the process's shared connection pool
# (flowhq/redis_pool.py): a tenant worker holds 3 connections to Redis instead of 6.
CELERY_BROKER_TRANSPORT = "flowhq.redis_transport:Transport"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    # Publishing (nudges, bot commands) gives up within a second when Redis is
    # down: the database holds the work, so a web request must not hang on it.
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "control"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("CELERY_TASK_EVENTS", False)
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
FLOWER_PORT = env.int("FLOWER_PORT", 5555, minimum=1, maximum=65535)

# --- Fleet ------------------------------------------------------------------

FLOWHQ_HOST = env.str("FLOWHQ_HOST", socket.gethostname())
FLEET_CAPACITY = env.int("FLEET_CAPACITY", 50, minimum=1)
# Tenant workers forked from a warm parent per host (workers/fleet/zygote.py), not exec'ed.
FLEET_FORK_WORKERS = env.bool("FLEET_FORK_WORKERS", True)
# Where an agent writes down the workers it forked, to find them again after a restart.
FLEET_RUN_DIR = env.path("FLEET_RUN_DIR", VAR_DIR / "run", base=BASE_DIR)
# Each agent serves its host's figures for Prometheus here (workers/fleet/exporter.py); 0: off.
FLEET_METRICS_PORT = env.int("FLEET_METRICS_PORT", 9808, minimum=0, maximum=65535)
FLEET_METRICS_BIND = env.str("FLEET_METRICS_BIND", "127.0.0.1")
HEARTBEAT_INTERVAL_MS = env.int("HEARTBEAT_INTERVAL_MS", 15000, minimum=100)
STALE_THRESHOLD_MS = env.int("STALE_THRESHOLD_MS", 3 * HEARTBEAT_INTERVAL_MS, minimum=1)
if STALE_THRESHOLD_MS <= HEARTBEAT_INTERVAL_MS:
    raise EnvError(
        "STALE_THRESHOLD_MS", str(STALE_THRESHOLD_MS), f"more than HEARTBEAT_INTERVAL_MS ({HEARTBEAT_INTERVAL_MS})"
    )
WORKER_MAX_MEMORY_MB = env.int("WORKER_MAX_MEMORY_MB", 1024, minimum=1)
WORKER_MEMORY_CHECK_MS = env.int("WORKER_MEMORY_CHECK_MS", 10000, minimum=100)
WORKER_STOP_GRACE_MS = env.int("WORKER_STOP_GRACE_MS", 20000, minimum=0)
WORKER_STARTUP_GRACE_MS = env.int("WORKER_STARTUP_GRACE_MS", 60000, minimum=1000)
WORKER_RESTART_BASE_DELAY_MS = env.int("WORKER_RESTART_BASE_DELAY_MS", 1000, minimum=0)
WORKER_RESTART_MAX_DELAY_MS = env.int("WORKER_RESTART_MAX_DELAY_MS", 60000, minimum=0)
WORKER_MAX_CONSECUTIVE_CRASHES = env.int("WORKER_MAX_CONSECUTIVE_CRASHES", 5, minimum=1)
WORKER_STABLE_AFTER_MS = env.int("WORKER_STABLE_AFTER_MS", 60000, minimum=0)

# --- Bot --------------------------------------------------------------------

SESSIONS_PATH = env.path("SESSIONS_PATH", VAR_DIR / "sessions", base=BASE_DIR)
# Browser profiles backed up to the database, so a tenant moved to another host stays linked.
SESSION_BACKUP = env.bool("SESSION_BACKUP", True)
SESSION_BACKUP_INTERVAL_MS = env.int("SESSION_BACKUP_INTERVAL_MS", 600000, minimum=1000)
SESSION_BACKUP_MAX_MB = env.int("SESSION_BACKUP_MAX_MB", 64, minimum=1)
PUPPETEER_EXECUTABLE_PATH = env.str("PUPPETEER_EXECUTABLE_PATH", "")
# Chromium's own sandbox; it cannot run as root, so it is off only there by default.
CHROMIUM_SANDBOX = env.bool("CHROMIUM_SANDBOX", os.geteuid() != 0)
# The memory guard (workers/bot/memory_guard.py): a Chromium tree (private memory, summed USS) over this many MB gets its
# page reloaded at a quiet moment, or the browser restarted on the same profile if a reload does
# not bring it back under; 0 turns it off. Keep it below WORKER_MAX_MEMORY_MB minus the worker.
BOT_BROWSER_RELOAD_MB = env.int("BOT_BROWSER_RELOAD_MB", 768, minimum=0)
BOT_BROWSER_MEMORY_CHECK_MS = env.int("BOT_BROWSER_MEMORY_CHECK_MS", 30000, minimum=100)
WHATSAPP_WEB_URL = env.url("WHATSAPP_WEB_URL", "https://web.whatsapp.com", schemes=("http", "https"))
BOT_RUNTIME = env.str("BOT_RUNTIME", "whatsapp")
# QR codes shown without a scan before the bot stops asking (QR_TIMEOUT); 0: never stop (the demo).
QR_MAX_UNSCANNED = env.int("QR_MAX_UNSCANNED", 10, minimum=0)
RATE_LIMIT_MAX_PER_MINUTE = env.int("RATE_LIMIT_MAX_PER_MINUTE", 20, minimum=1)
# The limit's window; a minute unless a test wants a faster clock.
RATE_LIMIT_WINDOW_MS = env.int("RATE_LIMIT_WINDOW_MS", 60000, minimum=100)
CHAT_QUEUE_SIZE = env.int("CHAT_QUEUE_SIZE", 50, minimum=1)
RECONNECT_MAX_ATTEMPTS = env.int("RECONNECT_MAX_ATTEMPTS", 10, minimum=1)
RECONNECT_BASE_DELAY_MS = env.int("RECONNECT_BASE_DELAY_MS", 1000, minimum=0)
RECONNECT_MAX_DELAY_MS = env.int("RECONNECT_MAX_DELAY_MS", 60000, minimum=0)
# How often a bot re-queues pending messages and checks its templates against the
# database, in case a nudge was lost with the broker.
BOT_RECONCILE_INTERVAL_MS = env.int("BOT_RECONCILE_INTERVAL_MS", 30000, minimum=100)
# How far back the bot looks in WhatsApp's history for messages it never logged.
CATCH_UP_WINDOW_SECONDS = env.int("CATCH_UP_WINDOW_SECONDS", 24 * 3600, minimum=0)
# How long WhatsApp Web may take to load (window.Debug.VERSION), and, once connected, to sync
# (Socket.hasSynced) before the bot listens to messages without waiting for it.
WHATSAPP_WEB_LOAD_TIMEOUT_MS = env.int("WHATSAPP_WEB_LOAD_TIMEOUT_MS", 60000, minimum=1000)
WHATSAPP_WEB_SYNC_TIMEOUT_MS = env.int("WHATSAPP_WEB_SYNC_TIMEOUT_MS", 60000, minimum=100)
# Human takeover: after the owner answers a chat from the phone, the bot keeps quiet in it this
# long (renewed by each further message of the owner); 0 turns takeover off. Minutes, decimals allowed.
HUMAN_TAKEOVER_MINUTES = env.float("HUMAN_TAKEOVER_MINUTES", 30.0, minimum=0)

# --- Webhooks (webhooks/) -----------------------------------------------------

# Receivers on private, loopback, link-local or reserved addresses are refused unless this is on.
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", False)
WEBHOOK_TIMEOUT_MS = env.int("WEBHOOK_TIMEOUT_MS", 10000, minimum=100)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", 15, minimum=1)
WEBHOOK_RETRY_BASE_MS = env.int("WEBHOOK_RETRY_BASE_MS", 5000, minimum=10)
WEBHOOK_RETRY_MAX_MS = env.int("WEBHOOK_RETRY_MAX_MS", 4 * 3600 * 1000, minimum=10)
WEBHOOK_DISABLE_AFTER_HOURS = env.float("WEBHOOK_DISABLE_AFTER_HOURS", 24.0, minimum=0.0001)
WEBHOOK_KEEP_DAYS = env.int("WEBHOOK_KEEP_DAYS", 14, minimum=1)
# How often each `webhooks` worker queues the deliveries that are due (first tries included).
WEBHOOK_RELAY_INTERVAL_MS = env.int("WEBHOOK_RELAY_INTERVAL_MS", 250, minimum=10)
# At most this many deliveries wait on the `webhooks` queue; the rest wait, due, in the database.
WEBHOOK_QUEUE_DEPTH = env.int("WEBHOOK_QUEUE_DEPTH", 200, minimum=1)
WEBHOOK_SECRET_OVERLAP_HOURS = env.float("WEBHOOK_SECRET_OVERLAP_HOURS", 24.0, minimum=0)
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", 256 * 1024, minimum=1024)

# /readyz: how long the database and Redis each have to answer (flowhq/health.py).
READYZ_TIMEOUT_MS = env.int("READYZ_TIMEOUT_MS", 2000, minimum=50)

SIMULATOR_PORT = env.int("SIMULATOR_PORT", 8100, minimum=1, maximum=65535)
# `make run` creates a staff user "admin" with this password (generated into .env).
DEMO_ADMIN_PASSWORD = env.str("DEMO_ADMIN_PASSWORD", "")

# --- Logging ----------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "flowhq.logging.ContextFilter"},
        "redact": {"()": "flowhq.redact.RedactQueryStrings"},
    },
    "formatters": {"structured": {"()": "flowhq.logging.StructuredFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "filters": ["context", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pyppeteer": {"level": "WARNING"},
        "websockets": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},  # its start-up banner, in every process
    },
}
