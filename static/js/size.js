// The output size: presets around the server's DEFAULT_SIZE, "Like input", or a custom width and height
// checked against the server's limits as they are typed (a refused value is shown, never silently changed).
import { $, h } from "./dom.js";
import { problem } from "./fields.js";
import { clearField, markField } from "./marks.js";

const SIDES = ["width", "height"];
const state = { spec: { width: null, height: null }, onChange: () => {} };

const form = () => $("generate-form");
const round8 = (value) => Math.round(value / 8) * 8;

export function checkedPreset() {
  return form().querySelector("input[name=size_preset]:checked")?.value ?? "custom";
}

/** Select a preset ("64x64", "input", "custom"); an unknown one becomes custom. */
export function checkPreset(value) {
  const radio = form().querySelector(`input[name=size_preset][value="${value}"]`) ?? $("size-custom");
  radio.checked = true;
  onPresetChange();
}

function onPresetChange() {
  const preset = checkedPreset();
  $("custom-size").hidden = preset !== "custom";
  if (/^\d+x\d+$/.test(preset)) {
    const [width, height] = preset.split("x");
    $("width").value = width;
    $("height").value = height;
    SIDES.forEach(clearField);
  }
  state.onChange();
}

function fits(width, height) {
  const { width: w, height: hs } = state.spec;
  return !problem(w, width) && !problem(hs, height);
}

/** The square at DEFAULT_SIZE and its 3:2 and 2:3 neighbours, where the limits allow them. */
function presetSizes() {
  const side = state.spec.width?.default ?? 512;
  const long = round8(side * 1.5);
  const sizes = [[side, side], [long, side], [side, long]].filter(([w, hh]) => fits(w, hh));
  return sizes.length ? sizes : [[state.spec.width.minimum, state.spec.height.minimum]];
}

function renderPresets() {
  const container = $("size-presets");
  for (const node of container.querySelectorAll("[data-preset]")) node.remove();
  const chips = presetSizes().flatMap(([w, hh]) => [
    h("input", { type: "radio", name: "size_preset", id: `size-${w}x${hh}`, value: `${w}x${hh}`, dataset: { preset: "" } }),
    h("label", { for: `size-${w}x${hh}`, dataset: { preset: "" } }, `${w} × ${hh}`),
  ]);
  $("size-custom").before(...chips);
  for (const radio of chips.filter((c) => c.tagName === "INPUT")) radio.addEventListener("change", onPresetChange);
}

/** Take the server's width and height fields (limits, default) and select the default size. */
export function setSizeSpec(widthSpec, heightSpec) {
  state.spec = { width: widthSpec, height: heightSpec };
  for (const side of SIDES) {
    const spec = state.spec[side];
    $(side).min = String(spec.minimum);
    $(side).max = String(spec.maximum);
    $(side).step = String(spec.multipleOf ?? 1);
  }
  renderPresets();
  const side = widthSpec.default;
  checkPreset(`${side}x${heightSpec.default}`);
}

/** The preset a size matches, else "custom" (with the size in the custom fields). */
export function showSize(width, height) {
  const preset = `${width}x${height}`;
  checkPreset(form().querySelector(`input[name=size_preset][value="${preset}"]`) ? preset : "custom");
  $("width").value = String(width);
  $("height").value = String(height);
}

/** Like the server: the input's aspect with its longer side at DEFAULT_SIZE, in multiples of 8, within limits. */
function sizeOfInput(image) {
  const { width: w, height: hs } = state.spec;
  const scale = w.default / Math.max(image.width, image.height);
  const side = (value, spec) => Math.max(spec.minimum, Math.min(spec.maximum, round8(value * scale)));
  return { width: side(image.width, w), height: side(image.height, hs) };
}

/** The size to request; "Like input" follows the given input image (null until one is chosen). */
export function chosenSize(inputImage) {
  if (checkedPreset() === "input") return inputImage ? sizeOfInput(inputImage) : null;
  return { width: $("width").value, height: $("height").value };
}

/** Width and height problems, as the server would report them. */
export function sizeProblems(size) {
  if (!size) return [];
  return SIDES.map((side) => ({ field: side, message: problem(state.spec[side], size[side], $(side)) }))
    .filter((p) => p.message);
}

/** The limits beside the fields, or what "Like input" will produce. */
export function updateSizeHint(inputImage) {
  const { width: w, height: hs } = state.spec;
  if (!w) return;
  const limits = `Width and height: multiples of ${w.multipleOf ?? 1} from ${w.minimum} to ${w.maximum}` +
    (hs.maximum !== w.maximum ? ` (height to ${hs.maximum})` : "") + ".";
  const size = checkedPreset() === "input" && inputImage ? sizeOfInput(inputImage) : null;
  $("size-hint").textContent = checkedPreset() !== "input" ? limits
    : size ? `Output ${size.width} × ${size.height}, the input's shape.` : "Output follows the input image's shape.";
}

/** Check a typed side when the user leaves it: the value stays as typed, with what is wrong beside it. */
function checkSide(side) {
  const message = problem(state.spec[side], $(side).value, $(side));
  if (message) markField(side, message); else clearField(side);
}

export function initSize({ onChange }) {
  state.onChange = onChange;
  for (const radio of form().querySelectorAll("input[name=size_preset]")) radio.addEventListener("change", onPresetChange);
  for (const side of SIDES) $(side).addEventListener("change", () => checkSide(side));
}
