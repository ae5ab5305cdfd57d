// One job's card: its picture (shimmer, step preview, results), progress bar, status line and buttons.
import { FINISHED } from "./api.js";
import { capitalize, formatSeconds, h } from "./dom.js";
import { modeLabel } from "./modes.js";

function jobSize(job) {
  const p = job.result?.parameters ?? job.request ?? {};
  return { width: Number(p.width) || 512, height: Number(p.height) || 512 };
}

function promptOf(job) {
  return job.result?.parameters?.prompt ?? job.request?.prompt ?? "";
}

/** The card's elements, with Cancel and Dismiss wired to the given callbacks. */
export function buildCard(job, { onCancel, onDismiss }) {
  const { width, height } = jobSize(job);
  const prompt = promptOf(job);
  const parts = {
    media: h("div", { class: "job-media", style: `aspect-ratio: ${width} / ${height}` }),
    preview: h("img", { class: "job-preview", alt: "", hidden: true }),
    bar: h("progress", { max: 100, value: 0, "aria-label": `Progress: ${prompt || modeLabel(job.type)}` }),
    status: h("p", { class: "job-status" }),
    error: h("div", { class: "error-box", hidden: true }),
    cancel: h("button", { type: "button", class: "secondary small job-cancel", onclick: onCancel }, "Cancel"),
    dismiss: h("button", { type: "button", class: "secondary small", hidden: true, onclick: onDismiss }, "Dismiss"),
  };
  parts.media.append(parts.preview);
  parts.card = h("li", { class: "job-card", dataset: { jobId: job.id } },
    parts.media,
    h("div", { class: "job-body" },
      h("p", { class: "job-title" }, h("span", { class: "job-mode" }, modeLabel(job.type)),
        h("span", { class: "job-prompt" }, prompt || "(no prompt)")),
      parts.bar, parts.status, parts.error,
      h("div", { class: "button-row" }, parts.cancel, parts.dismiss)));
  return parts;
}

function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] ?? "th";
  return `${n}${suffix}`;
}

/** "next in line", "2nd in line": the server's position counts the queued jobs before this one. */
function queueText(job, waiting) {
  const place = (Number(job.position) || 0) + 1;
  const where = place === 1 ? "next in line" : `${ordinal(place)} in line`;
  return `Queued · ${where}${waiting ? " · starts when the model is ready" : ""}`;
}

/** " · on beta" when several nodes share the queue and one runs or ran this job. */
function nodeText(job) {
  return document.body.dataset.fleet === "true" && job.node?.name ? ` · on ${job.node.name}` : "";
}

export function statusText(job, waiting = null) {
  const text = baseStatusText(job, waiting);
  return job.status === "queued" ? text : text + nodeText(job);
}

function baseStatusText(job, waiting) {
  const p = job.progressDetail ?? { step: 0, total: 0, percent: 0 };
  if (job.status === "queued") return queueText(job, waiting);
  if (job.status === "processing" && job.phase && job.phase.name !== "generating") {
    const share = job.phase.progress === null || job.phase.progress === undefined ? ""
      : ` · ${Math.round(job.phase.progress * 100)}%`;
    return `${capitalize(job.phase.name)} ${job.model ?? ""}…${share}`.replace(" …", "…");
  }
  if (job.status === "processing") {
    const eta = job.eta_seconds ? ` · about ${formatSeconds(job.eta_seconds)} left` : "";
    return p.total ? `Step ${p.step} of ${p.total} · ${Math.round(p.percent)}%${eta}` : "Starting…";
  }
  if (job.status === "completed") {
    const took = (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000;
    const seed = job.result?.seed !== undefined ? ` · seed ${job.result.seed}` : "";
    return `Done${Number.isFinite(took) ? ` in ${took.toFixed(1)} s` : ""}${seed}`;
  }
  return job.status === "canceled" ? `Canceled at step ${p.step} of ${p.total}` : "Failed";
}

/** Show a job's state; `waiting` (a reason or null) says the model is not loaded yet. */
export function renderCard(parts, job, { canceling = false, waiting = null } = {}) {
  parts.card.dataset.status = job.status;
  const loading = job.status === "processing" && job.phase && job.phase.name !== "generating";
  parts.bar.value = job.status === "completed" ? 100
    : loading ? Math.round((job.phase.progress ?? 0) * 100) : Number(job.progressDetail?.percent) || 0;
  const text = statusText(job, waiting);
  parts.status.textContent = canceling && !FINISHED.has(job.status) ? `Canceling… ${text}` : text;
  if (job.preview_url && !FINISHED.has(job.status)) showPreview(parts, job, job.preview_url, job.progressDetail?.step, canceling);
}

export function showPreview(parts, job, url, step, canceling) {
  const { preview } = parts;
  const total = job.progressDetail?.total;
  // The last step's preview and a canceled job's are deleted as the job ends: not worth a request.
  if (preview.getAttribute("src") === url || canceling || (total && step >= total)) return;
  preview.onerror = () => { preview.hidden = true; };
  preview.onload = () => { preview.hidden = false; };
  preview.alt = `Preview at step ${step ?? "?"}`;
  preview.src = url;
}

/** The finished job's images, each a button that opens the viewer at it. */
export function showResult(parts, job, onOpen) {
  const images = job.result?.urls ?? [];
  const prompt = promptOf(job);
  const buttons = images.map((url, index) => h("button", {
    type: "button", class: "result-thumb", "aria-label": `Open image ${index + 1} of ${images.length}: ${prompt}`,
    onclick: () => onOpen(index),
  }, h("img", { src: url, alt: prompt || "Generated image", class: "job-result" })));
  parts.media.classList.toggle("multi", images.length > 1);
  parts.media.replaceChildren(...buttons);
}
