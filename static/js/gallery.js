// History: finished jobs from GET /jobs (the server's history, so it survives reloads), paged.
import { listJobs } from "./api.js";
import { $, h, renderError } from "./dom.js";
import { modeLabel } from "./modes.js";

const PAGE = 12;
const state = { jobs: new Map(), nextBefore: null, onOpen: () => {} };

export function initGallery(callbacks) {
  state.onOpen = callbacks.onOpen;
  $("load-more").addEventListener("click", loadMore);
  $("history-refresh").addEventListener("click", loadFirst);
}

function item(job) {
  const images = job.result?.urls ?? [];
  const prompt = job.result?.parameters?.prompt || job.request?.prompt || modeLabel(job.type);
  const count = images.length > 1 ? h("span", { class: "count", "aria-hidden": "true" }, `×${images.length}`) : null;
  const label = `Open ${modeLabel(job.type)}: ${prompt}${images.length > 1 ? ` (${images.length} images)` : ""}`;
  return h("li", { class: "gallery-item", dataset: { jobId: job.id } },
    h("button", { type: "button", class: "thumb", "aria-label": label, title: prompt, onclick: () => state.onOpen(job, 0) },
      h("img", { src: images[0], alt: "", loading: "lazy", decoding: "async" }), count));
}

function updateEmpty() {
  $("history-empty").hidden = state.jobs.size > 0;
  $("load-more").hidden = !state.nextBefore;
}

async function fetchPage(before) {
  $("history-error").hidden = true;
  try {
    return await listJobs({ status: "completed", limit: PAGE, before });
  } catch (error) {
    renderError($("history-error"), error);
    return null;
  }
}

/** The newest page, replacing what is shown. */
export async function loadFirst() {
  const page = await fetchPage(null);
  if (!page) return;
  state.jobs.clear();
  $("gallery").replaceChildren(...page.jobs.map((job) => { state.jobs.set(job.id, job); return item(job); }));
  state.nextBefore = page.next_before;
  updateEmpty();
}

async function loadMore() {
  const button = $("load-more");
  button.disabled = true;
  const page = await fetchPage(state.nextBefore);
  button.disabled = false;
  if (!page) return;
  const fresh = page.jobs.filter((job) => !state.jobs.has(job.id));
  fresh.forEach((job) => state.jobs.set(job.id, job));
  $("gallery").append(...fresh.map(item));
  state.nextBefore = page.next_before;
  updateEmpty();
  const first = fresh.length ? $("gallery").querySelector(`[data-job-id="${fresh[0].id}"] button`) : null;
  (first || button).focus();
}

/** A job that just finished: first in the history. */
export function addJob(job) {
  if (job.status !== "completed" || state.jobs.has(job.id)) return;
  state.jobs.set(job.id, job);
  $("gallery").prepend(item(job));
  updateEmpty();
}

export function removeJob(jobId) {
  state.jobs.delete(jobId);
  $("gallery").querySelector(`[data-job-id="${jobId}"]`)?.remove();
  updateEmpty();
}
