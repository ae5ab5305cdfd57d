// The header badge, its details panel (tap the badge: the full reason, readable on a phone) and the
// mock-mode banner, from GET /health (polled: often while loading).
import { getHealth } from "./api.js";
import { $, capitalize, formatBytes, h } from "./dom.js";

const READY_POLL_MS = 15000;
const LOADING_POLL_MS = 2000;
const OFFLINE_POLL_MS = 5000;

const state = { onHealth: () => {}, onOffline: () => {}, timer: null };

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
  if (!device.actual) return device.requested ? `${device.requested} (requested)` : "";
  const { actual } = device;
  return device.requested && actual && device.requested !== actual ? `${actual} (asked for ${device.requested})` : actual;
}

const FAILED_PREFIX = { failed: "Model failed: ", missing: "Model missing: ", error: "Error: " };

/** Badge text and tone for one /health body. */
export function describeHealth(health) {
  if (health.ready) {
    return { tone: "ok", text: `Ready · ${deviceText(health.device)} · ${modelName(health)}` };
  }
  const loader = health.loader?.state || health.status || "starting";
  const prefix = FAILED_PREFIX[loader];
  const reason = health.reason || loader;
  const download = health.loader?.download;
  if (loader === "downloading" && download) return { tone: "busy", text: `Downloading the model${downloadText(download)}` };
  return { tone: prefix ? "bad" : "busy", text: prefix ? `${prefix}${reason}` : capitalize(reason) };
}

/** [term, value] pairs for the details panel and the tooltip. */
function facts(health) {
  return [
    ["Model", health.model?.id], ["Device", deviceText(health.device)],
    ["Compiled", health.loader?.compiled_shapes?.join(", ")], ["Images in", health.paths?.generated_images_dir],
    ["Version", health.versions?.sdedge && `sdedge ${health.versions.sdedge}`],
    ["Node", health.node?.name], ["Nodes", health.nodes?.map((n) => n.name).join(", ")],
  ].filter(([, value]) => value);
}

function show(tone, text, reason, pairs = []) {
  const badge = $("status");
  badge.dataset.tone = tone;
  if ($("status-text").textContent !== text) $("status-text").textContent = text;
  badge.title = [reason, ...pairs.map(([term, value]) => `${term}: ${value}`)].join("\n");
  $("status-reason").textContent = reason;
  $("status-meta").replaceChildren(...pairs.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function toggleDetails() {
  const open = $("status-details").hidden;
  $("status-details").hidden = !open;
  $("status").setAttribute("aria-expanded", String(open));
}

async function refresh() {
  clearTimeout(state.timer);
  let delay = READY_POLL_MS;
  try {
    const health = await getHealth();
    const { tone, text } = describeHealth(health);
    show(tone, text, health.reason ? capitalize(health.reason) : text, facts(health));
    $("mock-banner").hidden = !health.used_mocks;
    // Several nodes share this server's queue: job cards say which node ran each job.
    document.body.dataset.fleet = String((health.nodes?.length ?? 0) > 1);
    state.onHealth(health);
    if (!health.ready) delay = LOADING_POLL_MS;
  } catch (error) {
    show("bad", "Server unreachable", error.message);
    state.onOffline(error);
    delay = OFFLINE_POLL_MS;
  }
  state.timer = setTimeout(refresh, delay);
}

export function startHealth({ onHealth, onOffline }) {
  state.onHealth = onHealth;
  state.onOffline = onOffline;
  $("status").addEventListener("click", toggleDetails);
  refresh();
}
