// The Generate bar: always in reach (fixed at the bottom of a phone, sticky in the form on a laptop),
// and it says, at the button, why nothing would run while the model is not loaded. It never floats
// over a drawing surface (the inpainting mask): while one reaches into the strip where the bar floats,
// the bar docks at the end of the form, so a finger meant for the mask never lands on Generate.
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

/** Where the bar floats when it is not docked: the bottom strip of its scroll container (window or panel). */
function floatStrip(bar) {
  const panel = bar.closest(".create");
  const scrolls = panel && ["auto", "scroll"].includes(getComputedStyle(panel).overflowY);
  const bottom = scrolls ? panel.getBoundingClientRect().bottom - panel.clientTop : document.documentElement.clientHeight;
  return { top: bottom - bar.offsetHeight, bottom };
}

/** Dock the bar while any shown surface in `keepClear` reaches into its strip; float it again once none does. */
function updateDock(bar, keepClear) {
  const strip = floatStrip(bar);
  const covered = keepClear.some((el) => {
    const r = el.getBoundingClientRect();
    return r.height > 0 && r.bottom > strip.top && r.top < strip.bottom;
  });
  bar.classList.toggle("docked", covered);
}

/** The layout keeps room for the bar (fixed on a phone) and fits the form below the header (on a laptop);
 * the bar docks instead of covering the elements in `keepClear`. */
export function initActions({ keepClear = [] } = {}) {
  const root = document.documentElement.style;
  const bar = $("actions");
  const main = document.querySelector("main");
  let frame = 0;
  const dock = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; updateDock(bar, keepClear); });
  };
  const update = () => {
    root.setProperty("--actions-height", `${bar.offsetHeight}px`);
    root.setProperty("--main-top", `${main.offsetTop}px`);
    dock();
  };
  const observer = new ResizeObserver(update);
  [bar, document.querySelector(".topbar"), $("mock-banner"), $("status-details"), $("generate-form"), ...keepClear]
    .forEach((el) => observer.observe(el));
  addEventListener("scroll", dock, { passive: true, capture: true }); // the window's and the form panel's
  addEventListener("resize", dock, { passive: true });
  update();
}
