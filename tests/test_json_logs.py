"""LOG_FORMAT=json: every line a server writes is one JSON object; each job event is one, with the job id,
node, mode, model and durations (a real `sdedge serve`, the tiny model)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from sdedge.job_events import JobEvent
from sdedge.json_logs import JOB_FIELDS, JsonFormatter
from serverproc import ServerProcess


def test_the_formatter_writes_one_object_with_the_job_fields_and_the_exception() -> None:
    event = JobEvent("failed", "job-1", "text2img", "tiny", "node-a", run_seconds=1.5, error={"code": "timeout"})
    record = logging.LogRecord("sdedge.jobs", logging.WARNING, __file__, 1, "job %s failed", ("job-1",), None)
    setattr(record, JOB_FIELDS, event.to_dict())
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "job job-1 failed" and line["level"] == "WARNING" and line["time"].endswith("Z")
    assert {k: line[k] for k in ("event", "job_id", "node", "model", "run_seconds")} == {
        "event": "failed", "job_id": "job-1", "node": "node-a", "model": "tiny", "run_seconds": 1.5}
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        plain = logging.LogRecord("x", logging.ERROR, __file__, 1, "oops", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(plain))["exception"]


@pytest.mark.slow
def test_a_server_logs_each_job_event_as_one_json_line(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, LOG_FORMAT="json", OPENVINO_DEVICE="CPU").start()
    try:
        server.wait_ready()
        status, job = server.request("POST", "/generate/text2img", {"prompt": "a cat", "num_inference_steps": 2})
        assert status == 202
        status, queued = server.request("POST", "/generate/text2img", {"prompt": "a dog", "num_inference_steps": 100,
                                                                       "num_images": 4, "priority": -1})
        server.request("POST", f"/jobs/{queued['id']}/cancel")

        def events() -> list[dict[str, Any]] | None:
            lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.strip()]
            found = [line for line in lines if "event" in line]
            kinds = {(line["job_id"], line["event"]) for line in found}
            ended = {(job["id"], "succeeded"), (queued["id"], "canceled")} <= kinds
            return found if ended else None
        found = wait_for(events, timeout=120)
    finally:
        server.stop()
    mine = {line["event"]: line for line in found if line["job_id"] == job["id"]}
    assert ["submitted", "started", "succeeded"] == [e for e in mine if e != "progress"]
    done = mine["succeeded"]
    # the model's id in the library (GET /models): the folder's name for a local STABLE_DIFFUSION_REPO_ID
    assert done["mode"] == "text2img" and done["model"] == Path(server.env["STABLE_DIFFUSION_REPO_ID"]).name.lower()
    assert done["node"].startswith("node-") and done["run_seconds"] > 0 and done["queue_wait_seconds"] >= 0
    assert set(done["stage_seconds"]) >= {"denoise", "decode", "save"}
    assert any(line["event"] == "canceled" and line["job_id"] == queued["id"] for line in found)
