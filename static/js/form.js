// The generate form: built from the server's modes, it switches modes, keeps its settings, checks what
// the server would refuse, and turns into a request. Fields, size, seed and storage have their own modules.
import { $, capitalize, fieldLabel } from "./dom.js";
import * as fields from "./fields.js";
import { createImageInput } from "./inputs.js";
import { clearField, markInvalid as mark } from "./marks.js";
import { createMaskEditor } from "./mask.js";
import { mainInput } from "./modes.js";
import { initSamplers, setSamplers } from "./samplers.js";
import { initSeed, isLocked, keepSeed, setLocked } from "./seed.js";
import { applySpeed, initSpeed, speedPayload } from "./speed.js";
import {
  checkPreset, checkedPreset, chosenSize, initSize, setSizeSpec, showSize, sizeProblems, updateSizeHint,
} from "./size.js";
import { loadSettings, saveSettings } from "./store.js";
import { renderTabs, selectTab, setBlocked } from "./tabs.js";

const state = { modes: [], mode: null, inputs: {}, mask: null, imageNote: "", ready: false, model: null,
  blocked: new Map() };

const form = () => $("generate-form");
const inputImage = () => state.inputs[mainInput(state.mode)]?.value ?? null;

export class FormError extends Error {
  constructor(problems) {
    super("Please check the form.");
    this.problems = problems;
  }
}

// ---- modes -------------------------------------------------------------------------------------

/** Show one mode: its tab, its fields with their own values and limits, its image inputs. */
function setMode(id, { focus = false } = {}) {
  const next = state.modes.find((mode) => mode.id === id) ?? state.modes[0];
  if (state.mode && state.mode !== next) fields.stash(state.mode);
  state.mode = next;
  selectTab(next.id, { focus });
  fields.showMode(next);
  $("prompt-title").textContent = next.required.includes("prompt") ? "Prompt" : "Prompt (optional)";
  if (!next.inputs.length && checkedPreset() === "input") {
    checkPreset(`${next.fields.width.default}x${next.fields.height.default}`);
  }
  updateSizeHint(inputImage());
  updateModeNote();
  save();
}

/** When the model cannot take image inputs, say so in the modes that need them. */
export function setImageModes(available, reason) {
  state.imageNote = available ? "" : reason;
  updateModeNote();
}

/** The chosen model: modes it cannot run are disabled with the reason; with applyDefaults its defaults fill the form. */
export function setModel(model, { applyDefaults = false } = {}) {
  state.model = model;
  state.blocked = new Map(state.modes.filter((mode) => model && !model.modes.includes(mode.id)).map((mode) =>
    [mode.id, `${model.name} (${model.family_name ?? model.family}) cannot run ${mode.label.toLowerCase()}`]));
  setBlocked(state.blocked);
  if (applyDefaults && model?.defaults) {
    const d = model.defaults;
    fields.setValue("num_inference_steps", d.steps);
    fields.setValue("guidance_scale", d.guidance);
    if ($("sampler")?.querySelector(`option[value="${d.sampler}"]`)) fields.setValue("sampler", d.sampler);
    if (!sizeProblems({ width: d.size, height: d.size }).length) showSize(d.size, d.size);
  }
  if (state.blocked.has(state.mode?.id)) {
    const runnable = state.modes.find((mode) => !state.blocked.has(mode.id));
    if (runnable) setMode(runnable.id);
  }
  updateModeNote();
  save();
}

function updateModeNote() {
  const blocked = state.blocked.get(state.mode?.id);
  const note = blocked ?? (state.mode?.available === false ? state.mode.reason
    : state.mode?.inputs.length ? state.imageNote : "");
  $("mode-note").textContent = capitalize(note);
  $("mode-note").hidden = !note;
}

// ---- saved settings ------------------------------------------------------------------------------

function save() {
  if (!state.ready) return;
  saveSettings({
    mode: state.mode.id, ...fields.savedValues(state.mode),
    size: { preset: checkedPreset(), width: $("width").value, height: $("height").value },
    seedLocked: isLocked(), advancedOpen: $("advanced").open,
    maskTool: form().querySelector("input[name=mask-tool]:checked")?.value, brush: $("brush_size").value,
  });
}

function restore(saved) {
  if (!saved) return;
  fields.restoreValues(saved, state.modes);
  const size = saved.size ?? {};
  if (size.preset === "input") checkPreset("input");
  else if (size.width && !sizeProblems(size).length) showSize(size.width, size.height);
  if (saved.maskTool === "erase") $("tool-erase").checked = true;
  if (saved.brush) fields.setValue("brush_size", saved.brush);
  $("advanced").open = saved.advancedOpen !== false;
  setLocked(Boolean(saved.seedLocked) && Number($("seed").value) >= 0);
}

// ---- image inputs --------------------------------------------------------------------------------

function initImages() {
  for (const zone of form().querySelectorAll(".dropzone")) {
    const name = zone.dataset.input;
    state.inputs[name] = createImageInput(zone, { name, label: fieldLabel(name), onChange: (value) => onImageChange(name, value) });
  }
  state.mask = createMaskEditor({ root: $("mask-editor"), image: $("mask-image"), canvas: $("mask-canvas"),
    brush: $("brush_size"), brushOut: $("brush_size-out"), onChange: () => clearField("mask") });
  $("mask-fill").addEventListener("click", () => state.mask.fill());
  $("mask-invert").addEventListener("click", () => state.mask.invert());
  $("mask-clear").addEventListener("click", () => state.mask.clear());
}

function onImageChange(name, value) {
  if (name === "image") state.mask.setImage(value);
  if (value && name === mainInput(state.mode) && checkedPreset() !== "custom") checkPreset("input");
  clearField(name);
  updateSizeHint(inputImage());
}

/** Put a generated image into a mode's main input ("use as init image", "inpaint this"). */
export async function useImage(url, target) {
  setMode(target);
  await state.inputs[mainInput(state.mode)].setFromUrl(url);
}

// ---- checks and the request ------------------------------------------------------------------------

function imageProblems(mode) {
  const problems = [];
  for (const name of mode.inputs) {
    if (name === "mask") {
      if (state.inputs.image?.value && state.mask.isEmpty()) {
        problems.push({ field: "mask", message: "paint the area to repaint (or press Fill)" });
      }
    } else if (state.inputs[name] && !state.inputs[name].value) {
      problems.push({ field: name, message: state.inputs[name].error ?? "choose or drop an image" });
    }
  }
  return problems;
}

/** Everything the server would refuse, found before anything is sent. */
function problemsOf(mode, size) {
  const problems = [];
  if (mode.required.includes("prompt") && !$("prompt").value.trim()) {
    problems.push({ field: "prompt", message: "describe what to draw" });
  }
  problems.push(...imageProblems(mode), ...sizeProblems(size));
  for (const name of fields.formFields(mode)) {
    const message = fields.problem(mode.fields[name], fields.readValue(name), fields.control(name));
    if (message && !problems.some((p) => p.field === name)) problems.push({ field: name, message });
  }
  return problems;
}

function payload(mode, size) {
  const body = {};
  for (const name of fields.formFields(mode)) body[name] = fields.typed(mode.fields[name], fields.readValue(name));
  if (size) Object.assign(body, { width: Number(size.width), height: Number(size.height) });
  if (state.model) body.model = state.model.id;
  for (const name of mode.inputs) {
    body[name] = name === "mask" ? state.mask.toDataUrl() : state.inputs[name].value.dataUrl;
  }
  return body;
}

/** {mode, path, payload} for the API, or a FormError listing what to fix. */
export function buildRequest() {
  const mode = state.mode;
  const size = chosenSize(inputImage());
  const problems = problemsOf(mode, size);
  if (state.blocked.has(mode.id)) problems.unshift({ field: "model", message: state.blocked.get(mode.id) });
  if (problems.length) throw new FormError(problems);
  return { mode: mode.id, path: mode.path, payload: { ...payload(mode, size), ...speedPayload() } };
}

/** Mark the fields an error names, with the message beside each; return the first one to focus. */
export function markInvalid(problems) {
  return mark(problems, { beforeMark: (key) => { if (key === "width" || key === "height") checkPreset("custom"); } });
}

// ---- reuse settings -----------------------------------------------------------------------------------

/** Fill the form from a finished job: its mode and only that mode's fields, its size, and a kept seed
 * (the viewed image's, so that image comes out first again). Values this server would refuse are skipped. */
export function applyJob(job, imageSeed) {
  const params = { ...(job.request ?? {}), ...(job.result?.parameters ?? {}) };
  params.num_inference_steps = params.steps ?? params.num_inference_steps;
  setMode(job.type);
  const mode = state.mode;
  for (const name of fields.formFields(mode)) {
    const value = params[name];
    if (name === "seed" || value === undefined || value === null) continue;
    if (!fields.problem(mode.fields[name], value, fields.control(name))) fields.setValue(name, value);
  }
  if (params.width && !sizeProblems({ width: params.width, height: params.height }).length) {
    showSize(params.width, params.height);
  }
  applySpeed(params);
  const seed = imageSeed ?? job.result?.seed ?? params.seed;
  if (Number.isInteger(seed) && seed >= 0) keepSeed(seed);
  save();
}

// ---- set-up ---------------------------------------------------------------------------------------------

/** True when the page has a control for every image the mode takes (a newer server may add a mode it cannot fill). */
const canFill = (mode) => mode.inputs.every((name) => name === "mask" || form().querySelector(`.dropzone[data-input="${name}"]`));

/** Build the form from the server's modes and samplers, restore the saved settings, and wire it. */
export function initForm({ modes: listed, samplers, onSubmit }) {
  state.modes = listed.filter(canFill);
  const first = state.modes[0];
  renderTabs(state.modes, (id, options) => setMode(id, options));
  fields.applySharedSpecs();
  setSizeSpec(first.fields.width, first.fields.height);
  initSize({ onChange: () => { updateSizeHint(inputImage()); save(); } });
  initSeed({ onChange: save });
  initSamplers();
  initSpeed();
  initImages();
  const saved = loadSettings();
  const sampler = first.fields.sampler?.default;
  setSamplers(samplers?.samplers ?? (first.fields.sampler?.enum ?? []).map((name) => ({ name, a1111_name: name })),
    saved?.shared?.sampler ?? sampler, samplers?.default ?? sampler);
  restore(saved);
  for (const range of form().querySelectorAll("input[type=range]")) {
    range.addEventListener("input", () => fields.syncOutput(range.id));
  }
  form().addEventListener("input", (event) => { clearField(event.target.id); save(); });
  form().addEventListener("change", save);
  $("advanced").addEventListener("toggle", save);
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form().requestSubmit(); }
  });
  form().addEventListener("submit", (event) => { event.preventDefault(); onSubmit(); });
  state.ready = true;
  setMode(saved?.mode ?? first.id);
  form().dataset.ready = "true";
}
