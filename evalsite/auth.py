"""Log-in with a cap on failed attempts (no extra package: Django's cache), and API tokens that expire.

After `LOGIN_RATE_LIMIT_ATTEMPTS` failed log-ins for one username, or four times that from one client
address, within `LOGIN_RATE_LIMIT_WINDOW_SECONDS`, further attempts are refused with 429 and a form
error until the window has passed; the password is not even checked then. A successful log-in clears
the username's count. The window starts at the first failure (fixed window).

The username is counted as Django authenticates it: NFKC-normalised (as the log-in form does, so the
full-width `ａｎｎ` is `ann`) and case-folded, so no other spelling of a name gets a fresh count.

Why not django-axes (8.3): it has one failure limit for every lockout parameter (no separate, larger
limit per address), no way to refuse log-ins (503) when its counter store cannot be reached, and its
cache handler has had a race on expiring counts (jazzband/django-axes#1144); the admin log-in already
goes through this view. This module keeps those properties in ~100 lines, with tests.

The counts live in the default cache: Django's per-process LocMemCache unless CACHE_URL names a Redis
server, so without it several web processes each enforce their own limit (and a restarted process
forgets its counts). With a shared cache that cannot be reached, log-in fails closed: 503 with
Retry-After, the password not checked, rather than log-ins without a limit.
The client address is REMOTE_ADDR: behind a proxy that is the proxy's own address.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from datetime import timedelta
from typing import Any

import drf_spectacular.authentication
from django.conf import settings
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework import authentication as drf_authentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

PER_ADDRESS_FACTOR = 4
COUNTER_DOWN_RETRY_SECONDS = 30
logger = logging.getLogger(__name__)


def _limit() -> int:
    return int(getattr(settings, "LOGIN_RATE_LIMIT_ATTEMPTS", 5))


def _window() -> int:
    return int(getattr(settings, "LOGIN_RATE_LIMIT_WINDOW_SECONDS", 900))


def _key(kind: str, value: str) -> str:
    return "login-fail:" + kind + ":" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def counted_username(raw: object) -> str:
    """The name a failed log-in is counted against: what Django's log-in form authenticates (stripped,
    NFKC), case-folded so that `Ann` and `ann` share one count."""
    name = unicodedata.normalize("NFKC", str(raw or "").strip())
    return unicodedata.normalize("NFKC", name.casefold())


def _keys(request: HttpRequest) -> dict[str, tuple[str, int]]:
    username = counted_username(request.POST.get("username", ""))
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    return {
        "username": (_key("user", username), _limit()),
        "address": (_key("addr", address), _limit() * PER_ADDRESS_FACTOR),
    }


def login_blocked(request: HttpRequest) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _keys(request).values())


def login_failed(request: HttpRequest) -> None:
    for key, _limit_value in _keys(request).values():
        if not cache.add(key, 1, timeout=_window()):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=_window())


class RateLimitedLoginView(LoginView):
    def _refuse(self, message: str, status: int) -> HttpResponse:
        # an unbound form: binding it would check the password
        form = self.get_form_class()(request=self.request)
        context = self.get_context_data(form=form, locked_out=message)
        response = self.render_to_response(context, status=status)
        if status == 503:
            response["Retry-After"] = str(COUNTER_DOWN_RETRY_SECONDS)
        return response

    def _counter_down(self, exc: Exception) -> HttpResponse:
        logger.error("login attempt counter unreachable (%s: %s); log-in refused", type(exc).__name__, exc)
        return self._refuse("Log-in is unavailable for a moment. Please try again shortly.", 503)

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            blocked = login_blocked(request)
        except Exception as exc:  # the cache backend's own errors (e.g. redis ConnectionError)
            return self._counter_down(exc)
        if blocked:
            minutes = max(1, _window() // 60)
            return self._refuse(
                f"Too many failed log-in attempts. Please try again in {minutes} minutes.", 429
            )
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form) -> HttpResponse:
        try:
            login_failed(self.request)
        except Exception as exc:  # a failure that cannot be counted must not become a free attempt
            return self._counter_down(exc)
        return super().form_invalid(form)

    def form_valid(self, form) -> HttpResponse:
        try:
            cache.delete(_keys(self.request)["username"][0])
        except Exception as exc:  # the password was right; the old count just expires with its window
            logger.warning("could not clear the failed-login count: %s: %s", type(exc).__name__, exc)
        return super().form_valid(form)


def token_expired(token: Token) -> bool:
    """Whether an API token is older than API_TOKEN_LIFETIME_SECONDS (0: tokens never expire)."""
    lifetime = int(getattr(settings, "API_TOKEN_LIFETIME_SECONDS", 0) or 0)
    return lifetime > 0 and token.created <= timezone.now() - timedelta(seconds=lifetime)


class SessionAuthentication(drf_authentication.SessionAuthentication):
    """DRF's session authentication. DRF takes the challenge for a failed authentication from the first
    class: this one gives the token's (401, `WWW-Authenticate: Token`) when the request presented an
    `Authorization` header, so a revoked or expired token is told apart from a missing log-in (403)."""

    def authenticate_header(self, request: Request) -> str | None:
        return "Token" if request.META.get("HTTP_AUTHORIZATION") else None


class SessionScheme(drf_spectacular.authentication.SessionScheme):
    """The API schema describes the subclass above as DRF's session cookie (registered by subclassing)."""

    target_class = SessionAuthentication


class ExpiringTokenAuthentication(drf_authentication.TokenAuthentication):
    """DRF's token authentication, with tokens that stop working (401) `API_TOKEN_LIFETIME_SECONDS`
    after they were issued. `api_token NAME` then issues a new one."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise AuthenticationFailed("Token has expired; ask an admin for a new one.")
        return user, token
