"""Attach the security layer to an app, in the order each request meets it:

    1. Host allow-list            400 for a name this server does not answer to
    2. authentication             the caller on flask.g; 401 where a credential is missing or wrong
    3. same-origin rule           403 for a cross-site change a browser made with ambient credentials
    4. submission rate limit      429 with Retry-After (flask-limiter)
    then CORS headers on the way out, for CORS_ORIGINS only, and `Cache-Control: private` on what a
    signed-in user was sent (a shared cache must not hand one user's images to another).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g

from sdedge.auth import authenticate, caller, init_sessions
from sdedge.fair_use import LoginThrottle, SubmissionMeter, init_rate_limits
from sdedge.services import Services
from sdedge.web_guard import HostAllowList, OriginCheck, check_host, init_cors, is_loopback

log = logging.getLogger(__name__)


def init_security(app: Flask, svc: Services) -> None:
    """Register the hooks above on app and warn when an open server listens on the network."""
    settings = svc.settings
    init_sessions(app, settings)
    hosts, origins = HostAllowList(settings), OriginCheck(settings)
    app.before_request(lambda: check_host(hosts))
    app.before_request(authenticate)
    app.before_request(lambda: origins.check(caller()))
    limiter = init_rate_limits(app, settings, lambda: caller().rate_key)
    svc.auth.throttle = LoginThrottle(limiter, settings)
    svc.submissions = SubmissionMeter(limiter, settings)
    init_cors(app, settings)
    app.after_request(_private_when_signed_in)
    if not svc.auth.accounts_exist() and not is_loopback(settings.host):
        log.warning("no accounts: anyone who can reach %s:%d can use this server, see and delete every job; "
                    "add one with `sdedge users add NAME --admin` (README: Security)", settings.host, settings.port)


def _private_when_signed_in(response: Response) -> Response:
    who = g.get("principal")
    if who is not None and who.authenticated and response.cache_control.public:
        response.cache_control.public = False
        response.cache_control.private = True
    return response
