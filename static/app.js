// sdedge page: fills the form from /samplers, shows /health, posts to /image.
const $ = (id) => document.getElementById(id);

function describeError(body, status) {
  const err = body && body.error;
  if (!err) return `Request failed (HTTP ${status})`;
  const details = Array.isArray(err.details)
    ? err.details.map((d) => `${d.field ?? ""}: ${d.message}`).join("\n") : "";
  return details ? `${err.message}\n${details}` : err.message;
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(describeError(body, response.status));
  return body;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function loadSamplers() {
  const { samplers, default: chosen } = await api("/samplers");
  for (const s of samplers) {
    const option = new Option(s.a1111_name, s.name, false, s.name === chosen);
    $("sampler").append(option);
  }
}

async function refreshHealth() {
  const response = await fetch("/health").catch(() => null);
  const body = response ? await response.json().catch(() => null) : null;
  const badge = $("status");
  if (!body) { badge.textContent = "offline"; badge.className = "badge bad"; return; }
  badge.textContent = body.ready ? `ready · ${body.device.actual}` : `${body.status}: ${body.reason ?? ""}`;
  badge.className = `badge ${body.ready ? "ok" : "bad"}`;
  $("mock-banner").hidden = !body.used_mocks;
  if (!body.ready) setTimeout(refreshHealth, 3000);
}

function formPayload() {
  const data = new FormData($("generate-form"));
  const payload = { prompt: data.get("prompt"), negative_prompt: data.get("negative_prompt"), sampler: data.get("sampler") };
  for (const key of ["width", "height", "num_inference_steps", "seed"]) payload[key] = parseInt(data.get(key), 10);
  payload.guidance_scale = parseFloat(data.get("guidance_scale"));
  return payload;
}

async function generate(event) {
  event.preventDefault();
  showError("");
  $("generate").disabled = true;
  $("busy").hidden = false;
  try {
    const result = await api("/image", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(formPayload()),
    });
    $("image").src = result.urls[0];
    $("caption").textContent = `Seed ${result.seed} · ${result.parameters.width}×${result.parameters.height} · ${(result.timings.total_ms / 1000).toFixed(1)} s`;
    $("figure").hidden = false;
  } catch (error) {
    showError(error.message);
  } finally {
    $("generate").disabled = false;
    $("busy").hidden = true;
  }
}

$("generate-form").addEventListener("submit", generate);
loadSamplers().catch((error) => showError(error.message));
refreshHealth();
