// Live jobs: one card per job with progress, ETA, step preview and Cancel. The running job is
// followed over Server-Sent Events (one stream per page: each open stream holds one of the server's
// threads); queued jobs, and any job whose stream fails or where EventSource is missing, are polled.
// Every new job and every finished one changes the queue, so the other cards look again at once:
// two cards never both claim to be next.
import { ApiError, FINISHED, cancelJob, getJob, jobEventsUrl } from "./api.js";
import { buildCard, renderCard, showPreview, showResult, statusText } from "./card.js";
import { $, announce, renderError } from "./dom.js";
import { modeLabel } from "./modes.js";

const MAX_STREAMS = 1;
const KEEP_FINISHED = 3;
const POLL_FIRST_MS = 500; // a job just queued is usually claimed at once: show that soon
const POLL_RUNNING_MS = 1000;
const POLL_QUEUED_MS = 2000;

const state = { entries: new Map(), streams: 0, waitingFor: null,
  hooks: { onFinished: () => {}, onOpen: () => {} } };

export function initJobs(callbacks) {
  state.hooks = { ...state.hooks, ...callbacks };
  $("clear-finished").addEventListener("click", clearFinished);
}

/** Show a job and follow it until it finishes; reveal=true scrolls the new card into view. */
export function track(job, { append = false, reveal = false } = {}) {
  if (state.entries.has(job.id)) return;
  const parts = buildCard(job, { onCancel: () => cancel(job.id), onDismiss: () => dismiss(job.id) });
  const entry = { id: job.id, job, parts, stream: null, timer: null, finished: false, streamFailed: false, polls: 0,
    revealed: reveal };
  state.entries.set(job.id, entry);
  const list = $("job-list");
  if (append) list.append(entry.parts.card); else list.prepend(entry.parts.card);
  updateList();
  render(entry, job);
  watch(entry);
  if (!append) refreshOthers(entry);
  if (reveal) bringIntoView(entry.parts.card);
}

function bringIntoView(card) {
  const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
  card.scrollIntoView({ block: "nearest", behavior: still ? "auto" : "smooth" });
}

/** A card the person started and still watches (partly on screen) is shown whole once its picture is in:
 * it grew from a status line to an image that would otherwise end under the Generate bar. */
function keepInView(entry) {
  const { card } = entry.parts;
  const box = card.getBoundingClientRect();
  if (!entry.revealed || box.bottom <= 0 || box.top >= innerHeight) return; // scrolled away: leave the page be
  const image = card.querySelector("img.job-result");
  if (image && !image.complete) image.addEventListener("load", () => bringIntoView(card), { once: true });
  else bringIntoView(card);
}

function forget(jobId) {
  const entry = state.entries.get(jobId);
  if (!entry) return;
  stopWatching(entry);
  entry.parts.card.remove();
  state.entries.delete(jobId);
  updateList();
}

function updateList() {
  $("jobs-empty").hidden = state.entries.size > 0;
  $("clear-finished").hidden = ![...state.entries.values()].some((e) => e.finished);
}

/** While the model is not loaded, queued cards say what they wait for (null: it is ready). */
export function setWaitingFor(reason) {
  if (state.waitingFor === reason) return;
  state.waitingFor = reason;
  for (const entry of state.entries.values()) if (!entry.finished) render(entry, {});
}

function render(entry, job) {
  entry.job = { ...entry.job, ...job };
  renderCard(entry.parts, entry.job, { canceling: entry.canceling, waiting: state.waitingFor });
}

// ---- following a job ---------------------------------------------------------------------------

function watch(entry) {
  if (entry.finished) return;
  if (FINISHED.has(entry.job.status)) { finish(entry, entry.job); return; }
  if (entry.stream) return;
  const streamable = entry.job.status === "processing" && !entry.streamFailed && "EventSource" in window;
  if (streamable && state.streams < MAX_STREAMS) openStream(entry);
  else schedulePoll(entry);
}

function openStream(entry) {
  const source = new EventSource(jobEventsUrl(entry.id));
  entry.stream = source;
  state.streams += 1;
  const data = (event) => JSON.parse(event.data);
  source.addEventListener("progress", (event) => {
    const p = data(event);
    render(entry, { status: p.status, position: p.position, eta_seconds: p.eta_seconds, phase: p.phase,
      model: p.model, progress: p.progress, progressDetail: { step: p.step, total: p.total, percent: p.percent } });
  });
  source.addEventListener("preview", (event) => {
    const p = data(event);
    if (!FINISHED.has(entry.job.status)) showPreview(entry.parts, entry.job, p.url, p.step, entry.canceling);
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
  state.streams -= 1;
}

function schedulePoll(entry) {
  clearTimeout(entry.timer);
  const delay = !entry.polls ? POLL_FIRST_MS : entry.job.status === "processing" ? POLL_RUNNING_MS : POLL_QUEUED_MS;
  entry.timer = setTimeout(() => poll(entry), delay);
}

async function poll(entry) {
  if (entry.finished) return;
  entry.polls += 1;
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
  if (job.status === "completed") showResult(entry.parts, job, (index) => state.hooks.onOpen(entry.job, index));
  else parts.media.hidden = true;
  if (job.status === "failed") {
    renderError(parts.error, new ApiError({ code: job.errorDetail?.code, message: job.error || "generation failed" }));
  }
  keepInView(entry);
  announce(`${modeLabel(job.type)}: ${parts.status.textContent}`);
  state.hooks.onFinished(entry.job);
  pruneFinished();
  updateList();
  refreshOthers(entry);
}

/** The queue changed (a job was added or finished): every other card not on a stream looks now. */
function refreshOthers(changed) {
  for (const entry of state.entries.values()) {
    if (entry !== changed && !entry.finished && !entry.stream) { clearTimeout(entry.timer); poll(entry); }
  }
}

function pruneFinished() {
  const finished = [...state.entries.values()].filter((e) => e.finished);
  for (const entry of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) forget(entry.id);
}

/** Remove every finished card (the history keeps their images). */
function clearFinished() {
  const finished = [...state.entries.values()].filter((e) => e.finished);
  finished.forEach((entry) => forget(entry.id));
  announce(`${finished.length} finished job${finished.length === 1 ? "" : "s"} cleared`);
  $("live-title").focus();
}

async function cancel(jobId) {
  const entry = state.entries.get(jobId);
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
  const card = state.entries.get(jobId)?.parts.card;
  const next = card?.nextElementSibling || card?.previousElementSibling;
  forget(jobId);
  (next?.querySelector("button:not([hidden])") || $("prompt")).focus();
}

/** Other parts of the page changed a job (e.g. deleted it). */
export function jobDeleted(jobId) {
  forget(jobId);
}
