"""Settings from environment variables, with defaults that work on the project machine as it is."""

import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

from csp.constants import NONCE as CSP_NONCE
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured

from zentra.env import load_local_env

BASE_DIR = Path(__file__).resolve().parent.parent
load_local_env()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


# Behind PgBouncer in transaction pooling (docs/security.md, "PgBouncer"): consecutive
# transactions of one client may reach different server connections, so nothing may live in a
# session: no prepared statements (PgBouncer 1.18, Debian's, does not track them) and no
# cursors held across transactions. The tenant context is per transaction already.
_TRANSACTION_POOLING = env_bool("DATABASE_TRANSACTION_POOLING", False)
_POOLED_OPTIONS = {"prepare_threshold": None} if _TRANSACTION_POOLING else {}


def database_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// URL, got scheme {parsed.scheme!r}")
    return {
        # PostgreSQL, setting the tenant context of row-level security in every transaction.
        "ENGINE": "zentra.db.backend",
        "NAME": unquote(parsed.path.lstrip("/")) or "zentra",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        # Persistent connections: a fresh PostgreSQL backend per request costs more than the request.
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5, **_POOLED_OPTIONS},
        # Behind a transaction pooler a cursor cannot outlive its transaction.
        "DISABLE_SERVER_SIDE_CURSORS": _TRANSACTION_POOLING,
    }


DEBUG = env_bool("DJANGO_DEBUG", False)
TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")

# Schema commands sign nothing, so they may run without the production secret.
_COMMANDS_WITHOUT_SECRETS = {"makemigrations", "migrate", "check", "showmigrations", "sqlmigrate", "help",
                             "collectstatic", "ensure_database"}
_command = sys.argv[1] if len(sys.argv) > 1 and sys.argv[0].endswith("manage.py") else ""

# What a production process must be given, each with what it is for. A missing one stops
# start-up with every missing name listed at once.
REQUIRED_IN_PRODUCTION = {
    "DJANGO_SECRET_KEY": "signs sessions and CSRF tokens; a long random string, e.g. "
                         "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'",
    "ZENTRA_LEDGER_KEY": "keys the HMAC chain of ledger entries; a long random string, generated like "
                         "DJANGO_SECRET_KEY (docs/security.md, Keys)",
    "ZENTRA_SIGNING_KEY": "signs checkpoints and evidence (Ed25519, base64 of 32 bytes): "
                          "python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'",
}
_DEVELOPMENT_KEY = "django-insecure-zentra-local-development-key-not-for-production"


def missing_required_settings() -> list[str]:
    missing = [name for name in REQUIRED_IN_PRODUCTION if not os.environ.get(name, "").strip()]
    if os.environ.get("DJANGO_SECRET_KEY") == _DEVELOPMENT_KEY:
        missing.append("DJANGO_SECRET_KEY")  # the development key is no key at all
    return missing


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if DEBUG or TESTING or _command in _COMMANDS_WITHOUT_SECRETS:
    SECRET_KEY = SECRET_KEY or _DEVELOPMENT_KEY
elif missing := missing_required_settings():
    raise ImproperlyConfigured(
        "Zentra cannot start: " + "; ".join(f"{name} is not set ({REQUIRED_IN_PRODUCTION[name]})" for name in missing)
        + ". For local development, `make run` writes them (with DJANGO_DEBUG=1) to .env."
    )

# The ledger's HMAC key and the service's Ed25519 signing key, and the retired ones that still
# verify what they chained or signed (zentra/keys.py). Without them a local process derives
# stand-ins from SECRET_KEY.
ZENTRA_LEDGER_KEY = os.environ.get("ZENTRA_LEDGER_KEY", "")
ZENTRA_LEDGER_KEYS_RETIRED = os.environ.get("ZENTRA_LEDGER_KEYS_RETIRED", "")
ZENTRA_SIGNING_KEY = os.environ.get("ZENTRA_SIGNING_KEY", "")
ZENTRA_SIGNING_KEYS_RETIRED = os.environ.get("ZENTRA_SIGNING_KEYS_RETIRED", "")

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
                 if h.strip()]
if TESTING:
    ALLOWED_HOSTS.append("testserver")

# Two roles (docs/security.md, "Database roles"): the schema owner (DATABASE_URL) runs migrations
# and management commands; web, worker and beat connect as the application role
# (DATABASE_APP_URL; by default DATABASE_URL's database as `zentra_app`), which owns nothing and
# sees tenant rows only through row-level security. `migrate` creates that role when the owner
# may and grants it what it needs. ZENTRA_DB_ROLE=owner|app overrides the choice for a process.
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/zentra")
_owner_url = urlparse(DATABASE_URL)
DATABASE_APP_URL = os.environ.get("DATABASE_APP_URL") or _owner_url._replace(
    netloc=f"zentra_app@{_owner_url.hostname or ''}" + (f":{_owner_url.port}" if _owner_url.port else "")).geturl()
_app_database = database_from_url(DATABASE_APP_URL)
DATABASE_OWNER_ROLE = unquote(_owner_url.username or "") or "root"
DATABASE_OWNER_PASSWORD = unquote(_owner_url.password or "")
# A login that may create roles and databases, for `ensure_database` (make run's .env names the
# machine's superuser); unset, ensure_database creates only the database, as DATABASE_URL's login.
DATABASE_ADMIN_URL = os.environ.get("DATABASE_ADMIN_URL", "")
DATABASE_APP_ROLE = _app_database["USER"]
DATABASE_APP_PASSWORD = _app_database["PASSWORD"]
_program = os.path.basename(sys.argv[0]) if sys.argv else ""
_serves = _command == "runserver" or _program in {"gunicorn", "celery"}
ZENTRA_DB_ROLE = os.environ.get("ZENTRA_DB_ROLE") or ("app" if _serves and not TESTING else "owner")
if ZENTRA_DB_ROLE not in {"owner", "app"}:
    raise ImproperlyConfigured(f"ZENTRA_DB_ROLE must be owner or app, got {ZENTRA_DB_ROLE!r}")
_database = _app_database if ZENTRA_DB_ROLE == "app" else database_from_url(DATABASE_URL)
DATABASES = {
    "default": _database,
    # Evidence (access denials, request records) is written on its own connection so that
    # the rollback of the request that was refused cannot erase the record of the refusal.
    "evidence": {**_database},
}
DATABASE_ROUTERS = ["audit.routers.EvidenceRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)

INSTALLED_APPS = [
    "backoffice.admin_site_app.ZentraAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "simple_history",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "zentra.api",
    "audit",
    "tenants",
    "webhooks",
    "ledger",
    "payments",
    "backoffice",
]

MIDDLEWARE = [
    # Outermost: the row-level security context of the request (zentra/db/scope.py).
    "zentra.db.middleware.TenantScopeMiddleware",
    "zentra.api.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "tenants.middleware.OperatorScopeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.OperatorActorMiddleware",
    "backoffice.middleware.AdminRefusalMiddleware",
    # Last, as django-axes asks: it turns a sign-in refused for a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

if not TESTING:
    # Static files from the process itself, compressed and cache-busted: no other server needed.
    # (Each test client builds its own middleware, and WhiteNoise reads the collected files when
    # it starts; tests/readme/test_serve.py proves it in a real `make serve`.)
    MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                      "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "zentra.urls"
WSGI_APPLICATION = "zentra.wsgi.application"

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

AUTHENTICATION_BACKENDS = [
    # First: a locked-out username and address is refused before any password is checked.
    "backoffice.signin.backend.StaffLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian anonymous user: every permission is an object permission of a real member.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Staff sign-in (backoffice/signin/). At most AXES_FAILURE_LIMIT failed sign-ins per username and
# client address within the cool-off, a wrong second-factor code counting as one; another try
# while locked out restarts the cool-off (axes' default), so a guesser who keeps going never gets
# a fresh batch. A superuser lifts a lockout in the admin, which leaves evidence.
AXES_FAILURE_LIMIT = env_int("ZENTRA_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ZENTRA_LOGIN_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "backoffice.signin.lockout.lockout_response"
# The client address the API's budgets use (ZENTRA_TRUSTED_PROXIES below), never what a client
# wrote into X-Forwarded-For: that would hand a guesser a fresh batch of tries per request.
AXES_CLIENT_IP_CALLABLE = "zentra.api.middleware.client_address_of"
# Only a complete sign-in (password and, when enrolled, the code) clears the failures.
AXES_RESET_ON_SUCCESS = True
# The lockout counters go when a lockout is lifted; this log of every failure stays.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code"]
# backoffice/admin.py registers axes' models read-only, with an unlock that leaves evidence.
AXES_ENABLE_ADMIN = False
# No "AXES: BEGIN" line from every process that starts; lockouts are still logged.
AXES_VERBOSE = False

# Second factor (django-otp): an authenticator app (TOTP) and one-time recovery codes. Off by
# default (local runs, tests, the demo logins); ZENTRA_REQUIRE_OTP=1 makes it mandatory for
# staff, who then reach only the enrolment page (and logout) until they have one.
ZENTRA_REQUIRE_OTP = env_bool("ZENTRA_REQUIRE_OTP", False)
OTP_TOTP_ISSUER = os.environ.get("ZENTRA_OTP_ISSUER", "Zentra")
# Device pages in the admin never show a secret: no one copies a colleague's authenticator.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["zentra.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("ZENTRA_STATIC_ROOT") or BASE_DIR / "var" / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (cache forever) and pre-compressed copies, written by collectstatic; the test
    # runner serves the sources as they are.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage" if TESTING
                    else "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Secrets (a freshly created API key) pass through messages: keep them server-side.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Served over HTTPS only (ZENTRA_REQUIRE_TLS=1): plain HTTP is redirected, browsers are told to
# use nothing but HTTPS for a year (subdomains too, preload-ready), and cookies never travel in
# clear. Off by default so that `make run`, `make serve` and the tests work over plain HTTP.
ZENTRA_REQUIRE_TLS = env_bool("ZENTRA_REQUIRE_TLS", False)
SECURE_SSL_REDIRECT = ZENTRA_REQUIRE_TLS
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if ZENTRA_REQUIRE_TLS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = ZENTRA_REQUIRE_TLS
SECURE_HSTS_PRELOAD = ZENTRA_REQUIRE_TLS
SESSION_COOKIE_SECURE = ZENTRA_REQUIRE_TLS
CSRF_COOKIE_SECURE = ZENTRA_REQUIRE_TLS
# Load balancers probe the health check over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Behind a proxy that terminates TLS every request reaches Django as HTTP (and would be
# redirected forever) unless the proxy's header is believed. Set it only behind a proxy that
# sets that header and drops it from clients, or a client could claim HTTPS.
_proxy_ssl_header = os.environ.get("ZENTRA_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    if not _proxy_ssl_header.replace("-", "").isalnum():
        raise ImproperlyConfigured(f"ZENTRA_PROXY_SSL_HEADER must be a header name such as X-Forwarded-Proto, "
                                   f"got {_proxy_ssl_header!r}")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

# Content-Security-Policy (django-csp): scripts, styles, images, fonts and fetches from this site
# only. Templates carry no inline style or script; the one inline start-up block (Swagger UI's,
# templates/drf_spectacular/swagger_ui.html) carries the response's nonce. Swagger UI's
# stylesheet draws its icons from data: URIs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF, CSP_NONCE],
        "style-src": [CSP_SELF, CSP_NONCE],
        "img-src": [CSP_SELF, "data:"],
        "font-src": [CSP_SELF],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
        "upgrade-insecure-requests": ZENTRA_REQUIRE_TLS,
    },
}

# Request bodies are capped; a larger body is refused with a 413 problem before it is read.
ZENTRA_MAX_REQUEST_BYTES = env_int("ZENTRA_MAX_REQUEST_BYTES", 1024 * 1024)
# Django's own ceiling is the largest body any path takes (a settlement report); the API edge
# holds every other path to ZENTRA_MAX_REQUEST_BYTES (zentra/api/middleware.py).
# A provider's settlement report may be far larger than any JSON request.
ZENTRA_SETTLEMENT_REPORT_MAX_BYTES = env_int("ZENTRA_SETTLEMENT_REPORT_MAX_BYTES", 64 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(ZENTRA_MAX_REQUEST_BYTES, ZENTRA_SETTLEMENT_REPORT_MAX_BYTES)

ZENTRA_IDEMPOTENCY_TTL = timedelta(seconds=env_int("ZENTRA_IDEMPOTENCY_TTL_SECONDS", 24 * 3600))
# A request that claimed a key and never finished (its process died) stops blocking the
# key after this long, so the client is not locked out for the whole retention period.
ZENTRA_IDEMPOTENCY_LEASE = timedelta(seconds=env_int("ZENTRA_IDEMPOTENCY_LEASE_SECONDS", 300))
# Maker-checker (docs/reconciliation.md): how long a proposal waits for its second person, and
# the amounts above which an operator's reversal or review approval needs one (per tenant too).
ZENTRA_APPROVAL_TTL_HOURS = env_int("ZENTRA_APPROVAL_TTL_HOURS", 72)
ZENTRA_APPROVAL_REVERSAL_ABOVE = env_int("ZENTRA_APPROVAL_REVERSAL_ABOVE", 100_000)
ZENTRA_APPROVAL_REVIEW_ABOVE = env_int("ZENTRA_APPROVAL_REVIEW_ABOVE", 100_000)
# Hot accounts (docs/ledger.md, Hot accounts): the rows a system account (reserve, settlement,
# payout, fees) is spread over, each with its own lock; an account opened later gets this many,
# an existing one keeps its own until `manage.py shard_account` changes it.
ZENTRA_SYSTEM_ACCOUNT_SHARDS = min(max(1, env_int("ZENTRA_SYSTEM_ACCOUNT_SHARDS", 8)), 256)
ZENTRA_HOLD_MAX_SECONDS = env_int("ZENTRA_HOLD_MAX_SECONDS", 30 * 24 * 3600)
# How long a confirmed payment's funds stay reserved waiting for the provider's settlement.
ZENTRA_INTENT_HOLD_SECONDS = env_int("ZENTRA_INTENT_HOLD_SECONDS", 7 * 24 * 3600)
ZENTRA_WEBHOOK_ALLOW_PRIVATE = env_bool("ZENTRA_WEBHOOK_ALLOW_PRIVATE", False)
ZENTRA_WEBHOOK_TIMEOUT_SECONDS = env_int("ZENTRA_WEBHOOK_TIMEOUT_SECONDS", 15)
# A claimed delivery whose worker died is claimed again once its lease runs out.
ZENTRA_WEBHOOK_LEASE_SECONDS = env_int("ZENTRA_WEBHOOK_LEASE_SECONDS", 60)
# Requests a worker process has in flight at once, and deliveries the relay hands to one task.
ZENTRA_WEBHOOK_CONCURRENCY = max(1, env_int("ZENTRA_WEBHOOK_CONCURRENCY", 16))
ZENTRA_WEBHOOK_BATCH = max(1, env_int("ZENTRA_WEBHOOK_BATCH", 64))
# Deliveries one relay run claims (per tenant).
ZENTRA_WEBHOOK_CLAIM_LIMIT = max(1, env_int("ZENTRA_WEBHOOK_CLAIM_LIMIT", 500))
ZENTRA_WEBHOOK_RETRY_SCHEDULE = [int(x) for x in os.environ.get(
    "ZENTRA_WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000").split(",") if x.strip()]
ZENTRA_WEBHOOK_ROTATION_OVERLAP_SECONDS = min(env_int("ZENTRA_WEBHOOK_ROTATION_OVERLAP_SECONDS", 24 * 3600),
                                              7 * 24 * 3600)
ZENTRA_WEBHOOK_DISABLE_AFTER_SECONDS = env_int("ZENTRA_WEBHOOK_DISABLE_AFTER_SECONDS", 5 * 24 * 3600)
ZENTRA_WEBHOOK_MAX_RETRY_AFTER_SECONDS = env_int("ZENTRA_WEBHOOK_MAX_RETRY_AFTER_SECONDS", 24 * 3600)
ZENTRA_DEMO_PASSWORD = os.environ.get("ZENTRA_DEMO_PASSWORD", "zentra-demo")

# API request budgets (zentra/api/ratelimit.py), fixed windows of one second and one minute, per
# API key (a tenant may be given its own numbers in the admin) and, for what needs no key (the
# index, provider events), per client address. Generous: they stop runaway clients, they do not
# shape normal traffic.
ZENTRA_RATE_LIMIT_PER_SECOND = env_int("ZENTRA_RATE_LIMIT_PER_SECOND", 100)
ZENTRA_RATE_LIMIT_PER_MINUTE = env_int("ZENTRA_RATE_LIMIT_PER_MINUTE", 6000)
# Failed authentications (a missing, malformed, unknown or revoked key) per client address and
# minute; past it they are answered 429: guessing keys gets slow and its evidence stays small.
ZENTRA_AUTH_FAILURES_PER_MINUTE = env_int("ZENTRA_AUTH_FAILURES_PER_MINUTE", 30)
for _budget in ("ZENTRA_RATE_LIMIT_PER_SECOND", "ZENTRA_RATE_LIMIT_PER_MINUTE", "ZENTRA_AUTH_FAILURES_PER_MINUTE"):
    if globals()[_budget] < 1:  # a budget of 0 would refuse every request: a typo, not a wish
        raise ImproperlyConfigured(f"{_budget} must be at least 1, got {globals()[_budget]}")
# A web process keeps the API keys it has verified this long (seconds) instead of reading them
# for every request: a key revoked or a tenant changed elsewhere takes effect within it (at once
# in the process that made the change). 0 reads the key every time.
ZENTRA_API_KEY_CACHE_SECONDS = env_int("ZENTRA_API_KEY_CACHE_SECONDS", 5)
if ZENTRA_API_KEY_CACHE_SECONDS < 0:
    raise ImproperlyConfigured(f"ZENTRA_API_KEY_CACHE_SECONDS must be 0 or more, got {ZENTRA_API_KEY_CACHE_SECONDS}")
# The counters' store. When it does not answer, the API serves without limits (and logs a
# warning): payments must not stop because the limiter's store is away.
ZENTRA_RATE_LIMIT_REDIS_URL = os.environ.get("ZENTRA_RATE_LIMIT_REDIS_URL") or REDIS_URL
# The client address is REMOTE_ADDR unless N reverse proxies of ours stand in front: then it is
# the N-th address from the right of X-Forwarded-For (the one our outermost proxy saw; what is
# left of it the client wrote itself). Set it to the number of proxies, only behind proxies that
# append to (or set) that header.
ZENTRA_TRUSTED_PROXIES = env_int("ZENTRA_TRUSTED_PROXIES", 0)
# Refusals of callers who proved no identity are counted on one evidence row per client address,
# action and reason within a window this long (audit/services/evidence.py).
ZENTRA_EVIDENCE_REPEAT_WINDOW_SECONDS = env_int("ZENTRA_EVIDENCE_REPEAT_WINDOW_SECONDS", 600)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["zentra.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["zentra.api.permissions.TenantApiKeyPermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["zentra.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "zentra.api.problems.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "zentra.api.schema.ZentraAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PAGINATION_CLASS": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Zentra API",
    "DESCRIPTION": "Tenant-scoped money movement: accounts, ledger, holds, events.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/v1",
    # Enums stay inline in the schemas they belong to (the shapes name their literals); links
    # say which operation's answer names the object of which other (zentra/api/schema_links.py).
    "POSTPROCESSING_HOOKS": ["zentra.api.schema_links.declare_links"],
}

CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# JSON lines naming their request (audit/logs.py) unless debugging; ZENTRA_LOG_FORMAT=text|json.
LOG_FORMAT = os.environ.get("ZENTRA_LOG_FORMAT") or ("text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "audit.logs.JsonFormatter"},
                   "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # One line per request (zentra/api/middleware.py); runserver prints its own while debugging.
        "zentra.request": {"level": "WARNING" if DEBUG else "INFO"},
        # Celery's line per task and per beat tick says nothing the task's own log would not:
        # periodic jobs log when they did something.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
        # A line per webhook attempt at INFO: the attempt's row already says it all.
        "httpx": {"level": "WARNING"},
        # A line per failed sign-in at INFO besides its WARNING: the failure log keeps each one.
        "axes": {"level": "WARNING"},
    },
}

SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
