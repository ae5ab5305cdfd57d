// The sampler menu from GET /samplers, with each sampler's A1111 name for display.
import { $, announce, h } from "./dom.js";
import { setValue } from "./fields.js";

// Samplers that want their own steps and guidance (the server applies the same to requests without them).
// A server that lists them (default_steps, default_guidance in GET /samplers) is followed instead.
const KNOWN_DEFAULTS = { lcm: { num_inference_steps: 4, guidance_scale: 1 } };

const state = { names: new Map(), defaults: KNOWN_DEFAULTS };

/** Per-sampler steps and guidance as the server lists them, else the ones this page knows. */
function listedDefaults(samplers) {
  if (!samplers.some((s) => "default_steps" in s)) return KNOWN_DEFAULTS;
  const own = samplers.filter((s) => s.default_steps != null && s.default_guidance != null);
  return Object.fromEntries(own.map((s) => [s.name, { num_inference_steps: s.default_steps, guidance_scale: s.default_guidance }]));
}

/** The sampler's A1111 name ("Euler a") for an API name ("euler_a"). */
export function samplerLabel(name) {
  return state.names.get(name) ?? name;
}

/** Fill the menu; keep the chosen sampler (restored or default) when the server still has it. */
export function setSamplers(samplers, preferred, fallback) {
  samplers.forEach((s) => state.names.set(s.name, s.a1111_name));
  state.defaults = listedDefaults(samplers);
  const select = $("sampler");
  select.replaceChildren(...samplers.map((s) => h("option", { value: s.name, title: s.note || null },
    s.note ? `${s.a1111_name} (${s.note})` : s.a1111_name)));
  select.value = samplers.some((s) => s.name === preferred) ? preferred : fallback;
}

function applySamplerDefaults() {
  const defaults = state.defaults[$("sampler").value];
  if (!defaults) return;
  for (const [id, value] of Object.entries(defaults)) setValue(id, value);
  announce(`Steps set to ${defaults.num_inference_steps} and guidance to ${defaults.guidance_scale} for this sampler`);
}

export function initSamplers() {
  $("sampler").addEventListener("change", applySamplerDefaults);
}
