// The Generate bar: always in reach (fixed at the bottom of a phone, sticky in the form on a laptop),
// and it says, at the button, why nothing would run while the model is not loaded.
import { $ } from "./dom.js";
import { describeHealth } from "./status.js";

const DEAD = new Set(["failed", "missing", "error"]); // no job can run until someone fixes the server
const state = { formReady: false, busy: false, dead: false };

function render() {
  const button = $("generate");
  button.disabled = !state.formReady || state.busy || state.dead;
  button.textContent = state.busy ? "Queuing…" : "Generate";
}

const sentence = (text) => (/[.!?]$/.test(text) ? text : `${text}.`);

function note(text) {
  $("generate-note").textContent = text;
  $("generate-note").hidden = !text;
}

/** Follow /health: Generate is off (with the reason) while the model cannot load, on while it loads. */
export function showEngine(health) {
  const loader = health.loader?.state || health.status;
  const { text } = describeHealth(health);
  state.dead = !health.ready && DEAD.has(loader);
  if (health.ready) note("");
  else if (state.dead) note(`${sentence(text)} Nothing can run until the server can load a model, so Generate is off.`);
  else {
    // The server's own reason reads as it is ("loading the model"); the download line is ours.
    const what = health.loader?.download || !health.reason ? text.charAt(0).toLowerCase() + text.slice(1) : health.reason;
    note(`The model is still loading: ${sentence(what)} Jobs you start now wait in the queue and start when it is ready.`);
  }
  render();
}

/** The server did not answer /health: say so; a submit would show the same error. */
export function showOffline() {
  note("Cannot reach the server right now: check that sdedge is running.");
}

export function setFormReady(ready) {
  state.formReady = ready;
  render();
}

export function setBusy(busy) {
  state.busy = busy;
  render();
}

/** The layout keeps room for the bar (fixed on a phone) and fits the form below the header (on a laptop). */
export function initActions() {
  const root = document.documentElement.style;
  const bar = $("actions");
  const main = document.querySelector("main");
  const update = () => {
    root.setProperty("--actions-height", `${bar.offsetHeight}px`);
    root.setProperty("--main-top", `${main.offsetTop}px`);
  };
  const observer = new ResizeObserver(update);
  [bar, document.querySelector(".topbar"), $("mock-banner"), $("status-details")].forEach((el) => observer.observe(el));
  update();
}
