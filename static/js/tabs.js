// The mode tabs, one per mode the server lists, with the arrow-key behaviour of a WAI-ARIA tablist.
import { $, h } from "./dom.js";
import { tabCaption } from "./modes.js";

const tabs = () => [...$("mode-tabs").querySelectorAll("[role=tab]")];

function onKey(event, onSelect) {
  const list = tabs();
  const index = list.indexOf(event.target);
  const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: list.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  onSelect(list[(moves[event.key] + list.length) % list.length].dataset.mode, { focus: true });
}

/** Build the tabs; onSelect(modeId, {focus}) runs on a click or an arrow key. */
export function renderTabs(modes, onSelect) {
  const buttons = modes.map((mode) => h("button", {
    type: "button", role: "tab", id: `tab-${mode.id}`, dataset: { mode: mode.id }, "aria-controls": "generate-form",
    "aria-selected": "false", tabindex: "-1", title: mode.available ? mode.label : `${mode.label}: ${mode.reason}`,
    onclick: () => onSelect(mode.id), onkeydown: (event) => onKey(event, onSelect),
  }, tabCaption(mode)));
  $("mode-tabs").style.setProperty("--tabs", String(buttons.length));
  $("mode-tabs").replaceChildren(...buttons);
}

export function selectTab(modeId, { focus = false } = {}) {
  for (const tab of tabs()) {
    const selected = tab.dataset.mode === modeId;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected && focus) tab.focus();
  }
  $("generate-form").setAttribute("aria-labelledby", `tab-${modeId}`);
}

/** Disable the tabs of modes the chosen model cannot run (blocked: mode id -> reason), with the reason as title. */
export function setBlocked(blocked) {
  for (const tab of tabs()) {
    const reason = blocked.get(tab.dataset.mode);
    tab.disabled = Boolean(reason);
    tab.setAttribute("aria-disabled", String(Boolean(reason)));
    if (reason) tab.title = reason;
  }
}
