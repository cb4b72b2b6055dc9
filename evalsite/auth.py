"""Log-in with a cap on failed attempts (no extra package: Django's cache).

After `LOGIN_RATE_LIMIT_ATTEMPTS` failed log-ins for one username, or four times that from one client
address, within `LOGIN_RATE_LIMIT_WINDOW_SECONDS`, further attempts are refused with 429 and a form
error until the window has passed; the password is not even checked then. A successful log-in clears
the username's count. The window starts at the first failure (fixed window).

The counts live in the default cache: Django's per-process LocMemCache unless CACHES says otherwise, so
with several web processes each enforces its own limit (a shared cache such as Redis makes it global).
The client address is REMOTE_ADDR: behind a proxy that is the proxy's own address.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

PER_ADDRESS_FACTOR = 4


def _limit() -> int:
    return int(getattr(settings, "LOGIN_RATE_LIMIT_ATTEMPTS", 5))


def _window() -> int:
    return int(getattr(settings, "LOGIN_RATE_LIMIT_WINDOW_SECONDS", 900))


def _key(kind: str, value: str) -> str:
    return "login-fail:" + kind + ":" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def _keys(request: HttpRequest) -> dict[str, tuple[str, int]]:
    username = str(request.POST.get("username", "")).strip().lower()
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
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if login_blocked(request):
            minutes = max(1, _window() // 60)
            # an unbound form: binding it would check the password
            form = self.get_form_class()(request=request)
            context = self.get_context_data(
                form=form,
                locked_out=f"Too many failed log-in attempts. Please try again in {minutes} minutes.",
            )
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form) -> HttpResponse:
        login_failed(self.request)
        return super().form_invalid(form)

    def form_valid(self, form) -> HttpResponse:
        cache.delete(_keys(self.request)["username"][0])
        return super().form_valid(form)
