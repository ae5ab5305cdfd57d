"""The little HTTP a replayed client needs, on the standard library: calls, multipart bodies, PNGs, polling."""

from __future__ import annotations

import base64
import json
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_TIMEOUT = 60.0


class StepFailed(AssertionError):
    """A replayed client could not go on: `step` names what it was doing, `detail` what it got."""

    def __init__(self, client: str, step: str, detail: str, reply: Reply | None = None) -> None:
        super().__init__(f"[{client}] {step}: {detail}")
        self.client, self.step, self.detail, self.reply = client, step, detail, reply


@dataclass
class Reply:
    """One HTTP answer, whatever its status."""

    method: str
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    request_headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON; StepFailed-friendly ValueError when it is not."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ValueError(f"{self.method} {self.url} answered {self.status} with non-JSON "
                             f"{self.content_type!r}: {self.body[:200]!r}") from exc

    def short(self) -> str:
        """Status and the start of the body, for failure messages."""
        return f"HTTP {self.status} {self.body[:300].decode('utf-8', 'replace')}"


def call(method: str, url: str, *, json_body: Any = None, data: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Reply:
    """Send one request; HTTP errors are answers too (a Reply with their status)."""
    sent = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        sent.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(method, url, resp.status, _lower(resp.headers.items()), resp.read(), sent)
    except urllib.error.HTTPError as err:
        return Reply(method, url, err.code, _lower(err.headers.items()), err.read(), sent)


def _lower(items: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in items}


def join(base_url: str, path_or_url: str) -> str:
    """An absolute URL: relative links (the seeds' `/generated/x.png`) resolve against the server."""
    return urllib.parse.urljoin(base_url.rstrip("/") + "/", path_or_url)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type (files: name -> (filename, bytes, type))."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, payload, kind) in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {kind}\r\n\r\n")
        parts.append(head.encode() + payload + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def basic_auth(credentials: str) -> str:
    """`Basic base64(user:pass)`, exactly as Open WebUI and SillyTavern build it (empty string included)."""
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def png(width: int = 64, height: int = 64, rgb: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    """A solid-colour RGB PNG, written without Pillow (clients here use the standard library only)."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG header; ValueError when data is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 24:
        raise ValueError(f"not a PNG: {data[:16]!r}")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def data_url(payload: bytes, kind: str = "image/png") -> str:
    """A data: URL, the seeds' way of sending images in JSON."""
    return f"data:{kind};base64,{base64.b64encode(payload).decode()}"


def decode_image_value(value: str) -> bytes:
    """Bytes of a data URL or bare base64 image string; ValueError for anything else."""
    encoded = value.split(",", 1)[1] if value.startswith("data:") else value
    return base64.b64decode(encoded, validate=True)


def poll(fetch: Callable[[], T], done: Callable[[T], bool], *, interval: float, timeout: float,
         describe: Callable[[T], str] = repr) -> T:
    """Call fetch every `interval` seconds until done(value) or `timeout`; TimeoutError says the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() + interval > deadline:
            raise TimeoutError(f"not done after {timeout:.0f}s; last: {describe(value)}")
        time.sleep(interval)  # the client's own poll interval, as in its documentation
