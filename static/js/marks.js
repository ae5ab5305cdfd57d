// Field error marks: the message beside the field it is about, one per field, cleared as it is fixed.
import { $, fieldLabel, h } from "./dom.js";

const form = () => $("generate-form");

function controlFor(key) {
  return $(key) || form().querySelector(`.dropzone[data-input="${key}"] button`) || (key === "mask" ? $("mask-fill") : null);
}

/** Mark one field with a message; the field's own error slot (an image input's) is reused, never doubled. */
export function markField(key, message) {
  const control = controlFor(key);
  if (!control) return null;
  control.setAttribute("aria-invalid", "true");
  const text = `${fieldLabel(key)}: ${message}`;
  let note = $(`${key}-error`);
  if (!note && message) {
    note = h("p", { class: "field-error", id: `${key}-error` });
    control.closest(".mask-editor, .field, .range-field, fieldset")?.append(note);
  }
  if (note && message) {
    note.textContent = text;
    note.hidden = false;
    control.setAttribute("aria-errormessage", note.id);
  }
  return control;
}

/** Mark the fields an error names; return the first one to focus. */
export function markInvalid(problems, { beforeMark = () => {} } = {}) {
  clearInvalid();
  let first = null;
  for (const { field, message } of problems) {
    const key = String(field ?? "").split(".").pop();
    beforeMark(key);
    const marked = markField(key, message);
    first = first || marked;
  }
  return first;
}

function unmark(control, note) {
  control?.removeAttribute("aria-invalid");
  control?.removeAttribute("aria-errormessage");
  if (!note) return;
  if (note.dataset.slot !== undefined) { note.hidden = true; note.textContent = ""; } else note.remove();
}

/** The user is fixing a field: drop its mark. */
export function clearField(key) {
  unmark(controlFor(key), $(`${key}-error`));
}

function clearInvalid() {
  for (const node of form().querySelectorAll("[aria-invalid]")) unmark(node, null);
  for (const note of form().querySelectorAll(".field-error")) unmark(null, note);
}
