// The seed: random for every job (-1), or kept. A kept seed is shown beside Generate in every mode,
// with a way out, so nobody keeps getting the same picture without knowing why.
import { $, announce } from "./dom.js";

const state = { lastSeed: null, onChange: () => {} };

export const isLocked = () => $("seed-lock").getAttribute("aria-pressed") === "true";

function randomSeed() {
  const buffer = new Uint32Array(1);
  crypto.getRandomValues(buffer);
  return buffer[0];
}

function render(locked) {
  $("seed-lock").setAttribute("aria-pressed", String(locked));
  $("seed-lock-text").textContent = locked ? "Kept" : "Keep";
  $("seed-hint").textContent = locked ? "Kept for every job, in every mode, until you unlock it." : "-1 picks a new seed for every job.";
  $("seed-kept").hidden = !locked;
  $("seed-kept-text").textContent = locked ? `Same seed every time: ${$("seed").value}` : "";
}

/** Keep the seed (the one shown, else the latest job's, else a new one) or go back to random seeds. */
export function setLocked(locked) {
  if (!locked) $("seed").value = "-1";
  else if (!(Number($("seed").value) >= 0)) $("seed").value = String(state.lastSeed ?? randomSeed());
  render(locked);
  state.onChange();
}

/** Keep one given seed (Reuse settings: the viewed image's). */
export function keepSeed(seed) {
  $("seed").value = String(seed);
  setLocked(true);
}

/** Remember the seed of the latest finished job: locking then keeps that one. */
export function noteSeed(seed) {
  if (Number.isInteger(seed)) state.lastSeed = seed;
}

export function initSeed({ onChange }) {
  state.onChange = onChange;
  $("seed-dice").addEventListener("click", () => {
    keepSeed(randomSeed());
    announce(`New seed ${$("seed").value}, kept`);
  });
  $("seed-lock").addEventListener("click", () => setLocked(!isLocked()));
  $("seed-unlock").addEventListener("click", () => {
    setLocked(false);
    announce("Seeds are random again");
    $("generate").focus();
  });
  $("seed").addEventListener("change", () => {
    const seed = Number($("seed").value);
    if (Number.isInteger(seed) && seed >= 0) setLocked(true);
    else if (seed === -1) setLocked(false); // anything else stays as typed: the form's check names it
  });
  render(isLocked());
}
