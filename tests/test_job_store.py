"""The SQL job store: atomic claims, recovery after a crash, pruning, ordering."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sdedge.errors import Conflict, NotFound
from sdedge.job_store import JobStatus, JobStore

PARAMS = {"steps": 4}


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")


def add(store: JobStore, priority: int = 0, key: str | None = None) -> str:
    return store.add("text2img", {"prompt": "x"}, PARAMS, priority=priority, idempotency_key=key)[0].id


def test_claims_follow_priority_then_fifo(store: JobStore) -> None:
    ids = [add(store, p) for p in (0, 2, 0, 2, -1)]
    claimed = [store.claim_next("w").id for _ in ids]  # type: ignore[union-attr]
    assert claimed == [ids[1], ids[3], ids[0], ids[2], ids[4]]
    assert store.claim_next("w") is None


def test_claims_keep_to_the_models_and_devices_a_worker_can_run(store: JobStore) -> None:
    default = store.add("text2img", {}, PARAMS)[0].id
    sdxl = store.add("text2img", {}, PARAMS, model="tiny-sdxl")[0].id
    on_gpu = store.add("text2img", {}, PARAMS, model="tiny-sdxl", device="GPU")[0].id
    assert store.get(on_gpu).model == "tiny-sdxl" and store.get(on_gpu).device == "GPU"
    assert store.claim_next("cpu", models=["tiny-sdxl"], devices=["CPU"]).id == sdxl  # type: ignore[union-attr]
    assert store.claim_next("cpu", models=["tiny-sdxl"], devices=["CPU"]) is None  # the GPU job waits
    assert store.claim_next("cpu", models=[None], devices=["CPU"]).id == default  # type: ignore[union-attr]
    assert store.claim_next("gpu", devices=["GPU"]).id == on_gpu  # type: ignore[union-attr]


def _claim_models(store: JobStore, loaded: str, count: int, affinity: tuple[int, float]) -> list[str | None]:
    order = []
    for _ in range(count):
        job = store.claim_next("w", prefer_model=loaded, affinity=affinity)
        assert job is not None
        order.append(job.model)
        store.finish(job.id, JobStatus.SUCCEEDED)
    return order


def test_the_loaded_models_jobs_go_first_but_a_job_is_passed_at_most_max_skips_times(store: JobStore) -> None:
    for model in ("b", "a", "a", "a", "a", "b"):
        store.add("text2img", {}, PARAMS, model=model)
    # model a is loaded: a's jobs pass the first b job twice at most, then b runs, then the rest in order
    assert _claim_models(store, "a", 6, (2, 3600.0)) == ["a", "a", "b", "a", "a", "b"]


def test_model_affinity_never_passes_a_higher_priority_or_an_old_job(store: JobStore) -> None:
    store.add("text2img", {}, PARAMS, model="b", priority=1)
    store.add("text2img", {}, PARAMS, model="a")
    assert _claim_models(store, "a", 1, (5, 3600.0)) == ["b"]  # priority first, whatever is loaded
    store.add("text2img", {}, PARAMS, model="b")
    store.add("text2img", {}, PARAMS, model="a")
    assert _claim_models(store, "a", 1, (5, 3600.0)) == ["a"]
    assert _claim_models(store, "a", 1, (5, 0.0)) == ["b"]  # waited max_wait (0 s): the head runs
    assert _claim_models(store, "a", 1, (0, 3600.0)) == ["a"]  # max_skips 0: strict FIFO


def test_concurrent_workers_never_claim_the_same_job(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    stores = [JobStore(url) for _ in range(4)]  # separate engines: like separate processes
    ids = {add(stores[0]) for _ in range(40)}
    claims: list[str] = []

    def drain(store: JobStore, name: str) -> None:
        while (job := store.claim_next(name)) is not None:
            claims.append(job.id)

    threads = [threading.Thread(target=drain, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(claims) == sorted(ids)  # every job exactly once


def test_recovery_requeues_once_then_fails_as_interrupted(store: JobStore) -> None:
    job_id = add(store)
    store.claim_next("host:1")
    released = store.recover("host:")
    assert released[:2] == (1, 0) and [(kind, j.id, j.status) for kind, j in released.jobs] == \
        [("requeued", job_id, JobStatus.QUEUED)]  # each job as the release left it, for its job event
    assert store.get(job_id).status is JobStatus.QUEUED
    store.claim_next("host:2")
    released = store.recover("host:")
    assert released[:2] == (0, 1) and [(kind, j.id) for kind, j in released.jobs] == [("failed", job_id)]
    failed = store.get(job_id)
    assert failed.status is JobStatus.FAILED and failed.error["code"] == "interrupted"  # type: ignore[index]


def test_recovery_leaves_other_hosts_jobs_alone(store: JobStore) -> None:
    job_id = add(store)
    store.claim_next("other-host:7")
    assert store.recover("this-host:") == (0, 0, ())
    assert store.get(job_id).status is JobStatus.RUNNING


def test_graceful_requeue_does_not_count_an_attempt(store: JobStore) -> None:
    job_id = add(store)
    store.claim_next("w")
    store.requeue(job_id)
    assert store.get(job_id).attempts == 0 and store.get(job_id).status is JobStatus.QUEUED


def test_prune_by_age_then_by_size_oldest_first(store: JobStore) -> None:
    ids = [add(store) for _ in range(4)]
    for i, job_id in enumerate(ids):
        store.claim_next("w")
        store.finish(job_id, JobStatus.SUCCEEDED, result={"files": []}, files=[f"{job_id}.png"], size=100)
    now = time.time()
    assert [j.id for j in store.prunable(older_than=0, max_total_bytes=250)] == ids[:2]
    assert [j.id for j in store.prunable(older_than=now + 1, max_total_bytes=10**9)] == ids
    assert store.prunable(older_than=0, max_total_bytes=10**9) == []


def test_idempotency_key_is_unique(store: JobStore) -> None:
    first = add(store, key="k")
    assert add(store, key="k") == first
    assert store.counts()["queued"] == 1


def test_cancel_and_delete_rules(store: JobStore) -> None:
    queued, running = add(store), add(store)
    store.claim_next("w")  # claims `queued` (FIFO)
    assert store.cancel(running).status is JobStatus.CANCELED
    flagged = store.cancel(queued)
    assert flagged.status is JobStatus.RUNNING and flagged.cancel_requested
    assert store.set_progress(queued, 1, 4, None) is True  # the worker learns of it at its next write
    with pytest.raises(Conflict):
        store.delete(queued)
    store.delete(running)
    with pytest.raises(NotFound):
        store.get(running)
