"""Counting HTTP requests for /metrics: route (the URL rule, not the path, so ids do not explode the
label set), method and status, and the time to the response headers."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from sdedge.metrics import AppMetrics

UNMATCHED = "<unmatched>"  # no route: 404s of made-up paths all count as one


def init_http_metrics(app: Flask, metrics: AppMetrics) -> None:
    """Register the hooks; call before the security layer, so refused requests are timed and counted too."""
    app.before_request(_start_clock)
    app.after_request(lambda response: _count(metrics, response))


def _start_clock() -> None:
    g.sdedge_request_started = time.perf_counter()


def _count(metrics: AppMetrics, response: Response) -> Response:
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    metrics.http_requests.labels(route, request.method, str(response.status_code)).inc()
    started = g.get("sdedge_request_started")
    if started is not None:
        metrics.http_seconds.labels(route, request.method).observe(time.perf_counter() - started)
    return response
