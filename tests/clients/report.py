"""Run every client replay against a fresh `sdedge serve` on the tiny model and print which step fails.

    cd tests && python -m clients.report [--json out.json]

Each replay runs unchanged; the first step that breaks is recorded with what the server answered.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import openwebui, seed_000, seed_001, seed_002, seed_003, seed_004, sillytavern
from .http import StepFailed

Check = tuple[str, Callable[[str], Any]]


def checks(fast: dict[str, Any]) -> list[Check]:
    """Every replay, as (name, function of the base URL); `fast` shrinks the generation work."""
    small: dict[str, Any] = {"width": 64, "height": 64}
    return [
        ("seed 004: POST /image, urls[0], download", lambda b: seed_004.run(b, **small, num_inference_steps=2)),
        ("seed 004: GET /health", seed_004.health),
        ("seed 004: POST /image when the job outlasts REQUEST_TIMEOUT",
         lambda b: seed_004.run(b, width=256, height=256, num_inference_steps=fast["long_steps"])),
        ("seed 002: text2img poll until completed", lambda b: seed_002.run(b, **small, steps=2, interval=0.5)),
        ("seed 002: img2img", lambda b: seed_002.run(b, mode="img2img", **small, steps=2, interval=0.5)),
        ("seed 002: inpaint", lambda b: seed_002.run(b, mode="inpaint", steps=2, interval=0.5)),
        ("seed 002: style-transfer", lambda b: seed_002.run(b, mode="style-transfer", interval=0.5)),
        ("seed 002: priority high", lambda b: seed_002.submit(b, priority="high", **small, steps=2)),
        ("seed 002: cancel", lambda b: seed_002.cancel(b, seed_002.submit(b, **small, steps=2)["id"])),
        ("seed 002: GET /jobs?status=completed", seed_002.list_jobs),
        ("seed 002: GET /queue/status", seed_002.queue_status),
        ("seed 002: GET /models", seed_002.models),
        ("seed 002: error bodies", seed_002.errors),
        ("seed 001: local path", lambda b: seed_001.run(b, interval=0.5, **small)),
        ("seed 001: Stability path", lambda b: seed_001.run(b, remote=True, interval=0.5)),
        ("seed 003: transaction key poll until done (CORS)", lambda b: seed_003.run(b, interval=0.5)),
        ("seed 000: submit, poll the result object", lambda b: seed_000.run(b, **small, interval=0.5)),
        ("Open WebUI: Automatic1111 engine", lambda b: openwebui.a1111_session(b, size="64x64", steps=2)),
        ("Open WebUI: OpenAI engine", lambda b: openwebui.openai_session(b + "/v1", size="64x64")),
        ("Open WebUI: OpenAI edit", lambda b: openwebui.openai_edit(b + "/v1", size="64x64")),
        ("SillyTavern: SD WebUI (A1111) source", lambda b: sillytavern.a1111_session(b, width=64, height=64,
                                                                                       steps=2)),
    ]


def run_all(base_url: str, fast: dict[str, Any]) -> list[dict[str, Any]]:
    """Run each check; a row per check with ok, the failing step and the detail."""
    rows = []
    for name, check in checks(fast):
        try:
            check(base_url)
            rows.append({"check": name, "ok": True})
        except StepFailed as exc:
            rows.append({"check": name, "ok": False, "step": exc.step, "detail": exc.detail[:400]})
        except Exception as exc:  # noqa: BLE001 - a replay that crashes is a finding too
            rows.append({"check": name, "ok": False, "step": "crashed", "detail": repr(exc)[:400],
                         "trace": traceback.format_exc(limit=3)})
    return rows


def main() -> int:
    """Start a server on the tiny model, run the replays, print a table (and JSON when asked)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    parser.add_argument("--request-timeout", default="1")
    parser.add_argument("--long-steps", type=int, default=100)
    args = parser.parse_args()
    from serverproc import ServerProcess

    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), REQUEST_TIMEOUT=args.request_timeout).start()
        try:
            server.wait_ready()
            rows = run_all(server.base, {"long_steps": args.long_steps})
        finally:
            server.stop()
    for row in rows:
        print(("PASS " if row["ok"] else "FAIL ") + row["check"])
        if not row["ok"]:
            print(f"     at: {row['step']}\n     got: {row['detail']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
