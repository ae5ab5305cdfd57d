// The generate form: mode tabs, fields, size presets, seed, limits, saved settings and the payload.
import { $, announce, fieldLabel, h } from "./dom.js";
import { createImageInput } from "./inputs.js";
import { createMaskEditor } from "./mask.js";

const STORE_KEY = "sdedge.settings.v1";
export const MODES = ["text2img", "img2img", "inpaint", "style-transfer"];
export const MODE_LABELS = { text2img: "Text to image", img2img: "Image to image", inpaint: "Inpainting",
  "style-transfer": "Style transfer" };
const MAIN_INPUT = { img2img: "init_image", inpaint: "image", "style-transfer": "content_image" };
const RANGES = ["num_inference_steps", "guidance_scale", "strength", "mask_blur", "style_strength", "content_strength", "brush_size"];
const SAVED = ["prompt", "negative_prompt", "width", "height", "num_inference_steps", "guidance_scale", "sampler",
  "seed", "num_images", "strength", "mask_blur", "style_strength", "content_strength", "resize_mode", "brush_size"];
const MAX_SEED = 4294967295;
const NATIVE_SIDE = 512;

let limits = { min_size: 64, max_width: 1024, max_height: 1024, max_steps: 100, max_images: 4 };
let mode = "text2img";
let lastSeed = null;
const inputs = {};
let mask = null;

const form = () => $("generate-form");

// ---- mode tabs -----------------------------------------------------------------------------

function tabs() { return [...document.querySelectorAll("[role=tab]")]; }

export function currentMode() { return mode; }

export function setMode(next, { focus = false } = {}) {
  mode = MODES.includes(next) ? next : "text2img";
  for (const tab of tabs()) {
    const selected = tab.dataset.mode === mode;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected && focus) tab.focus();
  }
  form().setAttribute("aria-labelledby", `tab-${mode}`);
  for (const node of form().querySelectorAll("[data-modes]")) {
    node.hidden = !node.dataset.modes.split(" ").includes(mode);
  }
  $("prompt-title").textContent = mode === "style-transfer" ? "Prompt (optional)" : "Prompt";
  if (mode === "text2img" && checkedPreset() === "input") checkPreset("512x512");
  updateSizeHint();
  updateModeNote();
  save();
}

function onTabKey(event) {
  const list = tabs();
  const index = list.indexOf(event.target);
  const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: list.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const target = list[(moves[event.key] + list.length) % list.length];
  setMode(target.dataset.mode, { focus: true });
}

function initTabs() {
  for (const tab of tabs()) {
    tab.addEventListener("click", () => setMode(tab.dataset.mode));
    tab.addEventListener("keydown", onTabKey);
  }
}

// ---- ranges, sizes, limits -----------------------------------------------------------------

function syncOutput(id) {
  const out = $(`${id}-out`);
  if (out) out.value = $(id).value;
}

function checkedPreset() { return form().querySelector("input[name=size_preset]:checked")?.value ?? "512x512"; }

function checkPreset(value) {
  const radio = form().querySelector(`input[name=size_preset][value="${value}"]`);
  if (radio) radio.checked = true;
  onPresetChange();
}

function onPresetChange() {
  const preset = checkedPreset();
  $("custom-size").hidden = preset !== "custom";
  if (/^\d+x\d+$/.test(preset)) {
    const [w, h] = preset.split("x");
    $("width").value = w;
    $("height").value = h;
  }
  updateSizeHint();
}

function snap(value, max) {
  const number = Math.round(Number(value) / 8) * 8;
  return Math.min(max, Math.max(limits.min_size, Number.isFinite(number) ? number : NATIVE_SIDE));
}

function sizeFromInput() {
  const source = inputs[MAIN_INPUT[mode]]?.value;
  if (!source) return null;
  const scale = NATIVE_SIDE / Math.max(source.width, source.height);
  return { width: snap(source.width * scale, limits.max_width), height: snap(source.height * scale, limits.max_height) };
}

function chosenSize() {
  if (checkedPreset() === "input" && MAIN_INPUT[mode]) return sizeFromInput();
  return { width: Number($("width").value), height: Number($("height").value) };
}

function updateSizeHint() {
  const base = `Multiples of 8 from ${limits.min_size} to ${limits.max_width} × ${limits.max_height}.`;
  const size = checkedPreset() === "input" ? sizeFromInput() : null;
  $("size-hint").textContent = checkedPreset() === "input"
    ? (size ? `Output ${size.width} × ${size.height}, the input's shape.` : "Output follows the input image's shape.")
    : base;
}

/** Apply the server's limits (from /health when it reports them) to the controls. */
export function setLimits(next) {
  limits = { ...limits, ...(next || {}) };
  for (const [id, max] of [["width", limits.max_width], ["height", limits.max_height]]) {
    $(id).min = limits.min_size;
    $(id).max = max;
  }
  $("num_inference_steps").max = limits.max_steps;
  const current = $("num_images").value;
  $("num_images").replaceChildren(...Array.from({ length: limits.max_images }, (_, i) => h("option", {}, String(i + 1))));
  $("num_images").value = Math.min(Number(current) || 1, limits.max_images);
  syncOutput("num_inference_steps");
  updateSizeHint();
}

// ---- seed ------------------------------------------------------------------------------------

function setLocked(locked) {
  $("seed-lock").setAttribute("aria-pressed", String(locked));
  $("seed-lock").classList.toggle("on", locked);
  if (!locked) $("seed").value = "-1";
  else if (Number($("seed").value) < 0) $("seed").value = String(lastSeed ?? randomSeed());
  $("seed-hint").textContent = locked ? "Kept for every job until you unlock it." : "-1 picks a new seed for every job.";
  save();
}

function randomSeed() {
  const buffer = new Uint32Array(1);
  crypto.getRandomValues(buffer);
  return buffer[0];
}

function initSeed() {
  $("seed-dice").addEventListener("click", () => {
    $("seed").value = String(randomSeed());
    setLocked(true);
    announce(`New seed ${$("seed").value}`);
  });
  $("seed-lock").addEventListener("click", () => setLocked($("seed-lock").getAttribute("aria-pressed") !== "true"));
  $("seed").addEventListener("change", () => setLocked(Number($("seed").value) >= 0));
}

/** Remember the seed of the latest finished job: locking then keeps that one. */
export function noteSeed(seed) {
  if (Number.isInteger(seed)) lastSeed = seed;
}

// ---- saved settings --------------------------------------------------------------------------

function save() {
  const values = Object.fromEntries(SAVED.map((id) => [id, $(id).value]));
  values.mode = mode;
  values.size_preset = checkedPreset();
  values.seed_locked = $("seed-lock").getAttribute("aria-pressed") === "true";
  values.advanced_open = $("advanced").open;
  values.mask_tool = form().querySelector("input[name=mask-tool]:checked")?.value;
  try { localStorage.setItem(STORE_KEY, JSON.stringify(values)); } catch { /* private mode: not saved */ }
}

function restore() {
  let values = null;
  try { values = JSON.parse(localStorage.getItem(STORE_KEY) || "null"); } catch { values = null; }
  if (!values || typeof values !== "object") return;
  for (const id of SAVED) if (values[id] !== undefined && values[id] !== null) $(id).value = values[id];
  if (values.size_preset) checkPreset(values.size_preset);
  if (values.mask_tool === "erase") $("tool-erase").checked = true;
  $("advanced").open = values.advanced_open !== false;
  setLocked(Boolean(values.seed_locked) && Number($("seed").value) >= 0);
  RANGES.forEach(syncOutput);
  setMode(values.mode);
}

// ---- image inputs ----------------------------------------------------------------------------

function initImages() {
  for (const zone of form().querySelectorAll(".dropzone")) {
    const name = zone.dataset.input;
    const label = fieldLabel(name);
    inputs[name] = createImageInput(zone, { label, onChange: (value) => onImageChange(name, value) });
  }
  mask = createMaskEditor({ root: $("mask-editor"), image: $("mask-image"), canvas: $("mask-canvas"),
    brush: $("brush_size"), brushOut: $("brush_size-out"), onChange: clearInvalid });
  $("mask-fill").addEventListener("click", () => mask.fill());
  $("mask-invert").addEventListener("click", () => mask.invert());
  $("mask-clear").addEventListener("click", () => mask.clear());
}

function onImageChange(name, value) {
  if (name === "image") mask.setImage(value);
  if (value && name === MAIN_INPUT[mode] && checkedPreset() !== "custom") checkPreset("input");
  clearInvalid();
  updateSizeHint();
}

/** Put a generated image into a mode's main input ("use as init image", "inpaint this"). */
export async function useImage(url, target) {
  setMode(target);
  await inputs[MAIN_INPUT[target]].setFromUrl(url);
}

// ---- validation and payload ------------------------------------------------------------------

export class FormError extends Error {
  constructor(problems) {
    super("Please check the form.");
    this.problems = problems;
  }
}

function problemsOf(size) {
  const problems = [];
  const needsPrompt = mode !== "style-transfer";
  if (needsPrompt && !$("prompt").value.trim()) problems.push({ field: "prompt", message: "describe what to draw" });
  for (const name of Object.keys(inputs)) {
    const zone = inputs[name];
    if (isVisible(name) && !zone.value) problems.push({ field: name, message: "choose or drop an image" });
  }
  if (mode === "inpaint" && inputs.image.value && mask.isEmpty()) {
    problems.push({ field: "mask", message: "paint the area to repaint (or press Fill)" });
  }
  if (size) {
    for (const [field, max] of [["width", limits.max_width], ["height", limits.max_height]]) {
      const value = size[field];
      if (!Number.isInteger(value) || value % 8 || value < limits.min_size || value > max) {
        problems.push({ field, message: `must be a multiple of 8 from ${limits.min_size} to ${max}` });
      }
    }
  }
  const seed = Number($("seed").value);
  if (!Number.isInteger(seed) || seed < -1 || seed > MAX_SEED) {
    problems.push({ field: "seed", message: `a whole number from -1 to ${MAX_SEED}` });
  }
  return problems;
}

function isVisible(inputName) {
  return !form().querySelector(`.dropzone[data-input="${inputName}"]`).closest("[data-modes]").hidden;
}

function common(size) {
  const payload = {
    prompt: $("prompt").value.trim(),
    negative_prompt: $("negative_prompt").value.trim(),
    num_inference_steps: Number($("num_inference_steps").value),
    guidance_scale: Number($("guidance_scale").value),
    sampler: $("sampler").value,
    seed: Number($("seed").value),
    num_images: Number($("num_images").value),
  };
  if (size) Object.assign(payload, size);
  return payload;
}

const MODE_FIELDS = {
  text2img: () => ({}),
  img2img: () => ({ init_image: inputs.init_image.value.dataUrl, strength: Number($("strength").value),
    resize_mode: $("resize_mode").value }),
  inpaint: () => ({ image: inputs.image.value.dataUrl, mask: mask.toDataUrl(), strength: Number($("strength").value),
    mask_blur: Number($("mask_blur").value), resize_mode: $("resize_mode").value }),
  "style-transfer": () => ({ content_image: inputs.content_image.value.dataUrl,
    style_image: inputs.style_image.value.dataUrl, style_strength: Number($("style_strength").value),
    content_strength: Number($("content_strength").value), resize_mode: $("resize_mode").value }),
};

/** {mode, payload} for the API, or a FormError listing what to fix. */
export function buildRequest() {
  const size = chosenSize();
  const problems = problemsOf(size);
  if (problems.length) throw new FormError(problems);
  return { mode, payload: { ...common(size), ...MODE_FIELDS[mode]() } };
}

function controlFor(key) {
  return $(key) || form().querySelector(`.dropzone[data-input="${key}"] button`) || (key === "mask" ? $("mask-fill") : null);
}

/** Mark the fields an error names, with the message beside each; return the first one to focus. */
export function markInvalid(problems) {
  clearInvalid();
  let first = null;
  for (const { field, message } of problems) {
    const key = String(field ?? "").split(".").pop();
    const control = controlFor(key);
    if (!control) continue;
    if (key === "width" || key === "height") checkPreset("custom");
    control.setAttribute("aria-invalid", "true");
    const container = control.closest(".mask-editor, .field, .range-field, fieldset");
    if (message && container) {
      const note = h("p", { class: "field-error", id: `${key}-error` }, `${fieldLabel(key)}: ${message}`);
      container.append(note);
      control.setAttribute("aria-errormessage", note.id);
    }
    first = first || control;
  }
  return first;
}

/** The user is fixing a field: drop its error mark. */
function clearField(control) {
  if (!control?.id || !control.hasAttribute?.("aria-invalid")) return;
  control.removeAttribute("aria-invalid");
  control.removeAttribute("aria-errormessage");
  $(`${control.id}-error`)?.remove();
}

function clearInvalid() {
  for (const node of form().querySelectorAll("[aria-invalid]")) {
    node.removeAttribute("aria-invalid");
    node.removeAttribute("aria-errormessage");
  }
  for (const note of form().querySelectorAll(".field-error")) note.remove();
}

// ---- reuse settings --------------------------------------------------------------------------

function setField(id, value) {
  if (value === undefined || value === null || !$(id)) return;
  $(id).value = value;
  syncOutput(id);
}

/** Fill the form from a finished job: its mode, prompt, size, sampling and a seed (locked):
 * the seed of the image being viewed, so that image comes out first again. */
export function applyJob(job, imageSeed) {
  const params = job.result?.parameters ?? job.request ?? {};
  setMode(MODES.includes(job.type) ? job.type : "text2img");
  for (const id of ["prompt", "negative_prompt", "guidance_scale", "sampler", "num_images", "strength",
    "style_strength", "content_strength", "mask_blur", "resize_mode"]) setField(id, params[id] ?? job.request?.[id]);
  setField("num_inference_steps", params.steps ?? params.num_inference_steps);
  const size = `${params.width}x${params.height}`;
  const preset = form().querySelector(`input[name=size_preset][value="${size}"]`) ? size : "custom";
  checkPreset(preset);
  setField("width", params.width);
  setField("height", params.height);
  const seed = imageSeed ?? job.result?.seed ?? params.seed;
  if (Number.isInteger(seed) && seed >= 0) { $("seed").value = String(seed); setLocked(true); }
  save();
}

// ---- set-up ----------------------------------------------------------------------------------

const samplerNames = new Map();
// Samplers that want their own steps and guidance (the server uses the same for requests without them).
const SAMPLER_DEFAULTS = { lcm: { num_inference_steps: 4, guidance_scale: 1 } };

function applySamplerDefaults() {
  const defaults = SAMPLER_DEFAULTS[$("sampler").value];
  if (!defaults) return;
  for (const [id, value] of Object.entries(defaults)) setField(id, value);
  announce(`Steps set to ${defaults.num_inference_steps} and guidance to ${defaults.guidance_scale} for this sampler`);
}

/** The sampler's A1111 name ("Euler a") for an API name ("euler_a"). */
export function samplerLabel(name) {
  return samplerNames.get(name) ?? name;
}

export function setSamplers(samplers, fallback) {
  samplers.forEach((s) => samplerNames.set(s.name, s.a1111_name));
  const select = $("sampler");
  const current = select.value;
  select.replaceChildren(...samplers.map((s) => h("option", { value: s.name, title: s.note || null },
    s.note ? `${s.a1111_name} (${s.note})` : s.a1111_name)));
  select.value = samplers.some((s) => s.name === current) ? current : fallback;
  restoreSaved("sampler");
}

function restoreSaved(id) {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
    if (saved && saved[id] && [...$(id).options].some((o) => o.value === saved[id])) $(id).value = saved[id];
  } catch { /* ignore */ }
}

let imageModeNote = "";

/** When the model cannot take image inputs, say so in the image modes. */
export function setImageModes(available, reason) {
  imageModeNote = available ? "" : reason;
  updateModeNote();
}

function updateModeNote() {
  $("mode-note").textContent = imageModeNote;
  $("mode-note").hidden = !imageModeNote || mode === "text2img";
}

export function initForm({ onSubmit }) {
  initTabs();
  initSeed();
  initImages();
  for (const id of RANGES) $(id).addEventListener("input", () => syncOutput(id));
  $("sampler").addEventListener("change", applySamplerDefaults);
  for (const radio of form().querySelectorAll("input[name=size_preset]")) radio.addEventListener("change", onPresetChange);
  for (const id of ["width", "height"]) {
    $(id).addEventListener("change", () => { $(id).value = snap($(id).value, limits[`max_${id}`]); save(); });
  }
  form().addEventListener("input", (event) => { clearField(event.target); save(); });
  form().addEventListener("change", save);
  $("advanced").addEventListener("toggle", save);
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form().requestSubmit(); }
  });
  form().addEventListener("submit", (event) => { event.preventDefault(); onSubmit(); });
  restore();
  setMode(mode);
}
