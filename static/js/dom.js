// Small DOM helpers shared by the page's modules.
import { extraDetails, fieldProblems, headline } from "./api.js";

export const $ = (id) => document.getElementById(id);

/** Create an element: h("button", {class: "x", onclick: fn}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** Tell screen readers about something that happened elsewhere on the page. */
export function announce(text) {
  const region = $("announcer");
  region.textContent = "";
  requestAnimationFrame(() => { region.textContent = text; });
}

/** Human labels of the form's fields, for error messages that name a field. */
const FIELD_LABELS = {
  prompt: "Prompt", negative_prompt: "Negative prompt", width: "Width", height: "Height",
  num_inference_steps: "Steps", guidance_scale: "Guidance", sampler: "Sampler", seed: "Seed",
  num_images: "Images", strength: "Strength", mask_blur: "Mask edge blur", init_image: "Starting image",
  image: "Image to edit", mask: "Mask", content_image: "Content image", style_image: "Style image",
  style_strength: "Style strength", content_strength: "Content kept", resize_mode: "Fit",
  loras: "LoRA", decoder: "Decoder", preset: "Speed",
};

export function fieldLabel(field) {
  const key = String(field ?? "").split(".").pop();
  return FIELD_LABELS[key] ?? key;
}

/** Fill an element with an error: a headline, the server's message, and one line per field. */
export function renderError(box, error) {
  const lines = fieldProblems(error.details).filter((p) => p.message)
    .map((p) => h("li", {}, p.field ? `${fieldLabel(p.field)}: ${p.message}` : p.message));
  const extra = extraDetails(error.details).map((text) => h("li", {}, text));
  const message = sentence(error.message);
  const title = repeats(headline(error), message) ? null : headline(error);
  const retry = error.retryAfter ? ` Try again in about ${error.retryAfter} s.` : "";
  const parts = [
    title ? h("strong", {}, title) : null,
    h("p", {}, `${message}${retry}`),
    lines.length || extra.length ? h("ul", {}, lines, extra) : null,
  ];
  box.replaceChildren(...parts.filter(Boolean));
  box.hidden = false;
}

/** "the queue is full" -> "The queue is full." */
function sentence(text) {
  const value = capitalize(String(text ?? "").trim());
  return /[.!?]$/.test(value) ? value : `${value}.`;
}

/** True when the headline only says again what the message starts with. */
function repeats(title, message) {
  if (!title) return false;
  const words = (text) => text.toLowerCase().replace(/[^a-z ]/g, "").split(" ").slice(0, 4).join(" ");
  return words(message).startsWith(words(title));
}

export function capitalize(text) {
  const value = String(text ?? "");
  return value.charAt(0).toUpperCase() + value.slice(1);
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${value.toFixed(unit >= 2 && value < 100 ? 1 : 0)} ${units[unit]}`;
}

/** Copy text; falls back to a hidden textarea where the Clipboard API is not allowed (plain http on a LAN). */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch { /* fall through */ }
  }
  const area = h("textarea", { class: "visually-hidden", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let copied = false;
  try { copied = document.execCommand("copy"); } catch { copied = false; }
  area.remove();
  return copied;
}
