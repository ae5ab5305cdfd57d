"""Prometheus metrics of one app, in its own CollectorRegistry (no module-level state).

Two kinds:
- what this process saw happen, from job events: `sdedge_jobs_total{event,mode,model}` counters, job
  duration, queue wait and per-stage histograms (counters start at zero when the process starts, as
  Prometheus expects; sum them over instances for a fleet);
- what is true now, read from the job store and the services at each scrape by `StateCollector`: jobs
  per status, queue depth per priority, the model's state and loads, each worker's device and model
  (every node's, when the fleet shares a database), free disk of the output folder.
HTTP requests by route and status are counted by `sdedge.http_metrics`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sdedge import __version__
from sdedge.engine.loader import LoadState
from sdedge.foreign_errors import is_database_outage
from sdedge.job_events import ENDINGS, JobEvent
from sdedge.job_store import JobStatus

if TYPE_CHECKING:
    from sdedge.services import Services

NODES_WITHIN_SECONDS = 60.0  # a fleet node silent for longer is left out of the worker gauges
JOB_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
WAIT_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def api_name(kind: str) -> str:
    """An event or stored status as the API names it: succeeded is completed, running is processing."""
    try:
        return JobStatus(kind).api
    except ValueError:
        return kind  # submitted, started, requeued: events, not statuses


class AppMetrics:
    """The registry of one app, its event-driven metrics, and the per-scrape collector."""

    def __init__(self, svc: Services) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Counter("sdedge_jobs", "Job events seen by this node: submitted, started, completed, failed, "
                            "canceled, requeued", ["event", "mode", "model"], registry=r)
        self.duration = Histogram("sdedge_job_duration_seconds", "Run time of finished jobs (started to ended; "
                                  "status: completed, failed, canceled)",
                                  ["mode", "model", "status"], buckets=JOB_BUCKETS, registry=r)
        self.queue_wait = Histogram("sdedge_job_queue_wait_seconds", "Time jobs waited in the queue before starting",
                                    ["mode", "model"], buckets=WAIT_BUCKETS, registry=r)
        self.stages = Histogram("sdedge_stage_seconds", "Seconds per stage of succeeded jobs: text_encoder, "
                                "denoise_step (one denoising step), decode and save", ["stage", "model"],
                                buckets=STAGE_BUCKETS, registry=r)
        self.http_requests = Counter("sdedge_http_requests", "HTTP requests by route, method and status",
                                     ["route", "method", "status"], registry=r)
        self.http_seconds = Histogram("sdedge_http_request_duration_seconds", "Time to the response headers",
                                      ["route", "method"], registry=r)
        r.register(StateCollector(svc))
        svc.events.subscribe(self.on_event)

    def on_event(self, event: JobEvent) -> None:
        """Count a job event and observe its durations (an ending under the API's status name)."""
        if event.kind == "progress":
            return
        self.jobs.labels(api_name(event.kind), event.mode, event.model).inc()
        if event.kind == "started" and event.queue_wait_seconds is not None:
            self.queue_wait.labels(event.mode, event.model).observe(event.queue_wait_seconds)
        if event.run_seconds is not None and event.kind in ENDINGS:
            self.duration.labels(event.mode, event.model, api_name(event.kind)).observe(event.run_seconds)
        for stage, seconds in event.stage_seconds.items():
            if stage == "denoise":
                if event.denoise_steps:
                    self.stages.labels("denoise_step", event.model).observe(seconds / event.denoise_steps)
                continue
            self.stages.labels(stage, event.model).observe(seconds)


class StateCollector(Collector):
    """Reads the job store and the services at every scrape."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry must not scrape the database when the collector is registered."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The current values; while the job database is unreachable, the rest and `sdedge_database_up 0`."""
        up = 1.0
        for part in (self._jobs, self._workers):
            try:
                yield from list(part())
            except Exception as exc:  # noqa: BLE001 - a monitor must see the outage, not a failed scrape
                if not is_database_outage(exc):
                    raise
                up = 0.0
        yield GaugeMetricFamily("sdedge_database_up", "1 when the job database answered this scrape", value=up)
        yield from self._model()
        yield from self._disk()
        info = GaugeMetricFamily("sdedge_build_info", "The sdedge version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info

    def _jobs(self) -> Iterator[Metric]:
        store = self.svc.generation.job_store
        by_status = GaugeMetricFamily("sdedge_jobs_stored", "Jobs in the job store by status (the API's names: "
                                      "queued, processing, completed, failed, canceled), mode and model (shared by a "
                                      "fleet; pruning removes finished ones)", labels=["status", "mode", "model"])
        default = self.svc.loader.model_name()  # as job events label a job that named no model
        depth = GaugeMetricFamily("sdedge_queue_depth", "Queued jobs by priority", labels=["priority"])
        running, stored = 0, dict[tuple[str, str, str], int]()  # no model named and the default's: one series
        for status, mode, model, count in store.tally("status", "type", "model"):
            key = (api_name(status), mode, model or default)
            stored[key] = stored.get(key, 0) + count
            running += count if status == JobStatus.RUNNING.value else 0
        for labels, count in stored.items():
            by_status.add_metric(list(labels), count)
        for status, priority, count in store.tally("status", "priority"):
            if status == JobStatus.QUEUED.value:
                depth.add_metric([str(priority)], count)
        yield by_status
        yield depth
        yield GaugeMetricFamily("sdedge_jobs_running", "Running jobs (every node)", value=running)

    def _model(self) -> Iterator[Metric]:
        loader = self.svc.loader
        state = GaugeMetricFamily("sdedge_model_state", "1 for the state the model loader is in on this node",
                                  labels=["model", "state"])
        for value in LoadState:  # the start-up load of the default model (later loads: sdedge_model_loads)
            state.add_metric([loader.startup_model or loader.model_name(), value.value], float(loader.state is value))
        yield state
        loads = CounterMetricFamily("sdedge_model_loads", "Model loads on this node by how they ended",
                                    labels=["model", "outcome"])
        seconds = CounterMetricFamily("sdedge_model_load_seconds", "Seconds spent loading models on this node",
                                      labels=["model"])
        counted: dict[tuple[str, str], int] = {}
        spent: dict[str, float] = {}
        switches, previous = 0, None
        for each in self.svc.loaders:  # every device's loads; a switch: a load of another model on that device
            previous = None
            for record in list(getattr(each, "load_history", [])):
                counted[(record.model, record.outcome)] = counted.get((record.model, record.outcome), 0) + 1
                spent[record.model] = spent.get(record.model, 0.0) + record.seconds
                switches += int(previous is not None and record.model != previous)
                previous = record.model
        for (model, outcome), count in counted.items():
            loads.add_metric([model, outcome], count)
        for model, total in spent.items():
            seconds.add_metric([model], total)
        yield loads
        yield seconds
        yield CounterMetricFamily("sdedge_model_switches", "Loads of a model other than the one loaded before",
                                  value=switches)

    def _workers(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("sdedge_worker_info", "1 per worker: its node, device and model",
                                 labels=["node", "node_name", "worker", "device_requested", "device", "model", "state"])
        busy = GaugeMetricFamily("sdedge_worker_busy", "1 while the worker runs a job", labels=["node", "worker"])
        for node, name, worker in self._worker_rows():
            device: dict[str, Any] = worker.get("device") or {}
            info.add_metric([node, name, str(worker.get("worker", "")), str(device.get("requested") or ""),
                             str(device.get("actual") or ""), str(worker.get("model") or ""),
                             str(worker.get("state") or "")], 1)
            busy.add_metric([node, str(worker.get("worker", ""))], float(bool(worker.get("job"))))
        yield info
        yield busy

    def _worker_rows(self) -> list[tuple[str, str, dict[str, Any]]]:
        svc = self.svc
        if svc.generation.job_store.is_local:
            return [(svc.nodes.node, svc.nodes.name, w) for w in svc.worker.describe()]
        return [(n.id, n.name, w) for n in svc.nodes.live(NODES_WITHIN_SECONDS) for w in n.workers]

    def _disk(self) -> Iterator[Metric]:
        images, settings = self.svc.images, self.svc.settings
        root = str(images.root)
        free = GaugeMetricFamily("sdedge_output_free_bytes", "Free disk space where images are written",
                                 labels=["path"])
        free.add_metric([root], images.free_bytes())
        yield free
        floor = GaugeMetricFamily("sdedge_output_min_free_bytes", "MIN_FREE_DISK_MB in bytes: below it /health "
                                  "warns", labels=["path"])
        floor.add_metric([root], settings.min_free_disk_mb * 1024 * 1024)
        yield floor
