"""Ownership rules the generation service applies: who sees a job, its files, its idempotency key.

Another user's job is "not found" (never "forbidden"), so its id tells nothing. Files are named after
their job (`job-<hex>-0.png`, `job-<hex>-preview.png`), so a file belongs to the job its name starts with.
"""

from __future__ import annotations

import re
from typing import Any

from sdedge.errors import NotFound
from sdedge.job_store import Job
from sdedge.principal import Principal

_JOB_FILE = re.compile(r"^(job-[0-9a-f]+)-")


def check_visible(job: Job, caller: Principal) -> Job:
    """The job when the caller may see it, else the same 404 as for a job that does not exist."""
    if not caller.can_see(job.owner):
        raise NotFound(f"no job {job.id!r}")
    return job


def owned_key(key: str | None, caller: Principal) -> str | None:
    """An idempotency key scoped to its user: one user's key never finds another user's job."""
    if key is None or caller.owner is None:
        return key
    return f"{caller.owner}:{key}"


def mask_nodes(nodes: list[dict[str, Any]], visible: set[str], caller: Principal) -> list[dict[str, Any]]:
    """The fleet's nodes with each worker's current job id kept only when the caller may see that job."""
    if caller.sees_all:
        return nodes
    return [{**node, "workers": [{**worker, "job": worker.get("job") if worker.get("job") in visible else None}
                                 for worker in node.get("workers") or []]} for node in nodes]


def job_id_of_file(filename: str) -> str | None:
    """The id of the job a generated file or preview belongs to, if its name says."""
    found = _JOB_FILE.match(filename)
    return found.group(1) if found else None
