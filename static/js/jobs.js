// Live jobs: one card per job with progress, ETA, step preview and Cancel. The running job is
// followed over Server-Sent Events (one stream per page: each open stream holds one of the server's
// threads); queued jobs, and any job whose stream fails or where EventSource is missing, are polled.
import { ApiError, FINISHED, cancelJob, getJob, jobEventsUrl } from "./api.js";
import { $, announce, capitalize, formatSeconds, h, renderError } from "./dom.js";
import { MODE_LABELS } from "./form.js";

const MAX_STREAMS = 1;
const KEEP_FINISHED = 3;
const POLL_RUNNING_MS = 1000;
const POLL_QUEUED_MS = 2000;

const entries = new Map();
let streams = 0;
let hooks = { onFinished: () => {}, onOpen: () => {} };

export function initJobs(callbacks) {
  hooks = { ...hooks, ...callbacks };
}

/** Show a job and follow it until it finishes. */
export function track(job, { append = false } = {}) {
  if (entries.has(job.id)) return;
  const entry = { id: job.id, job, parts: buildCard(job), stream: null, timer: null, finished: false, streamFailed: false };
  entries.set(job.id, entry);
  const list = $("job-list");
  if (append) list.append(entry.parts.card); else list.prepend(entry.parts.card);
  updateEmpty();
  render(entry, job);
  watch(entry);
}

export function forget(jobId) {
  const entry = entries.get(jobId);
  if (!entry) return;
  stopWatching(entry);
  entry.parts.card.remove();
  entries.delete(jobId);
  updateEmpty();
}

function updateEmpty() {
  $("jobs-empty").hidden = entries.size > 0;
}

// ---- the card --------------------------------------------------------------------------------

function jobSize(job) {
  const p = job.result?.parameters ?? job.request ?? {};
  return { width: Number(p.width) || 512, height: Number(p.height) || 512 };
}

function promptOf(job) {
  return job.result?.parameters?.prompt ?? job.request?.prompt ?? "";
}

function buildCard(job) {
  const { width, height } = jobSize(job);
  const prompt = promptOf(job);
  const parts = {
    media: h("div", { class: "job-media", style: `aspect-ratio: ${width} / ${height}` }),
    preview: h("img", { class: "job-preview", alt: "", hidden: true }),
    bar: h("progress", { max: 100, value: 0, "aria-label": `Progress: ${prompt || MODE_LABELS[job.type] || "job"}` }),
    status: h("p", { class: "job-status" }),
    error: h("div", { class: "error-box", hidden: true }),
    cancel: h("button", { type: "button", class: "secondary small job-cancel" }, "Cancel"),
    dismiss: h("button", { type: "button", class: "secondary small", hidden: true }, "Dismiss"),
  };
  parts.media.append(parts.preview);
  parts.card = h("li", { class: "job-card", dataset: { jobId: job.id } },
    parts.media,
    h("div", { class: "job-body" },
      h("p", { class: "job-title" }, h("span", { class: "job-mode" }, MODE_LABELS[job.type] ?? job.type),
        h("span", { class: "job-prompt" }, prompt || "(no prompt)")),
      parts.bar, parts.status, parts.error,
      h("div", { class: "button-row" }, parts.cancel, parts.dismiss)));
  parts.cancel.addEventListener("click", () => cancel(job.id));
  parts.dismiss.addEventListener("click", () => dismiss(job.id));
  return parts;
}

function statusText(job) {
  const p = job.progress ?? { step: 0, total: 0, percent: 0 };
  if (job.status === "queued") {
    const ahead = Number(job.position) || 0;
    return ahead ? `Queued · ${ahead} job${ahead === 1 ? "" : "s"} ahead` : "Queued · next in line";
  }
  if (job.status === "running") {
    const eta = job.eta_seconds ? ` · about ${formatSeconds(job.eta_seconds)} left` : "";
    return p.total ? `Step ${p.step} of ${p.total} · ${Math.round(p.percent)}%${eta}` : "Starting…";
  }
  if (job.status === "succeeded") {
    const took = (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000;
    const seed = job.result?.seed !== undefined ? ` · seed ${job.result.seed}` : "";
    return `Done${Number.isFinite(took) ? ` in ${took.toFixed(1)} s` : ""}${seed}`;
  }
  return job.status === "canceled" ? `Canceled at step ${p.step} of ${p.total}` : "Failed";
}

function render(entry, job) {
  entry.job = { ...entry.job, ...job };
  const { parts } = entry;
  const current = entry.job;
  parts.card.dataset.status = current.status;
  parts.bar.value = current.status === "succeeded" ? 100 : Number(current.progress?.percent) || 0;
  const canceling = entry.canceling && !FINISHED.has(current.status);
  parts.status.textContent = canceling ? `Canceling… ${statusText(current)}` : statusText(current);
  if (current.preview_url && !FINISHED.has(current.status)) showPreview(entry, current.preview_url, current.progress?.step);
}

function showPreview(entry, url, step) {
  const { preview } = entry.parts;
  const total = entry.job.progress?.total;
  // The last step's preview and a canceled job's are deleted as the job ends: not worth a request.
  if (preview.getAttribute("src") === url || entry.canceling || (total && step >= total)) return;
  preview.onerror = () => { preview.hidden = true; };
  preview.onload = () => { preview.hidden = false; };
  preview.alt = `Preview at step ${step ?? "?"}`;
  preview.src = url;
}

function showResult(entry, job) {
  const images = job.result?.images ?? [];
  const prompt = promptOf(job);
  const buttons = images.map((url, index) => h("button", {
    type: "button", class: "result-thumb",
    "aria-label": `Open image ${index + 1} of ${images.length}: ${prompt}`,
    onclick: () => hooks.onOpen(entry.job, index),
  }, h("img", { src: url, alt: prompt || "Generated image", class: "job-result" })));
  entry.parts.media.classList.toggle("multi", images.length > 1);
  entry.parts.media.replaceChildren(...buttons);
}

// ---- following a job ---------------------------------------------------------------------------

function watch(entry) {
  if (entry.finished) return;
  if (FINISHED.has(entry.job.status)) { finish(entry, entry.job); return; }
  if (entry.stream) return;
  const streamable = entry.job.status === "running" && !entry.streamFailed && "EventSource" in window;
  if (streamable && streams < MAX_STREAMS) openStream(entry);
  else schedulePoll(entry);
}

function openStream(entry) {
  const source = new EventSource(jobEventsUrl(entry.id));
  entry.stream = source;
  streams += 1;
  const data = (event) => JSON.parse(event.data);
  source.addEventListener("progress", (event) => {
    const p = data(event);
    render(entry, { status: p.status, position: p.position, eta_seconds: p.eta_seconds,
      progress: { step: p.step, total: p.total, percent: p.percent } });
  });
  source.addEventListener("preview", (event) => {
    const p = data(event);
    if (!FINISHED.has(entry.job.status)) showPreview(entry, p.url, p.step);
  });
  source.addEventListener("done", (event) => finish(entry, data(event)));
  source.onerror = () => {
    closeStream(entry);
    entry.streamFailed = true; // fall back to polling for this job
    schedulePoll(entry);
  };
}

function closeStream(entry) {
  if (!entry.stream) return;
  entry.stream.close();
  entry.stream = null;
  streams -= 1;
}

function schedulePoll(entry) {
  clearTimeout(entry.timer);
  const delay = entry.job.status === "running" ? POLL_RUNNING_MS : POLL_QUEUED_MS;
  entry.timer = setTimeout(() => poll(entry), delay);
}

async function poll(entry) {
  if (entry.finished) return;
  try {
    render(entry, await getJob(entry.id));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) { forget(entry.id); return; }
    entry.parts.status.textContent = `${statusText(entry.job)} · ${error.message}`;
  }
  watch(entry);
}

function stopWatching(entry) {
  closeStream(entry);
  clearTimeout(entry.timer);
}

function finish(entry, job) {
  if (entry.finished) return;
  entry.finished = true;
  stopWatching(entry);
  render(entry, job);
  const { parts } = entry;
  parts.cancel.hidden = true;
  parts.dismiss.hidden = false;
  if (job.status === "succeeded") showResult(entry, job);
  else parts.media.hidden = true;
  if (job.status === "failed") {
    renderError(parts.error, new ApiError({ code: job.error?.code, message: job.error?.message || "generation failed" }));
  }
  announce(`${MODE_LABELS[job.type] ?? "Job"}: ${parts.status.textContent}`);
  hooks.onFinished(entry.job);
  pruneFinished();
  wakePolling();
}

/** The next queued job has probably started: look now rather than at the next tick (it may take the stream). */
function wakePolling() {
  for (const entry of entries.values()) {
    if (!entry.finished && !entry.stream) { clearTimeout(entry.timer); poll(entry); }
  }
}

function pruneFinished() {
  const finished = [...entries.values()].filter((e) => e.finished);
  for (const entry of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) forget(entry.id);
}

async function cancel(jobId) {
  const entry = entries.get(jobId);
  if (!entry || entry.finished) return;
  entry.parts.cancel.disabled = true;
  entry.canceling = true;
  entry.parts.status.textContent = "Canceling…";
  try {
    const job = await cancelJob(jobId);
    if (FINISHED.has(job.status)) finish(entry, job); else render(entry, job);
  } catch (error) {
    entry.canceling = false;
    entry.parts.cancel.disabled = false;
    renderError(entry.parts.error, error);
    if (error instanceof ApiError && error.status === 409) poll(entry);
  }
}

function dismiss(jobId) {
  const card = entries.get(jobId)?.parts.card;
  const next = card?.nextElementSibling || card?.previousElementSibling;
  forget(jobId);
  (next?.querySelector("button:not([hidden])") || $("prompt")).focus();
}

/** Other parts of the page changed a job (e.g. deleted it). */
export function jobDeleted(jobId) {
  forget(jobId);
}

export function describeStatus(job) {
  return capitalize(statusText(job));
}
