// The sampler menu from GET /samplers, with each sampler's A1111 name for display.
import { $, announce, h } from "./dom.js";
import { setValue } from "./fields.js";

// Samplers that want their own steps and guidance (the server applies the same to requests without them).
const SAMPLER_DEFAULTS = { lcm: { num_inference_steps: 4, guidance_scale: 1 } };

const state = { names: new Map() };

/** The sampler's A1111 name ("Euler a") for an API name ("euler_a"). */
export function samplerLabel(name) {
  return state.names.get(name) ?? name;
}

/** Fill the menu; keep the chosen sampler (restored or default) when the server still has it. */
export function setSamplers(samplers, preferred, fallback) {
  samplers.forEach((s) => state.names.set(s.name, s.a1111_name));
  const select = $("sampler");
  select.replaceChildren(...samplers.map((s) => h("option", { value: s.name, title: s.note || null },
    s.note ? `${s.a1111_name} (${s.note})` : s.a1111_name)));
  select.value = samplers.some((s) => s.name === preferred) ? preferred : fallback;
}

function applySamplerDefaults() {
  const defaults = SAMPLER_DEFAULTS[$("sampler").value];
  if (!defaults) return;
  for (const [id, value] of Object.entries(defaults)) setValue(id, value);
  announce(`Steps set to ${defaults.num_inference_steps} and guidance to ${defaults.guidance_scale} for this sampler`);
}

export function initSamplers() {
  $("sampler").addEventListener("change", applySamplerDefaults);
}
