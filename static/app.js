// sdedge page: wires the form, the live jobs, the history, the viewer and the status badge.
import { ApiError, fieldProblems, getSamplers, listJobs, submitJob } from "./js/api.js";
import { $, announce, renderError } from "./js/dom.js";
import {
  FormError, MODE_LABELS, applyJob, buildRequest, initForm, markInvalid, noteSeed, setImageModes,
  setLimits, setSamplers, useImage,
} from "./js/form.js";
import { addJob, initGallery, loadFirst, removeJob } from "./js/gallery.js";
import { initJobs, jobDeleted, track } from "./js/jobs.js";
import { startHealth } from "./js/status.js";
import { initViewer, openViewer } from "./js/viewer.js";

const NO_IMAGE_INPUTS = "This model has no VAE encoder, so image to image, inpainting and style transfer are unavailable.";

function showFormError(error) {
  const box = $("form-error");
  renderError(box, error);
  const first = markInvalid(error instanceof FormError ? error.problems : fieldProblems(error.details));
  (first || box).focus();
}

function clearFormError() {
  $("form-error").hidden = true;
  $("form-error").replaceChildren();
}

function routeMissing(error, mode) {
  return new ApiError({ ...error, code: "method_not_allowed", status: error.status,
    message: `this server does not offer ${MODE_LABELS[mode].toLowerCase()} (HTTP ${error.status})` });
}

async function submit() {
  clearFormError();
  let request;
  try {
    request = buildRequest();
  } catch (error) {
    if (!(error instanceof FormError)) throw error;
    showFormError(new ApiError({ code: "invalid_request", message: "some fields need attention", details: error.problems }));
    return;
  }
  const button = $("generate");
  button.disabled = true;
  button.textContent = "Queuing…";
  try {
    const job = await submitJob(request.mode, request.payload);
    track(job);
    announce(`${MODE_LABELS[request.mode]} job queued`);
  } catch (error) {
    const missing = error instanceof ApiError && [404, 405].includes(error.status);
    showFormError(missing ? routeMissing(error, request.mode) : error);
  } finally {
    button.disabled = false;
    button.textContent = "Generate";
  }
}

function onFinished(job) {
  if (job.status !== "succeeded") return;
  noteSeed(job.result?.seed);
  addJob(job);
}

function onHealth(health) {
  if (health.limits) setLimits(health.limits);
  const failed = ["failed", "missing"].includes(health.loader?.state);
  $("generate-note").hidden = health.ready;
  $("generate-note").textContent = failed
    ? "The model could not be loaded, so jobs cannot run; see the status above."
    : "The model is still loading: jobs you start now wait in the queue until it is ready.";
  setImageModes(health.loader?.image_inputs !== false, NO_IMAGE_INPUTS);
}

async function useAsInput(url, mode) {
  clearFormError();
  try {
    await useImage(url, mode);
    announce(`Image loaded into ${MODE_LABELS[mode]}`);
    $(`tab-${mode}`).focus();
  } catch (error) {
    showFormError(new ApiError({ code: "image_error", message: error.message }));
  }
}

function onReuse(job, seed) {
  applyJob(job, seed);
  announce("Settings copied into the form");
  $("prompt").focus();
}

function onDeleted(jobId) {
  removeJob(jobId);
  jobDeleted(jobId);
  announce("Deleted");
  $("history-title").focus();
}

async function loadSamplers() {
  try {
    const { samplers, default: fallback } = await getSamplers();
    setSamplers(samplers, fallback);
  } catch (error) {
    showFormError(error);
  }
}

/** Jobs still queued or running (from this page before a reload, or from elsewhere) are followed too. */
async function resumeJobs() {
  try {
    const [running, queued] = await Promise.all([listJobs({ status: "running", limit: 10 }),
      listJobs({ status: "queued", limit: 20 })]);
    const jobs = [...running.jobs, ...queued.jobs.sort((a, b) => (a.position ?? 0) - (b.position ?? 0))];
    jobs.forEach((job) => track(job, { append: true }));
  } catch {
    /* the history shows the same failure */
  }
}

function start() {
  initForm({ onSubmit: () => submit().catch(showFormError) });
  initJobs({ onFinished, onOpen: openViewer });
  initGallery({ onOpen: openViewer });
  initViewer({ onReuse, onUseImage: useAsInput, onDeleted });
  startHealth(onHealth);
  loadSamplers();
  resumeJobs();
  loadFirst();
}

start();
