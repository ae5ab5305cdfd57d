// The HTTP API: every call goes to this page's own origin; every failure becomes an ApiError.

export const FINISHED = new Set(["completed", "failed", "canceled"]);

export class ApiError extends Error {
  constructor({ status = 0, code = "error", message = "Something went wrong", details = null, retryAfter = null }) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

function networkError() {
  return new ApiError({
    code: "network_error",
    message: "Cannot reach the server. Check that sdedge is running and that this device is on its network.",
  });
}

function errorFromResponse(response, body) {
  const err = body && typeof body === "object" ? body.error : null;
  const retry = Number(response.headers.get("Retry-After")) || null;
  if (!err || typeof err !== "object") {
    return new ApiError({ status: response.status, code: `http_${response.status}`,
      message: `The server answered HTTP ${response.status} ${response.statusText || ""}`.trim(), retryAfter: retry });
  }
  return new ApiError({ status: response.status, code: err.code || `http_${response.status}`,
    message: err.message || "The request failed", details: err.details ?? null, retryAfter: retry });
}

/** JSON request to the server; resolves to the parsed body or rejects with an ApiError. */
export async function request(path, { method = "GET", body, signal } = {}) {
  const options = { method, signal, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw networkError();
  }
  const data = await response.json().catch(() => null);
  if (response.status === 401 && !path.startsWith("/auth/")) {
    window.dispatchEvent(new CustomEvent("sdedge:unauthorized")); // the session ended: account.js shows the login
  }
  if (!response.ok) throw errorFromResponse(response, data);
  return data;
}

/** /health answers 503 with a full body while the model loads: that is data, not an error. */
export async function getHealth() {
  let response;
  try {
    response = await fetch("/health", { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch {
    throw networkError();
  }
  const data = await response.json().catch(() => null);
  if (data && typeof data.status === "string") return data;
  throw errorFromResponse(response, data);
}

export const getSamplers = () => request("/samplers");
/** The generation modes with their routes, image inputs and fields (limits and defaults applied). */
export const getModes = () => request("/modes");

export const getModels = () => request("/models");

export const getModel = (id) => request(`/models/${encodeURIComponent(id)}`);

export const downloadModel = (id) => request(`/models/${encodeURIComponent(id)}/download`, { method: "POST" });
/** Queue a job on a mode's route (the `path` GET /modes gives). */
export const submitJob = (path, payload) => request(path, { method: "POST", body: payload });
// ?images=urls: the page shows the PNGs by URL, it never needs their base64 (result.images' default)
export const getJob = (id) => request(`/jobs/${encodeURIComponent(id)}?images=urls`);
export const cancelJob = (id) => request(`/jobs/${encodeURIComponent(id)}/cancel?images=urls`, { method: "POST" });
export const deleteJob = (id) => request(`/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
export const jobEventsUrl = (id) => `/jobs/${encodeURIComponent(id)}/events?images=urls`;

export function listJobs({ status, limit = 12, before } = {}) {
  const query = new URLSearchParams({ limit: String(limit), images: "urls" });
  if (status) query.set("status", status);
  if (before) query.set("before", before);
  return request(`/jobs?${query}`);
}

const FRIENDLY = {
  network_error: null,
  queue_full: "The queue is full.",
  model_not_ready: "The model is not ready yet.",
  model_unavailable: "The model cannot be used right now.",
  model_download_failed: "Downloading the model failed.",
  payload_too_large: "An image or the request is too large for this server.",
  unsupported_media_type: "The server refused the request's format.",
  invalid_request: "Please check the form.",
  not_found: "Not found.",
  method_not_allowed: "This server does not offer that yet (it may be an older version).",
  canceled: "Canceled.",
  timeout: "The job took too long and was stopped.",
  generation_failed: "Generation failed.",
  internal_error: "The server hit an internal error.",
  unauthorized: "Please sign in.",
  forbidden: "The server refused this request.",
  rate_limited: "Too many requests.",
};

/** A short headline for an error code, or null when the server's message says it all. */
export function headline(error) {
  return FRIENDLY[error.code] ?? null;
}

/** Field problems in an error's details: [{field, message}] whatever shape the details have. */
export function fieldProblems(details) {
  if (Array.isArray(details)) {
    return details.filter((d) => d && typeof d === "object")
      .map((d) => ({ field: d.field ?? d.loc ?? null, message: d.message ?? d.msg ?? JSON.stringify(d) }));
  }
  if (details && typeof details === "object" && typeof details.field === "string") {
    return [{ field: details.field, message: null }];
  }
  return [];
}

/** Details that are not field problems, as "key: value" strings (e.g. the queue's size). */
export function extraDetails(details) {
  if (!details || typeof details !== "object" || Array.isArray(details)) {
    return typeof details === "string" ? [details] : [];
  }
  return Object.entries(details).filter(([key]) => key !== "field")
    .map(([key, value]) => `${key.replace(/_/g, " ")}: ${Array.isArray(value) ? value.join(", ") : value}`);
}
