"""evalsite settings: everything comes from the environment, with defaults that need no server."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Under pytest: a throwaway key and var folder, so tests never touch a developer's demo database,
# broker folder or model cache settings.
TESTING = "pytest" in sys.modules
if TESTING:
    os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
    os.environ.setdefault("EVALSITE_VAR_DIR", tempfile.mkdtemp(prefix="evalsite-test-var-"))
    # tests hand the services made-up model paths (/models/base) and pytest's tmp folders; the tests of
    # path confinement set their own roots. Worker processes started by tests inherit this.
    os.environ.setdefault("EVALSITE_MODEL_ROOTS", os.sep)
VAR_DIR = Path(os.environ.get("EVALSITE_VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = envbool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (export DEBUG=1 for local use).")
    SECRET_KEY = "insecure-local-development-key-only-used-when-DEBUG-is-on"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if not DEBUG else ["*"])

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
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: /api/docs/ works offline
    "generation",
    "generation.worker",
    "annotations",
    "reports",
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
    "evalsite.middleware.ContentSecurityPolicyMiddleware",
    "evalsite.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "evalsite.urls"
WSGI_APPLICATION = "evalsite.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'evalsite.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Rating traffic and a worker write at once: wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update({"timeout": 30, "transaction_mode": "IMMEDIATE"})

AUTH_USER_MODEL = "annotations.User"
# Django's full set, applied wherever a password is set (admin forms, `create_user`, `changepassword`)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True  # serve app and project static files without a collectstatic step
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS: on by default in production (DEBUG off); off for `make demo` (DEBUG=1) and under pytest, which
# serve plain http on loopback. Each can be set from the environment either way.
_HTTPS_DEFAULT = not DEBUG and not TESTING
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", _HTTPS_DEFAULT)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain http
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", _HTTPS_DEFAULT)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", _HTTPS_DEFAULT)
# HSTS is hard to take back once browsers have seen it: off unless SECURE_HSTS_SECONDS is set
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
# behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO (the proxy must set it)
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"], "https")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
# failed log-ins per username (and, times four, per client address) within the window before refusal
LOGIN_RATE_LIMIT_ATTEMPTS = envint("LOGIN_RATE_LIMIT_ATTEMPTS", 5)
LOGIN_RATE_LIMIT_WINDOW_SECONDS = envint("LOGIN_RATE_LIMIT_WINDOW_SECONDS", 15 * 60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "evalsite.auth.SessionAuthentication",  # a bad or expired token: 401; no credentials: 403
        "evalsite.auth.ExpiringTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "evalsite API",
    "DESCRIPTION": "Blind pairwise evaluation of a fine-tuned model against its pre-trained base.",
    "VERSION": "0.1.0",
    # Swagger UI from the drf-spectacular-sidecar package, not a CDN (evalsite/urls.py: ApiDocsView)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},  # no call to an online validator
    # campaigns and jobs (and runs) each have a `status` with their own choices: name both enums
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "generation.models.JobStatus",  # the name it had before campaigns were listed
        "CampaignStatusEnum": "annotations.models.Campaign.Status",
    },
}
# API tokens stop working this long after they were issued (401); 0 = never. A token is also replaced
# when its user's password or role changes, and by `api_token NAME --rotate`.
API_TOKEN_LIFETIME_SECONDS = envint("API_TOKEN_LIFETIME_SECONDS", 0)

# Celery. The default broker is kombu's filesystem transport: real worker processes, no server.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in (BROKER_DIR / "queue", BROKER_DIR / "control"):
        _folder.mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Longer than the longest generation chunk, so an unacknowledged chunk is not redelivered early.
    _visibility = envint("CELERY_VISIBILITY_TIMEOUT", 4 * 3600)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility,
        # kombu sweeps for a dead worker's unacknowledged messages only every ~100 s by default; scale
        # the sweep with the timeout so a short timeout also means a quick redelivery
        "unacked_restore_interval": max(1, min(60, _visibility // 10)),
        "unacked_restore_throttle": 1,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# When the broker connection drops, a task still running was not acknowledged and will be delivered
# again, so stop it rather than let two workers compute the same chunk (the answers already saved stay;
# the redelivery makes only the missing ones). Celery 6's default; set here so 5.x agrees and stops
# warning about the change.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True

# The default cache holds the failed-login counts (evalsite/auth.py). Without CACHE_URL it is each
# process's own memory; CACHE_URL=redis://host:6379/1 shares the counts between web processes.
CACHE_URL = os.environ.get("CACHE_URL", "").strip()
if CACHE_URL:
    if not CACHE_URL.startswith(("redis://", "rediss://")):
        raise ImproperlyConfigured("CACHE_URL must be a redis:// or rediss:// URL")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "evalsite",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }

GPU_HOUR_PRICE_USD = envfloat("GPU_HOUR_PRICE_USD", 2.0)
EVALSITE_MODEL_DIR = Path(os.environ.get("EVALSITE_MODEL_DIR") or VAR_DIR / "models")
# The only folders workers read models and adapters from and write fine-tuning output to (comma-separated;
# generation/paths.py). Hub ids are not paths and are not affected.
EVALSITE_MODEL_ROOTS = envlist("EVALSITE_MODEL_ROOTS", [str(VAR_DIR), str(BASE_DIR / "demo" / "adapter")])
ASSIGNMENT_LOCK_SECONDS = envint("ASSIGNMENT_LOCK_SECONDS", 15 * 60)
# a running fine-tuning run whose worker has not written a heartbeat for this long is marked failed
FINETUNE_STALE_SECONDS = envint("FINETUNE_STALE_SECONDS", 30 * 60)
# prompts per role a job's first chunk answers one at a time, after its batches, to measure what one
# request waits for (time to first token, to the full answer); 0 turns it off
SERVING_SAMPLE_PER_ROLE = envint("SERVING_SAMPLE_PER_ROLE", 8)
# Worker liveness (generation/worker/heartbeat.py writes, generation/workers.py reads): every worker
# writes a heartbeat this often, and one not heard from for WORKER_LIVENESS_SECONDS counts as gone.
WORKER_HEARTBEAT_SECONDS = envfloat("WORKER_HEARTBEAT_SECONDS", 5.0)
WORKER_LIVENESS_SECONDS = envfloat("WORKER_LIVENESS_SECONDS", 30.0)
if not 0 < 2 * WORKER_HEARTBEAT_SECONDS <= WORKER_LIVENESS_SECONDS:
    raise ImproperlyConfigured("WORKER_LIVENESS_SECONDS must be at least twice WORKER_HEARTBEAT_SECONDS > 0")

# Logs: warnings from every library, and evalsite's own lines (one per job, chunk and run state change,
# with ids, from web and worker) at INFO; LOG_LEVEL sets both. LOG_FORMAT=json: one JSON object per line
# (evalsite/logformat.py; the Celery worker and gunicorn use it too).
LOG_FORMAT = (os.environ.get("LOG_FORMAT") or "text").strip().lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
_LOG_LEVEL = (os.environ.get("LOG_LEVEL") or "").strip().upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "evalsite": {"()": "evalsite.logformat.JsonFormatter"}
        if LOG_FORMAT == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "evalsite"}},
    "root": {"handlers": ["console"], "level": _LOG_LEVEL or "WARNING"},
    "loggers": {"generation": {"level": _LOG_LEVEL or "INFO"}},
}
