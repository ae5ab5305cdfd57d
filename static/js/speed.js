// The speed switch (fast / balanced / quality from GET /presets), the decoder choice and the LoRA picker
// (GET /loras). A preset fills steps, guidance, sampler and decoder with the model's own values; changing
// one of them by hand leaves the preset (the server would let the explicit value win anyway).
import { request } from "./api.js";
import { $, announce, h } from "./dom.js";
import { setValue } from "./fields.js";
import { selectedModel } from "./models.js";

const state = { presets: new Map(), loras: [], chosen: new Map(), maxWeight: 4, loaded: false, loading: false,
  model: null };
const SAMPLING = ["num_inference_steps", "guidance_scale", "sampler", "decoder"];
const radios = () => [...document.querySelectorAll("input[name=preset]")];

function describe(preset) {
  const lora = preset.loras.length ? `, LoRA ${preset.loras.map((l) => l.name).join(", ")}` : "";
  return `${preset.steps} steps, guidance ${preset.guidance_scale}, ${preset.sampler}, ${preset.decoder} decoder${lora}`;
}

function applyPreset(name) {
  const preset = state.presets.get(name);
  if (!preset) return;
  if (!preset.available) {
    radios().forEach((radio) => { radio.checked = false; });
    $("preset-hint").textContent = `${titled(name)} is not available: ${preset.reason}`;
    return;
  }
  setValue("num_inference_steps", preset.steps);
  setValue("guidance_scale", preset.guidance_scale);
  if ([...$("sampler").options].some((o) => o.value === preset.sampler)) $("sampler").value = preset.sampler;
  if (!$(`decoder-${preset.decoder}`).disabled) $("decoder").value = preset.decoder;
  $("preset-hint").textContent = describe(preset);
  announce(`${name} preset: ${describe(preset)}`);
}

function leavePreset() {
  if (!radios().some((radio) => radio.checked)) return;
  radios().forEach((radio) => { radio.checked = false; });
  $("preset-hint").textContent = "Custom settings.";
}

const HINT = "Each sets steps, guidance, sampler and decoder for this model.";
const titled = (name) => `${name[0].toUpperCase()}${name.slice(1)}`;
const sentence = (text) => `${titled(text)}${/[.!?]$/.test(text) ? "" : "."}`;

function renderPresets() {
  for (const radio of radios()) {
    const preset = state.presets.get(radio.value);
    const label = document.querySelector(`label[for=${radio.id}]`);
    label.title = preset ? (preset.available ? describe(preset) : preset.reason) : "";
    label.classList.toggle("unavailable", Boolean(preset && !preset.available));
  }
  // A struck-out preset says why in the hint, not only in a tooltip that a phone never shows.
  const off = [...state.presets.values()].filter((p) => !p.available).map((p) => ` ${sentence(p.reason)}`);
  if (!radios().some((radio) => radio.checked)) $("preset-hint").textContent = HINT + off.join("");
}

// ---- LoRA ------------------------------------------------------------------------------------------

function renderLoras() {
  const list = $("lora-list");
  list.replaceChildren(...[...state.chosen].map(([name, weight], index) => {
    const id = `lora-weight-${index}`;
    const range = h("input", { type: "range", id, min: "-1", max: String(Math.min(2, state.maxWeight)), step: "0.05",
      value: String(weight), "data-lora": name,
      oninput: (event) => { state.chosen.set(name, Number(event.target.value)); $(`${id}-out`).value = event.target.value; } });
    return h("li", { class: "lora-row" },
      h("label", { for: id }, h("span", { class: "lora-name" }, name), " ", h("output", { id: `${id}-out`, for: id }, String(weight))),
      range,
      h("button", { type: "button", class: "secondary small", "aria-label": `Remove LoRA ${name}`,
        onclick: () => { state.chosen.delete(name); renderLoras(); announce(`LoRA ${name} removed`); } }, "Remove"));
  }));
  const select = $("loras");
  const usable = state.loras.filter((l) => l.fits_model !== false && !state.chosen.has(l.name));
  const unfit = state.loras.filter((l) => l.fits_model === false);
  select.replaceChildren(h("option", { value: "" }, state.loras.length ? "Add a LoRA…" : "No LoRAs in LORA_DIR"),
    ...usable.map((l) => h("option", { value: l.name }, l.alias !== l.name ? `${l.name} (${l.alias})` : l.name)),
    ...unfit.map((l) => h("option", { value: l.name, disabled: true }, `${l.name}: made for ${l.family}`)));
  select.disabled = !usable.length;
}

function addLora(name, weight = 1) {
  if (!name) return;
  state.chosen.set(name, weight);
  renderLoras();
  announce(`LoRA ${name} added at weight ${weight}`);
}

// ---- the server's lists ----------------------------------------------------------------------------

/** Load presets and LoRAs for the picked model (again once the model is ready, or another is picked: presets
 * and which LoRAs fit follow its family); show decoders. */
export async function refreshSpeed(health) {
  const model = selectedModel()?.id ?? null;
  if (model !== state.model) state.loaded = false;
  const decoders = health?.loader?.decoders ?? (health?.used_mocks ? ["full", "tiny"] : ["full"]);
  $("decoder-tiny").disabled = !decoders.includes("tiny");
  $("decoder-tiny").textContent = decoders.includes("tiny") ? "Tiny (fast)" : "Tiny (not installed)";
  if (!state.loaded && health?.loader?.decoder) $("decoder").value = health.loader.decoder;
  if (state.loaded || state.loading) return;
  state.loading = true;
  try {
    const query = model ? `?model=${encodeURIComponent(model)}` : "";
    const [presets, loras] = await Promise.all([request(`/presets${query}`), request(`/loras${query}`)]);
    state.model = model;
    state.presets = new Map(presets.presets.map((p) => [p.name, p]));
    state.loras = loras.loras;
    state.maxWeight = loras.max_weight;
    $("lora-picker").hidden = !loras.enabled;
    state.loaded = Boolean(health?.ready); // before the model is ready, presets are SD 1.5's: load again then
  } catch {
    return; // the form works without them; the next health report tries again
  } finally {
    state.loading = false;
  }
  renderPresets();
  renderLoras();
  const chosen = radios().find((radio) => radio.checked);
  if (chosen) applyPreset(chosen.value); // picked before the list arrived
}

/** What the request carries: the preset (when one is on), the decoder, the chosen LoRAs. */
export function speedPayload() {
  const body = { decoder: $("decoder").value };
  const preset = radios().find((radio) => radio.checked)?.value;
  if (preset) body.preset = preset;
  const loras = [...state.chosen].map(([name, weight]) => ({ name, weight }));
  if (loras.length) body.loras = loras;
  return body;
}

/** Reuse settings: a job's preset, decoder and LoRAs (those named by the preset itself stay implicit). */
export function applySpeed(params) {
  radios().forEach((radio) => { radio.checked = radio.value === params.preset; });
  if (params.decoder && !$(`decoder-${params.decoder}`)?.disabled) $("decoder").value = params.decoder;
  const implicit = new Set((state.presets.get(params.preset)?.loras ?? []).map((l) => l.name));
  state.chosen = new Map((params.loras ?? []).filter((l) => !implicit.has(l.name)).map((l) => [l.name, l.weight]));
  renderLoras();
}

export function initSpeed() {
  for (const radio of radios()) radio.addEventListener("change", () => applyPreset(radio.value));
  for (const id of SAMPLING) $(id).addEventListener("input", leavePreset);
  $("sampler").addEventListener("change", leavePreset);
  $("decoder").addEventListener("change", leavePreset);
  $("loras").addEventListener("change", (event) => { addLora(event.target.value); event.target.value = ""; });
  renderLoras();
}
