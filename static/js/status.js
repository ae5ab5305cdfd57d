// The header badge and the mock-mode banner, from GET /health (polled: often while loading).
import { getHealth } from "./api.js";
import { $, capitalize, formatBytes } from "./dom.js";

const READY_POLL_MS = 15000;
const LOADING_POLL_MS = 2000;
const OFFLINE_POLL_MS = 5000;

let onHealth = () => {};
let timer = null;

function modelName(health) {
  const id = health.model?.id || health.model?.path || "";
  return id.split(/[\\/]/).filter(Boolean).pop() || "model";
}

function downloadText(download) {
  if (!download) return "";
  const { downloaded_bytes: done, total_bytes: total } = download;
  if (!total) return done ? ` · ${formatBytes(done)}` : "";
  return ` · ${Math.floor((100 * done) / total)}% (${formatBytes(done)} of ${formatBytes(total)})`;
}

function deviceText(device) {
  if (!device) return "";
  const actual = device.actual || device.requested;
  return device.requested && actual && device.requested !== actual ? `${actual} (asked for ${device.requested})` : actual;
}

const FAILED_PREFIX = { failed: "Model failed: ", missing: "Model missing: ", error: "Error: " };

/** Badge text and tone for one /health body. */
export function describeHealth(health) {
  if (health.ready) {
    return { tone: "ok", text: `Ready · ${deviceText(health.device)} · ${modelName(health)}` };
  }
  const state = health.loader?.state || health.status || "starting";
  const prefix = FAILED_PREFIX[state];
  const reason = health.reason || state;
  const download = health.loader?.download;
  if (state === "downloading" && download) return { tone: "busy", text: `Downloading the model${downloadText(download)}` };
  return { tone: prefix ? "bad" : "busy", text: prefix ? `${prefix}${reason}` : capitalize(reason) };
}

function setBadge(tone, text, title) {
  const badge = $("status");
  badge.dataset.tone = tone;
  if ($("status-text").textContent !== text) $("status-text").textContent = text;
  badge.title = title || text;
}

function details(health) {
  const lines = [`Model: ${health.model?.id ?? "?"}`, `Device: ${deviceText(health.device) || "?"}`];
  if (health.loader?.compiled_shapes?.length) lines.push(`Compiled: ${health.loader.compiled_shapes.join(", ")}`);
  if (health.versions?.sdedge) lines.push(`sdedge ${health.versions.sdedge}`);
  return lines.join("\n");
}

function tooltip(health) {
  return health.reason ? `${capitalize(health.reason)}\n${details(health)}` : details(health);
}

async function refresh() {
  clearTimeout(timer);
  let delay = READY_POLL_MS;
  try {
    const health = await getHealth();
    const { tone, text } = describeHealth(health);
    setBadge(tone, text, tooltip(health));
    $("mock-banner").hidden = !health.used_mocks;
    onHealth(health);
    if (!health.ready) delay = LOADING_POLL_MS;
  } catch (error) {
    setBadge("bad", "Server unreachable", error.message);
    delay = OFFLINE_POLL_MS;
  }
  timer = setTimeout(refresh, delay);
}

export function startHealth(callback) {
  onHealth = callback;
  refresh();
}
