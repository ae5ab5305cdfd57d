// Accounts on the page: the login form (when the server needs one), the account panel (log out, the
// user's own API tokens: create, shown once, revoke), and the notice that an open server is anyone's.
import { ApiError, request } from "./api.js";
import { $, announce, h, renderError } from "./dom.js";

const state = { session: null, tokensLoaded: false };

/** Whether this server needs a login and who is logged in; null when the server cannot say (older or offline). */
export async function getSession() {
  try {
    return await request("/auth/session");
  } catch {
    return null;
  }
}

/** The login form instead of the app (first visit, or a session that ended). */
export function showLogin(message) {
  document.querySelector("main").hidden = true;
  $("status").hidden = true; // the badge needs /health's full body, which comes after the login
  $("account-button").hidden = true;
  $("account-panel").hidden = true;
  $("login").hidden = false;
  if (message) renderError($("login-error"), new ApiError({ code: "unauthorized", message }));
  $("login-username").focus();
}

async function login(event) {
  event.preventDefault();
  const button = $("login-submit");
  $("login-error").hidden = true;
  button.disabled = true;
  try {
    await request("/auth/login", { method: "POST",
      body: { username: $("login-username").value.trim(), password: $("login-password").value } });
    window.location.reload(); // the whole page starts again, now with the session cookie
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const wrong = new ApiError({ status: 401, code: "login_failed", message: "wrong user name or password" });
    renderError($("login-error"), error.status === 401 ? wrong : error);
    $("login-password").select();
    button.disabled = false;
  }
}

async function logout() {
  try {
    await request("/auth/logout", { method: "POST" });
  } finally {
    window.location.reload();
  }
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "never";
}

function tokenItem(token) {
  const revoke = h("button", { type: "button", class: "danger small", onclick: () => revokeToken(token) }, "Revoke");
  revoke.setAttribute("aria-label", `Revoke token ${token.label || token.id}`);
  return h("li", { class: "token", dataset: { tokenId: token.id } },
    h("span", { class: "token-label" }, token.label || "(no label)"),
    h("span", { class: "token-meta" }, `created ${when(token.created_at)} · last used ${when(token.last_used_at)}`),
    revoke);
}

async function loadTokens() {
  try {
    const { tokens } = await request("/account/tokens");
    $("token-list").replaceChildren(...tokens.map(tokenItem));
    $("tokens-empty").hidden = tokens.length > 0;
    state.tokensLoaded = true;
  } catch (error) {
    renderError($("token-error"), error);
  }
}

async function createToken(event) {
  event.preventDefault();
  $("token-error").hidden = true;
  try {
    const made = await request("/account/tokens", { method: "POST", body: { label: $("token-label").value.trim() } });
    $("new-token-value").value = made.token;
    $("new-token").hidden = false;
    $("token-label").value = "";
    $("new-token-value").select();
    announce("Token created: copy it now, it is shown once");
    await loadTokens();
  } catch (error) {
    renderError($("token-error"), error);
  }
}

async function revokeToken(token) {
  $("token-error").hidden = true;
  try {
    await request(`/account/tokens/${encodeURIComponent(token.id)}`, { method: "DELETE" });
    announce(`Token ${token.label || token.id} revoked`);
    await loadTokens();
  } catch (error) {
    renderError($("token-error"), error);
  }
}

async function copyToken() {
  const value = $("new-token-value").value;
  try {
    await navigator.clipboard.writeText(value);
    $("new-token-copied").textContent = "Copied.";
  } catch {
    $("new-token-value").select(); // no clipboard access (plain http): the text is selected for Ctrl+C
    $("new-token-copied").textContent = "Selected: press Ctrl+C (or long-press) to copy.";
  }
}

function togglePanel() {
  const open = $("account-panel").hidden;
  $("account-panel").hidden = !open;
  $("account-button").setAttribute("aria-expanded", String(open));
  if (open && !state.tokensLoaded) loadTokens();
  if (!open) $("new-token").hidden = true; // shown once: gone when the panel closes
}

/** Wire the login form, and the account panel or the open-server notice for this session. */
export function initAccount(session) {
  state.session = session;
  $("login-form").addEventListener("submit", (event) => login(event).catch(console.error));
  window.addEventListener("sdedge:unauthorized", () => {
    if (state.session?.auth_required) showLogin("Your session has ended. Please sign in again.");
  });
  if (!session) return;
  if (!session.auth_required) {
    $("open-banner-text").textContent = session.notice || "Anyone on the network can use this server.";
    $("open-banner").hidden = false;
    return;
  }
  if (!session.user) return;
  $("account-name").textContent = session.user.name;
  $("account-who").textContent = `Signed in as ${session.user.name}${session.user.admin ? " (admin: sees every job)" : ""}`;
  $("account-button").hidden = false;
  $("account-button").addEventListener("click", togglePanel);
  $("logout").addEventListener("click", () => logout().catch(console.error));
  $("token-form").addEventListener("submit", (event) => createToken(event).catch(console.error));
  $("new-token-copy").addEventListener("click", () => copyToken().catch(console.error));
}
