// sdedge page: loads the server's modes, then wires the form, the Generate bar, the live jobs, the
// history, the viewer and the status badge.
import { getSession, initAccount, showLogin } from "./js/account.js";
import { initActions, setBusy, setFormReady, showEngine, showOffline } from "./js/actions.js";
import { ApiError, fieldProblems, getSamplers, listJobs, submitJob } from "./js/api.js";
import { $, announce, renderError } from "./js/dom.js";
import { FormError, applyJob, buildRequest, initForm, markInvalid, setImageModes, setModel, useImage } from "./js/form.js";
import { addJob, initGallery, loadFirst, removeJob } from "./js/gallery.js";
import { initJobs, jobDeleted, setWaitingFor, track } from "./js/jobs.js";
import { initModels } from "./js/models.js";
import { loadModes, modeLabel } from "./js/modes.js";
import { noteSeed } from "./js/seed.js";
import { refreshSpeed } from "./js/speed.js";
import { startHealth } from "./js/status.js";
import { initViewer, openViewer } from "./js/viewer.js";

const NO_IMAGE_INPUTS = "this model has no VAE encoder, so image to image, inpainting and style transfer are unavailable.";

const state = { formReady: false, loading: null, health: null, session: null };

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
    message: `this server does not offer ${modeLabel(mode).toLowerCase()} (HTTP ${error.status})` });
}

async function submit() {
  if ($("generate").disabled) return; // Ctrl+Enter while the model cannot run: the note at the button says why
  clearFormError();
  let request;
  try {
    request = buildRequest();
  } catch (error) {
    if (!(error instanceof FormError)) throw error;
    showFormError(new ApiError({ code: "invalid_request", message: "some fields need attention", details: error.problems }));
    return;
  }
  setBusy(true);
  try {
    const job = await submitJob(request.path, request.payload);
    track(job, { reveal: true });
    announce(`${modeLabel(request.mode)} job queued`);
  } catch (error) {
    const missing = error instanceof ApiError && [404, 405].includes(error.status);
    showFormError(missing ? routeMissing(error, request.mode) : error);
  } finally {
    setBusy(false);
  }
}

function onFinished(job) {
  if (job.status !== "completed") return;
  noteSeed(job.result?.seed);
  addJob(job);
}

function onHealth(health) {
  showEngine(health);
  setWaitingFor(health.ready ? null : health.reason || health.status);
  setImageModes(health.loader?.image_inputs !== false, NO_IMAGE_INPUTS);
  state.health = health;
  if (state.formReady) refreshSpeed(health);
  if (!state.formReady) loadForm();
}

async function useAsInput(url, mode) {
  clearFormError();
  try {
    await useImage(url, mode);
    announce(`Image loaded into ${modeLabel(mode)}`);
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

/** Jobs still queued or processing (from this page before a reload, or from elsewhere) are followed too. */
async function resumeJobs() {
  try {
    const [processing, queued] = await Promise.all([listJobs({ status: "processing", limit: 10 }),
      listJobs({ status: "queued", limit: 20 })]);
    const jobs = [...processing.jobs, ...queued.jobs.sort((a, b) => (a.position ?? 0) - (b.position ?? 0))];
    jobs.forEach((job) => track(job, { append: true }));
  } catch {
    /* the history shows the same failure */
  }
}

/** The form needs the server's modes; the samplers only name the menu's entries. Retried on the next health. */
function loadForm() {
  if (state.loading) return;
  state.loading = Promise.all([loadModes(), getSamplers().catch(() => null)])
    .then(([modes, samplers]) => {
      clearFormError();
      initForm({ modes, samplers, onSubmit: () => submit().catch(showFormError) });
      state.formReady = true;
      setFormReady(true);
      refreshSpeed(state.health);
      const canAdmin = !state.session?.auth_required || Boolean(state.session?.user?.admin);
      const onModel = (model, options) => { setModel(model, options); refreshSpeed(state.health); };
      initModels({ canAdmin, onChange: onModel }).catch(console.error); // the form works without the list
      resumeJobs();
      loadFirst();
    })
    .catch((error) => {
      if (!(error instanceof ApiError)) console.error(error); // a bug, not the server: tests must see it
      showFormError(error);
    })
    .finally(() => { state.loading = null; });
}

async function start() {
  const session = await getSession();
  state.session = session;
  initAccount(session);
  if (session?.auth_required && !session.user) {
    showLogin(); // nothing else loads before the login: every other route needs it
    return;
  }
  initActions({ keepClear: [$("mask-canvas")] }); // a finger on the mask never lands on Generate
  initJobs({ onFinished, onOpen: openViewer });
  initGallery({ onOpen: openViewer });
  initViewer({ onReuse, onUseImage: useAsInput, onDeleted });
  startHealth({ onHealth, onOffline: showOffline });
  loadForm();
}

start().catch(console.error);
