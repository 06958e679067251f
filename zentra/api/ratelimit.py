"""Request budgets, counted in Redis so that every process serving the API shares them.

Three budgets, each a set of fixed windows:
- an API key's: ZENTRA_RATE_LIMIT_PER_SECOND and _PER_MINUTE, or its tenant's own numbers;
- a client address's failed authentications: ZENTRA_AUTH_FAILURES_PER_MINUTE (charged only
  when authentication fails, so a good key behind the same address is not locked out by a bad one);
- a client address's requests to what needs no key (the index, the OpenAPI document, provider
  events): the same numbers as a key's.

One Lua script increments every window of a budget and reads their time to live, atomically:
concurrent requests in any number of processes neither lose a count nor both take the last
unit. A window starts with the first request that meets it and lasts its length (the counter
expires), which is all a fixed window needs.

If Redis does not answer, the request is served as if the budget were full and a warning is
logged: money must not stop because the limiter's store is away. After a failure the store is
left alone for a few seconds, so that every request does not wait for its timeout.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError

logger = logging.getLogger("zentra.ratelimit")

KEY_PREFIX = "zentra:rl:"
# A store that does not answer this fast is treated as away: the request is not held up for it.
STORE_TIMEOUT_SECONDS = 0.25
# How long the store is left alone after it failed to answer.
STORE_RETRY_SECONDS = 5.0

# KEYS: one counter per window; ARGV: each window's length in milliseconds.
# Returns count, remaining milliseconds, for each window in order.
_CHARGE = """
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[i])
    ttl = tonumber(ARGV[i])
  end
  out[#out + 1] = count
  out[#out + 1] = ttl
end
return out
"""


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: int


@dataclass(frozen=True)
class Decision:
    """How a request stands against its budget; `limit`, `remaining` and `reset` describe the
    window closest to running out (the one a client must watch)."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int
    policy: str
    exceeded: tuple[Window, ...] = ()

    def headers(self) -> dict[str, str]:
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset), "RateLimit-Policy": self.policy}

    def explain(self, whose: str) -> str:
        """The detail of a 429: `whose` budget ran out, which window, and when to retry."""
        spent = " and ".join(f"{window.limit} per {_per(window.seconds)}" for window in self.exceeded)
        return f"Over {whose} budget of {spent}; retry in {self.retry_after} s"


def _policy(windows: Sequence[Window]) -> str:
    return ", ".join(f"{window.limit};w={window.seconds}" for window in windows)


def _per(seconds: int) -> str:
    return {1: "second", 60: "minute"}.get(seconds, f"{seconds} seconds")


def _seconds(milliseconds: int) -> int:
    return max(1, math.ceil(milliseconds / 1000))


def decide(windows: Sequence[Window], counts: Sequence[tuple[int, int]]) -> Decision:
    """`counts`: (requests counted, milliseconds left) per window, this request included."""
    pairs = list(zip(windows, counts, strict=True))
    remaining = [(max(0, window.limit - count), ttl, window) for window, (count, ttl) in pairs]
    over = [(ttl, window) for window, (count, ttl) in pairs if count > window.limit]
    # The window closest to running out; of two equally close, the one that lasts longer.
    left, ttl, window = min(remaining, key=lambda item: (item[0], -item[1]))
    return Decision(allowed=not over, limit=window.limit, remaining=left, reset=_seconds(ttl),
                    retry_after=max((_seconds(ttl) for ttl, _ in over), default=0), policy=_policy(windows),
                    exceeded=tuple(window for _, window in over))


def unmetered(windows: Sequence[Window]) -> Decision:
    """The answer when the store is away: served, and the budget shown as it stands at the
    start of a window (nothing is being counted)."""
    window = min(windows, key=lambda w: w.limit / w.seconds)
    return Decision(allowed=True, limit=window.limit, remaining=window.limit, reset=window.seconds,
                    retry_after=0, policy=_policy(windows))


class RateLimiter:
    def __init__(self, url: str) -> None:
        self.url = url
        self._client = Redis.from_url(url, socket_connect_timeout=STORE_TIMEOUT_SECONDS,
                                      socket_timeout=STORE_TIMEOUT_SECONDS)
        self._charge = self._client.register_script(_CHARGE)
        self._away_until = 0.0

    def charge(self, name: str, windows: Sequence[Window]) -> Decision:
        """Count one request against the budget `name` (e.g. `key:key_...`)."""
        if time.monotonic() < self._away_until:
            return unmetered(windows)
        keys = [f"{KEY_PREFIX}{name}:{window.seconds}" for window in windows]
        try:
            raw = self._charge(keys=keys, args=[window.seconds * 1000 for window in windows])
        except (RedisError, OSError) as exc:
            self._away_until = time.monotonic() + STORE_RETRY_SECONDS
            logger.warning("rate limiter store %s did not answer (%s); serving without limits for %.0f s",
                           _safe(self.url), exc.__class__.__name__, STORE_RETRY_SECONDS)
            return unmetered(windows)
        counts = [(int(raw[i]), int(raw[i + 1])) for i in range(0, len(raw), 2)]
        return decide(windows, counts)

    def reset(self) -> None:
        """Forget every count (tests start each from a full budget)."""
        names = list(self._client.scan_iter(match=f"{KEY_PREFIX}*", count=1000))
        if names:
            self._client.delete(*names)


def _safe(url: str) -> str:
    """The store's URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter() -> RateLimiter:
    """The limiter of the configured store: one client (and connection pool) per process."""
    url = settings.ZENTRA_RATE_LIMIT_REDIS_URL
    with _limiters_lock:
        if url not in _limiters:
            _limiters[url] = RateLimiter(url)
        return _limiters[url]


# --- the budgets ------------------------------------------------------------------------------

def key_windows(tenant) -> list[Window]:
    """An API key's budget: its tenant's numbers, where the platform superuser set them."""
    return [Window(tenant.rate_limit_per_second or settings.ZENTRA_RATE_LIMIT_PER_SECOND, 1),
            Window(tenant.rate_limit_per_minute or settings.ZENTRA_RATE_LIMIT_PER_MINUTE, 60)]


def address_windows() -> list[Window]:
    return [Window(settings.ZENTRA_RATE_LIMIT_PER_SECOND, 1), Window(settings.ZENTRA_RATE_LIMIT_PER_MINUTE, 60)]


def failure_windows() -> list[Window]:
    return [Window(settings.ZENTRA_AUTH_FAILURES_PER_MINUTE, 60)]


def _charge(request, name: str, windows: Sequence[Window]) -> Decision:
    """Count the request against `name`'s budget; the decision rides on the request, for the
    RateLimit headers of its answer."""
    decision = limiter().charge(name, windows)
    request.rate_limit = decision
    return decision


def charge_key(request, api_key) -> Decision:
    return _charge(request, f"key:{api_key.id}", key_windows(api_key.tenant))


def charge_address(request) -> Decision:
    return _charge(request, f"addr:{request.client_address}", address_windows())


def charge_failure(request) -> Decision:
    return _charge(request, f"authfail:{request.client_address}", failure_windows())
