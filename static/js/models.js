// The model picker (GET /models): each model's family, size and install state, the modes it cannot
// run, its defaults, and (for an admin, or anyone on a server without accounts) its download with progress.
import { downloadModel, getModel, getModels } from "./api.js";
import { $, formatBytes, h } from "./dom.js";
import { modeLabel } from "./modes.js";

const SAVED = "sdedge-model";
const POLL_MS = 1000;
const state = { byId: new Map(), onChange: () => {}, canAdmin: false, timer: null };

/** The chosen model's description, or null before the list is loaded. */
export const selectedModel = () => state.byId.get($("model").value) ?? null;

const family = (m) => m.family_name ?? m.family ?? "unknown family";

function sizeText(m) {
  if (m.installed) return formatBytes(m.size_bytes);
  return m.download_size_bytes ? `~${formatBytes(m.download_size_bytes)}` : "size unknown";
}

function optionText(m) {
  return `${m.name} · ${family(m)} · ${sizeText(m)} · ${m.installed ? "installed" : "not installed"}`;
}

function infoText(m) {
  const d = m.defaults ?? {};
  const parts = [`${family(m)}${m.loaded ? ", loaded" : ""}${m.default ? ", the server's default" : ""}`,
    `runs ${m.modes.map((id) => modeLabel(id).toLowerCase()).join(", ")}`,
    `defaults ${d.size}×${d.size}, ${d.steps} steps, guidance ${d.guidance}, ${d.sampler}`];
  if (!m.negative_prompt) parts.push("no negative prompt (ignored)");
  return `${parts.join(" · ")}.`;
}

function showDownload(m) {
  const box = $("model-download");
  const download = m.download;
  const running = download && ["starting", "downloading"].includes(download.state);
  box.hidden = m.installed;
  $("model-download-button").hidden = !state.canAdmin || running;
  $("model-download-button").textContent = `Download (${sizeText(m)})`;
  $("model-progress").hidden = !running;
  $("model-progress").value = download?.percent ?? 0;
  let text = state.canAdmin ? "" : "Not installed: an admin can download it.";
  if (running) {
    text = `Downloading ${download.percent ?? 0}% (${formatBytes(download.downloaded_bytes)} of ${formatBytes(download.total_bytes)})`;
  } else if (download?.state === "failed") text = `Download failed: ${download.error}`;
  $("model-progress-text").textContent = text;
}

function show(m, options = {}) {
  $("model-info").textContent = infoText(m);
  const negative = $("negative_prompt");
  negative.disabled = !m.negative_prompt; // the server would drop it: say so where it is typed
  negative.placeholder = negative.disabled ? `${family(m)} takes no negative prompt` : "blurry, low quality";
  showDownload(m);
  state.onChange(m, options);
}

function render(models, chosen) {
  state.byId = new Map(models.map((m) => [m.id, m]));
  $("model").replaceChildren(...models.map((m) => h("option", { value: m.id }, optionText(m))));
  $("model").value = state.byId.has(chosen) ? chosen : models.find((m) => m.default)?.id ?? models[0]?.id;
}

async function follow(id) {
  clearTimeout(state.timer);
  const m = await getModel(id);
  state.byId.set(id, m);
  if ($("model").value === id) showDownload(m);
  if (m.download && ["starting", "downloading"].includes(m.download.state)) {
    state.timer = setTimeout(() => follow(id).catch(console.error), POLL_MS);
    return;
  }
  const { models } = await getModels();
  render(models, $("model").value);
  show(selectedModel());
}

async function startDownload() {
  const id = $("model").value;
  $("model-download-button").disabled = true;
  try {
    state.byId.set(id, await downloadModel(id));
    showDownload(state.byId.get(id));
    await follow(id);
  } catch (error) {
    $("model-progress-text").textContent = `Download refused: ${error.message}`;
  } finally {
    $("model-download-button").disabled = false;
  }
}

/** Load the models and show the picker; onChange(model, {applyDefaults}) runs now and on every choice. */
export async function initModels({ canAdmin, onChange }) {
  state.canAdmin = canAdmin;
  state.onChange = onChange;
  const { models } = await getModels();
  render(models, localStorage.getItem(SAVED));
  $("model-field").hidden = false;
  $("model").addEventListener("change", () => {
    localStorage.setItem(SAVED, $("model").value);
    show(selectedModel(), { applyDefaults: true });
  });
  $("model-download-button").addEventListener("click", () => startDownload().catch(console.error));
  show(selectedModel());
  const m = selectedModel();
  if (m?.download && ["starting", "downloading"].includes(m.download.state)) follow(m.id).catch(console.error);
}
