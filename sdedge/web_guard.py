"""Browser protections: the Host allow-list (DNS rebinding), the same-origin rule for state-changing
requests a browser sends on its own (CSRF), and CORS for the origins CORS_ORIGINS lists.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from flask import Flask, request
from flask_cors import CORS

from sdedge.config import Settings
from sdedge.errors import Forbidden, InvalidRequest, detail
from sdedge.principal import Principal

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
DEFAULT_PORTS = {"http": "80", "https": "443"}


def is_ip_literal(name: str) -> bool:
    """True for 192.168.1.20, ::1 or [fe80::1]."""
    try:
        ipaddress.ip_address(name.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """True when HOST only listens on this machine (127.x, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """The name part of a Host header: 'box:8000' -> 'box', '[::1]:8000' -> '[::1]'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def machine_names(settings: Settings) -> set[str]:
    """The names a client on the network may use for this machine, plus BASE_URL's host."""
    names = {"localhost"}
    hostname = socket.gethostname().lower()
    if hostname:
        names |= {hostname, hostname.split(".")[0], f"{hostname.split('.')[0]}.local"}
    if settings.base_url and (base := urlsplit(settings.base_url).hostname):
        names.add(base.lower())
    return names


class HostAllowList:
    """ALLOWED_HOSTS: exact names, '.example.org' for a domain and its subdomains, '*' for any."""

    def __init__(self, settings: Settings) -> None:
        configured = settings.allowed_host_names
        self.any = "*" in configured
        self.automatic = not configured
        self.names = set(configured) if configured else machine_names(settings)

    def allows(self, name: str) -> bool:
        """True when a request for this host name is answered."""
        if self.any or name in self.names:
            return True
        if self.automatic and (is_ip_literal(name) or name.endswith(".localhost")):
            return True
        return any(entry.startswith(".") and (name == entry[1:] or name.endswith(entry)) for entry in self.names)


def _origin_of(url: str) -> tuple[str, str] | None:
    """(scheme, host:port with the default port dropped) of an Origin or Referer value."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    netloc = parts.netloc.lower().rsplit("@", 1)[-1]
    default = DEFAULT_PORTS.get(parts.scheme.lower())
    if default and netloc.endswith(f":{default}"):
        netloc = netloc[: -len(default) - 1]
    return parts.scheme.lower(), netloc


class OriginCheck:
    """State-changing requests a browser may send by itself (cookie, Basic, no credential on an open
    server) must come from this server's own pages or a CORS_ORIGINS origin; Bearer requests are exempt."""

    def __init__(self, settings: Settings) -> None:
        self.trusted = {found for origin in settings.cors_origin_list if (found := _origin_of(origin))}
        if settings.base_url and (base := _origin_of(settings.base_url)):
            self.trusted.add(base)

    def check(self, who: Principal) -> None:
        """Raise 403 for a cross-site state-changing request the browser made with ambient authority."""
        if request.method not in UNSAFE_METHODS or who.method == "token":
            return
        raw = request.headers.get("Origin") or request.headers.get("Referer")
        if raw is None:
            if who.method == "session":  # every browser sends Origin on a POST; a cookie without one is suspect
                raise Forbidden("refused: a cookie-authenticated change needs an Origin or Referer header",
                                detail("Origin", "missing", "csrf"))
            return  # scripts and API clients send no Origin
        source = _origin_of(raw)
        own = _origin_of(f"{request.scheme}://{request.host}")
        if source is not None and own is not None and (source[1] == own[1] or source in self.trusted):
            return
        raise Forbidden(f"refused: a request from {raw!r} may not change anything on this server "
                        "(only its own pages and CORS_ORIGINS may)", detail("Origin", "another site", "csrf"))


def check_host(allowed: HostAllowList) -> None:
    """400 for a Host this server does not answer to (a DNS-rebinding page names its own domain)."""
    name = host_name(request.host)
    if not allowed.allows(name):
        message = f"this server does not answer to the host name {name!r}; add it to ALLOWED_HOSTS"
        raise InvalidRequest(message, detail("Host", message, "host"))


def init_cors(app: Flask, settings: Settings) -> None:
    """CORS headers for CORS_ORIGINS only (none when empty); credentials travel as Bearer tokens."""
    origins = settings.cors_origin_list
    if not origins:
        return
    CORS(app, origins=origins, supports_credentials=False, max_age=600,
         expose_headers=["Retry-After", "WWW-Authenticate", "Location"],
         allow_headers=["Authorization", "Content-Type", "Idempotency-Key"])
