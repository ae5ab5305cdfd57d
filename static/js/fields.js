// The form's field controls, driven by the server's field descriptions (GET /modes): each control's id
// is the field's name; its limits and default come from the mode. Fields every mode has keep one value;
// the others (strength, mask blur, ...) keep one value per mode, so one mode's value never leaks into another.
import { $, h } from "./dom.js";
import { allModes, isShared, takes } from "./modes.js";

const OWN_CONTROLS = new Set(["width", "height"]); // size.js reads and checks these
const state = { perMode: {} }; // mode id -> { field: value } for the fields not every mode has

/** The control for a field, or null when the page has none (the server's default then applies). */
export function control(name) {
  const el = $(name);
  return el && el.closest("#generate-form") && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName) ? el : null;
}

/** Names of the fields a mode takes that have a control here (size excluded). */
export function formFields(mode) {
  return Object.keys(mode.fields).filter((name) => control(name) && !OWN_CONTROLS.has(name));
}

/** Keep a range's <output> in step with it. */
export function syncOutput(name) {
  const out = $(`${name}-out`);
  if (out && $(name)) out.value = $(name).value;
}

export function setValue(name, value) {
  const el = control(name);
  if (!el || value === undefined || value === null) return;
  if (el.type === "checkbox") el.checked = Boolean(value);
  else el.value = String(value);
  syncOutput(name);
}

export function readValue(name) {
  const el = control(name);
  if (!el) return undefined;
  return el.type === "checkbox" ? el.checked : el.value;
}

function numberOptions(select, min, max) {
  const current = select.value;
  select.replaceChildren(...Array.from({ length: max - min + 1 }, (_, i) => h("option", {}, String(min + i))));
  select.value = Math.min(max, Math.max(min, Number(current) || min));
}

/** Put a field's limits on its control (the page's own attributes stay where the server gives none). */
function applySpec(name, spec) {
  const el = control(name);
  if (!el || !spec) return;
  if (el.tagName === "SELECT" && spec.type === "integer" && spec.maximum !== undefined) {
    numberOptions(el, spec.minimum ?? 1, spec.maximum);
  } else if (el.tagName === "SELECT" && spec.enum) {
    for (const option of [...el.options]) option.hidden = !spec.enum.includes(option.value);
  }
  if (el.tagName === "INPUT" && spec.minimum !== undefined) el.min = String(spec.minimum);
  if (el.tagName === "INPUT" && spec.maximum !== undefined) el.max = String(spec.maximum);
  if (spec.multipleOf) el.dataset.multipleOf = String(spec.multipleOf);
  if (spec.maxLength) el.dataset.maxLength = String(spec.maxLength);
}

/** Limits and defaults of the fields every mode shares; the per-mode ones follow `showMode`. */
export function applySharedSpecs() {
  const first = allModes()[0];
  if (!first) return;
  for (const [name, spec] of Object.entries(first.fields)) {
    if (!isShared(name) || OWN_CONTROLS.has(name)) continue;
    applySpec(name, spec);
    if (spec.default !== undefined) setValue(name, spec.default);
  }
}

/** Remember the values of a mode's own fields before leaving it. */
export function stash(mode) {
  if (!mode) return;
  const own = state.perMode[mode.id] ?? (state.perMode[mode.id] = {});
  for (const name of formFields(mode)) if (!isShared(name)) own[name] = readValue(name);
}

/** Show what a mode takes, with its own limits and its own remembered (or default) values. */
export function showMode(mode) {
  for (const node of document.querySelectorAll("#generate-form [data-field]")) {
    node.hidden = !node.dataset.field.split(" ").some((name) => takes(mode, name));
  }
  for (const node of document.querySelectorAll("#generate-form [data-inputs]")) node.hidden = !mode.inputs.length;
  const own = state.perMode[mode.id] ?? {};
  for (const name of formFields(mode)) {
    if (isShared(name)) continue;
    const spec = mode.fields[name];
    applySpec(name, spec);
    setValue(name, own[name] ?? spec.default);
  }
}

/** Set a mode's own field now or, for a mode not shown, the next time it is (Reuse settings). */
function setModeValue(mode, name, value) {
  (state.perMode[mode.id] ?? (state.perMode[mode.id] = {}))[name] = value;
}

/** Values to keep across reloads: the shared fields, and each mode's own. */
export function savedValues(current) {
  stash(current);
  const shared = {};
  for (const mode of allModes()) {
    for (const name of formFields(mode)) if (isShared(name)) shared[name] = readValue(name);
  }
  return { shared, perMode: state.perMode };
}

/** Restore saved values, keeping only those this server accepts (its limits may have changed). */
export function restoreValues(saved, modes) {
  for (const mode of modes) {
    for (const name of formFields(mode)) {
      const spec = mode.fields[name];
      const value = isShared(name) ? saved.shared?.[name] : saved.perMode?.[mode.id]?.[name];
      if (value === undefined || value === null || problem(spec, value, control(name))) continue;
      if (isShared(name)) setValue(name, value); else setModeValue(mode, name, value);
    }
  }
}

function limitsOf(spec, el) {
  const number = (value) => (value === "" || value === undefined || value === null ? undefined : Number(value));
  return { min: number(spec?.minimum ?? el?.min), max: number(spec?.maximum ?? el?.max),
    step: number(spec?.multipleOf ?? el?.dataset.multipleOf) };
}

/** What is wrong with a value for a field (as the server would judge it), or null. */
export function problem(spec, value, el = null) {
  const type = spec?.type ?? (el?.type === "number" || el?.type === "range" ? "number" : "string");
  if (type === "integer" || type === "number") {
    const number = value === "" ? NaN : Number(value);
    const { min, max, step } = limitsOf(spec, el);
    const range = min !== undefined && max !== undefined ? ` from ${min} to ${max}` : "";
    if (!Number.isFinite(number)) return `enter a number${range}`;
    if (type === "integer" && !Number.isInteger(number)) return `a whole number${range}`;
    if (step && number % step) return `must be a multiple of ${step}${range}`;
    if ((min !== undefined && number < min) || (max !== undefined && number > max)) {
      return step ? `must be a multiple of ${step}${range}` : `must be${range}`;
    }
    return null;
  }
  const max = Number(spec?.maxLength ?? el?.dataset.maxLength) || 0;
  if (typeof value === "string" && max && value.length > max) {
    return `at most ${max} characters on this server (now ${value.length})`;
  }
  if (spec?.enum && value !== "" && !spec.enum.includes(value)) return `one of ${spec.enum.join(", ")}`;
  return null;
}

/** A control's value in the type the server expects. */
export function typed(spec, value) {
  if (spec?.type === "integer" || spec?.type === "number") return Number(value);
  return typeof value === "string" ? value.trim() : value;
}
