// The generation modes as this server describes them (GET /modes): label, route, image inputs and
// fields with their types, defaults and limits. The page hard-codes none of it.
import { getModes } from "./api.js";

// Four tabs must fit a phone: short captions for the modes we know, the server's label for any other.
const TAB_CAPTIONS = { text2img: "Text", img2img: "Image", inpaint: "Inpaint", "style-transfer": "Style" };

const state = { list: [], byId: new Map(), first: null };

/** Fetch the modes once; every later call returns them. */
export async function loadModes() {
  if (state.list.length) return state.list;
  const body = await getModes();
  state.list = body.modes ?? [];
  state.byId = new Map(state.list.map((mode) => [mode.id, mode]));
  state.first = state.byId.get(body.default) ?? state.list[0] ?? null;
  return state.list;
}

export const allModes = () => state.list;

/** The mode with this id, or the server's default mode. */
export function modeById(id) {
  return state.byId.get(id) ?? state.first;
}

/** "Text to image" for "text2img"; the id itself when the modes are not known (yet). */
export function modeLabel(id) {
  return state.byId.get(id)?.label ?? id ?? "Job";
}

export function tabCaption(mode) {
  return TAB_CAPTIONS[mode.id] ?? mode.label;
}

/** True when the mode takes this field or image input. */
export function takes(mode, name) {
  return Boolean(mode && (name in mode.fields || mode.inputs.includes(name)));
}

/** A field every mode has (prompt, size, sampling) keeps one value for all; others keep one per mode. */
export function isShared(name) {
  return state.list.length > 0 && state.list.every((mode) => name in mode.fields);
}

/** The input whose shape "Like input" follows: the mode's first image input. */
export function mainInput(mode) {
  return mode?.inputs?.[0] ?? null;
}
