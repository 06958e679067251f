"""Settings from environment variables, with defaults that work on the project machine as it is."""

import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

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


def database_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// URL, got scheme {parsed.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "zentra",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        # Persistent connections: a fresh PostgreSQL backend per request costs more than the request.
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5},
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

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
                 if h.strip()]
if TESTING:
    ALLOWED_HOSTS.append("testserver")

DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/zentra")
_database = database_from_url(DATABASE_URL)
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
    "zentra.api",
    "audit",
    "tenants",
    "webhooks",
    "ledger",
    "payments",
    "backoffice",
]

MIDDLEWARE = [
    "zentra.api.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.OperatorActorMiddleware",
    "backoffice.middleware.AdminRefusalMiddleware",
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

# Request bodies are capped; a larger body is refused with a 413 problem before it is read.
ZENTRA_MAX_REQUEST_BYTES = env_int("ZENTRA_MAX_REQUEST_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = ZENTRA_MAX_REQUEST_BYTES

ZENTRA_IDEMPOTENCY_TTL = timedelta(seconds=env_int("ZENTRA_IDEMPOTENCY_TTL_SECONDS", 24 * 3600))
# A request that claimed a key and never finished (its process died) stops blocking the
# key after this long, so the client is not locked out for the whole retention period.
ZENTRA_IDEMPOTENCY_LEASE = timedelta(seconds=env_int("ZENTRA_IDEMPOTENCY_LEASE_SECONDS", 300))
ZENTRA_HOLD_MAX_SECONDS = env_int("ZENTRA_HOLD_MAX_SECONDS", 30 * 24 * 3600)
# How long a confirmed payment's funds stay reserved waiting for the provider's settlement.
ZENTRA_INTENT_HOLD_SECONDS = env_int("ZENTRA_INTENT_HOLD_SECONDS", 7 * 24 * 3600)
ZENTRA_WEBHOOK_ALLOW_PRIVATE = env_bool("ZENTRA_WEBHOOK_ALLOW_PRIVATE", False)
ZENTRA_WEBHOOK_TIMEOUT_SECONDS = env_int("ZENTRA_WEBHOOK_TIMEOUT_SECONDS", 15)
# A claimed delivery whose worker died is claimed again once its lease runs out.
ZENTRA_WEBHOOK_LEASE_SECONDS = env_int("ZENTRA_WEBHOOK_LEASE_SECONDS", 60)
ZENTRA_WEBHOOK_RETRY_SCHEDULE = [int(x) for x in os.environ.get(
    "ZENTRA_WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000").split(",") if x.strip()]
ZENTRA_WEBHOOK_ROTATION_OVERLAP_SECONDS = min(env_int("ZENTRA_WEBHOOK_ROTATION_OVERLAP_SECONDS", 24 * 3600),
                                              7 * 24 * 3600)
ZENTRA_WEBHOOK_DISABLE_AFTER_SECONDS = env_int("ZENTRA_WEBHOOK_DISABLE_AFTER_SECONDS", 5 * 24 * 3600)
ZENTRA_WEBHOOK_MAX_RETRY_AFTER_SECONDS = env_int("ZENTRA_WEBHOOK_MAX_RETRY_AFTER_SECONDS", 24 * 3600)
ZENTRA_DEMO_PASSWORD = os.environ.get("ZENTRA_DEMO_PASSWORD", "zentra-demo")

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
    # Enums stay inline in the schemas they belong to (the shapes name their literals).
    "POSTPROCESSING_HOOKS": [],
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
    },
}

SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
