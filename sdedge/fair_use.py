"""Fair use: a submission rate limit per user (per address on an open server), a per-user share of the
queue, and the throttle on failed logins. All answer 429 with Retry-After, in the surface's own shape.

The rate limits are flask-limiter's (one shared application limit, counted only for submissions) with
its in-memory storage: they count per server process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, request
from flask_limiter import Limiter, RequestLimit
from limits import RateLimitItem, parse_many

from sdedge.config import Settings
from sdedge.errors import QueueFull, RateLimited, detail
from sdedge.job_store import JobStatus, JobStore
from sdedge.principal import Principal

# Every route that queues a job: the native modes and /image, A1111's and OpenAI's generation routes, and
# the seeds' (001's /local/images, 003's /api/request).
SUBMISSION_PREFIXES = ("/generate/", "/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/v1/images/", "/local/images",
                       "/api/request")
SUBMISSION_PATHS = {"/image", "/images"}  # /images: seed 001's Stability path


def is_submission() -> bool:
    """True when the current request queues a generation."""
    return request.method == "POST" and (request.path in SUBMISSION_PATHS or request.path.startswith(SUBMISSION_PREFIXES))


def check_queue_share(job_store: JobStore, settings: Settings, caller: Principal) -> None:
    """429 when this user already has MAX_QUEUED_PER_USER jobs waiting (others can still queue theirs)."""
    share = settings.max_queued_per_user
    if not share or caller.owner is None:
        return
    queued = job_store.counts(owner=caller.owner)[JobStatus.QUEUED.value]
    if queued >= share:
        message = f"you have {queued} jobs waiting, the most one user may queue (MAX_QUEUED_PER_USER); retry later"
        wait = max(1, math.ceil(job_store.average_seconds() or 10.0))
        raise QueueFull(message, detail(None, message, "user_queue_full", queued=queued, max_queued_per_user=share),
                        {"Retry-After": str(wait)})


def _raise_rate_limited(limit: RequestLimit) -> None:
    retry = max(1, math.ceil(limit.window.reset_time - time.time()))
    message = f"too many submissions: at most {limit.limit} (RATE_LIMIT); retry in {retry} s"
    raise RateLimited(message, detail(None, message, "rate_limit", limit=str(limit.limit), retry_after=retry),
                      {"Retry-After": str(retry)})


def init_rate_limits(app: Flask, settings: Settings, key: Callable[[], str]) -> Limiter:
    """Attach the submission limit to app; key names who is counted (the user, or the address)."""
    limits = [settings.rate_limit] if settings.rate_limit else []
    limiter = Limiter(key_func=key, application_limits=limits,  # type: ignore[arg-type]
                      application_limits_exempt_when=lambda: not is_submission(), storage_uri="memory://",
                      strategy="moving-window", on_breach=_raise_rate_limited, headers_enabled=False)
    limiter.init_app(app)
    return limiter


class SubmissionMeter:
    """RATE_LIMIT for submissions that arrive inside one long request, where the per-request limit cannot
    count them (MCP tool calls), counted per user (or address) in the limiter's storage."""

    def __init__(self, limiter: Limiter, settings: Settings) -> None:
        self.limiter = limiter
        self.items: list[RateLimitItem] = parse_many(settings.rate_limit) if settings.rate_limit else []

    def hit(self, key: str) -> None:
        """Count one submission by key; 429 (RateLimited) once over RATE_LIMIT."""
        for item in self.items:
            if not self.limiter.limiter.hit(item, "tool-submissions", key):
                reset = self.limiter.limiter.get_window_stats(item, "tool-submissions", key).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                message = f"too many submissions: at most {item} (RATE_LIMIT); retry in {retry} s"
                raise RateLimited(message, detail(None, message, "rate_limit", limit=str(item), retry_after=retry),
                                  {"Retry-After": str(retry)})


class LoginThrottle:
    """Failed credential checks per client address (LOGIN_RATE_LIMIT), in the limiter's storage."""

    def __init__(self, limiter: Limiter, settings: Settings) -> None:
        self.limiter = limiter
        self.items: list[RateLimitItem] = parse_many(settings.login_rate_limit) if settings.login_rate_limit else []

    def check(self, address: str) -> None:
        """429 with Retry-After while address has failed too often."""
        for item in self.items:
            if not self.limiter.limiter.test(item, "login-failures", address):
                reset = self.limiter.limiter.get_window_stats(item, "login-failures", address).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                message = f"too many failed logins from this address; retry in {retry} s"
                raise RateLimited(message, detail(None, message, "login_throttle", retry_after=retry),
                                  {"Retry-After": str(retry)})

    def failed(self, address: str) -> None:
        """Count one failed credential check from address."""
        for item in self.items:
            self.limiter.limiter.hit(item, "login-failures", address)
