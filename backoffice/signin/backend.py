"""The lockout check, first of the authentication backends."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend


class StaffLockoutBackend(AxesStandaloneBackend):
    """django-axes' check: a locked-out username and address is refused before any password is
    tried. It signs no one in itself; the backends after it do.

    An authentication without a request (the test client's `login()`, a shell) has no client
    address to count against and comes from no remote guesser, so it passes unchecked instead of
    failing as axes' own backend would. Every HTTP sign-in (the admin's login form) passes the
    request.
    """

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
