// The full-size viewer: one job's images with their parameters and what can be done with them.
import { deleteJob } from "./api.js";
import { $, copyText, h } from "./dom.js";
import { allModes, modeById, modeLabel, takes } from "./modes.js";
import { samplerLabel } from "./samplers.js";

const state = { job: null, index: 0, opener: null, confirmTimer: null,
  hooks: { onReuse: () => {}, onUseImage: () => {}, onDeleted: () => {} } };

const dialog = () => $("viewer");
const images = () => state.job?.result?.urls ?? [];
const seedOf = () => state.job?.result?.seeds?.[state.index] ?? state.job?.result?.seed;
const jobTakes = (name) => takes(modeById(state.job.type), name);
const offered = (id) => allModes().some((mode) => mode.id === id && mode.available !== false);

function say(text) { $("viewer-message").textContent = text; }

function metaRows() {
  const p = state.job.result?.parameters ?? {};
  const took = (Date.parse(state.job.finished_at) - Date.parse(state.job.started_at)) / 1000;
  const rows = [
    ["Mode", modeLabel(state.job.type)],
    ["Prompt", p.prompt || "—"],
    ["Negative prompt", p.negative_prompt || "—"],
    ["Size", p.width && `${p.width} × ${p.height}`],
    ["Steps", p.steps],
    ["Guidance", p.guidance_scale],
    ["Sampler", p.sampler && samplerLabel(p.sampler)],
    ["Seed", seedOf()],
    ["Strength", jobTakes("strength") ? p.strength : null],
    ["Style strength", jobTakes("style_strength") ? p.style_strength : null],
    ["Content kept", jobTakes("content_strength") ? p.content_strength : null],
    ["Created", state.job.created_at && new Date(state.job.created_at).toLocaleString()],
    ["Took", Number.isFinite(took) ? `${took.toFixed(1)} s` : null],
  ];
  return rows.filter(([, value]) => value !== null && value !== undefined && value !== "")
    .flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, String(value))]);
}

function show() {
  const urls = images();
  const url = urls[state.index];
  const prompt = state.job.result?.parameters?.prompt || "";
  $("viewer-title").textContent = `${modeLabel(state.job.type)}${urls.length > 1 ? ` · ${state.index + 1} of ${urls.length}` : ""}`;
  $("viewer-image").src = url;
  $("viewer-image").alt = prompt || "Generated image";
  $("viewer-nav").hidden = urls.length < 2;
  $("viewer-count").textContent = `${state.index + 1} / ${urls.length}`;
  $("viewer-download").href = url;
  $("viewer-download").download = `sdedge-${state.job.id}-${seedOf() ?? state.index}.png`;
  $("viewer-meta").replaceChildren(...metaRows());
  $("viewer-init").hidden = !offered("img2img");
  $("viewer-inpaint").hidden = !offered("inpaint");
  resetDelete();
  say("");
}

/** Open the viewer on one job (a finished job view) at one of its images. */
export function openViewer(nextJob, at = 0) {
  state.job = nextJob;
  state.index = Math.max(0, Math.min(at, images().length - 1));
  state.opener = document.activeElement;
  show();
  if (!dialog().open) dialog().showModal();
  $("viewer-close").focus();
}

/** Close; keepFocus=false when the action moves focus elsewhere (the form). */
function close(keepFocus = true) {
  if (!keepFocus) state.opener = null;
  if (dialog().open) dialog().close();
}

function step(delta) {
  const count = images().length;
  if (count < 2) return;
  state.index = (state.index + delta + count) % count;
  show();
}

// ---- infotext: the PNG's own `parameters` chunk, else built from the job --------------------

function readTextChunk(buffer, keyword) {
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  const decoder = new TextDecoder();
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = view.getUint32(at);
    const type = decoder.decode(bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === "tEXt" || type === "iTXt") {
      const nul = data.indexOf(0);
      if (decoder.decode(data.subarray(0, nul)) === keyword) {
        if (type === "tEXt") return new TextDecoder("latin1").decode(data.subarray(nul + 1));
        // iTXt: keyword\0 compression flag, method, language\0, translated keyword\0, text (uncompressed only)
        if (data[nul + 1] !== 0) return null;
        let rest = nul + 3;
        rest = data.indexOf(0, rest) + 1;
        rest = data.indexOf(0, rest) + 1;
        return decoder.decode(data.subarray(rest));
      }
    }
    if (type === "IEND") break;
    at += 12 + length;
  }
  return null;
}

function builtInfotext() {
  const p = state.job.result?.parameters ?? {};
  const fields = [`Steps: ${p.steps}`, `Sampler: ${samplerLabel(p.sampler)}`, `CFG scale: ${p.guidance_scale}`,
    `Seed: ${seedOf()}`, `Size: ${p.width}x${p.height}`];
  if (jobTakes("strength")) fields.push(`Denoising strength: ${p.strength}`);
  const negative = p.negative_prompt ? `\nNegative prompt: ${p.negative_prompt}` : "";
  return `${p.prompt ?? ""}${negative}\n${fields.join(", ")}`;
}

async function infotext() {
  try {
    const response = await fetch(images()[state.index]);
    if (response.ok) return readTextChunk(await response.arrayBuffer(), "parameters") ?? builtInfotext();
  } catch { /* fall back below */ }
  return builtInfotext();
}

// ---- actions -----------------------------------------------------------------------------------

async function copyParameters() {
  const copied = await copyText(await infotext());
  say(copied ? "Parameters copied." : "Copying is not allowed here; select the details above instead.");
}

function resetDelete() {
  clearTimeout(state.confirmTimer);
  $("viewer-delete").textContent = "Delete";
  $("viewer-delete").dataset.armed = "";
}

async function remove() {
  const button = $("viewer-delete");
  if (!button.dataset.armed) {
    button.dataset.armed = "1";
    button.textContent = "Really delete?";
    say("Press again to delete this job and its images from the server.");
    state.confirmTimer = setTimeout(resetDelete, 6000);
    return;
  }
  resetDelete();
  button.disabled = true;
  try {
    await deleteJob(state.job.id);
    const deleted = state.job.id;
    close(false);
    state.hooks.onDeleted(deleted);
  } catch (error) {
    say(`Could not delete: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function useImage(target) {
  const url = images()[state.index];
  close(false);
  state.hooks.onUseImage(url, target);
}

export function initViewer(callbacks) {
  state.hooks = { ...state.hooks, ...callbacks };
  $("viewer-close").addEventListener("click", close);
  $("viewer-prev").addEventListener("click", () => step(-1));
  $("viewer-next").addEventListener("click", () => step(1));
  $("viewer-copy").addEventListener("click", copyParameters);
  $("viewer-reuse").addEventListener("click", () => { const chosen = state.job; const seed = seedOf(); close(false); state.hooks.onReuse(chosen, seed); });
  $("viewer-init").addEventListener("click", () => useImage("img2img"));
  $("viewer-inpaint").addEventListener("click", () => useImage("inpaint"));
  $("viewer-delete").addEventListener("click", remove);
  dialog().addEventListener("click", (event) => { if (event.target === dialog()) close(); });
  dialog().addEventListener("keydown", (event) => {
    if (event.target.closest("button, a") && ["ArrowLeft", "ArrowRight"].includes(event.key) && images().length > 1) {
      step(event.key === "ArrowLeft" ? -1 : 1);
    }
  });
  dialog().addEventListener("close", () => {
    resetDelete();
    if (state.opener && state.opener.isConnected) state.opener.focus();
  });
}
