// Settings kept across reloads in localStorage (nothing leaves the device). Version 2 keeps each
// mode's own fields apart; version 1 (one strength for every mode) is ignored.
const KEY = "sdedge.settings.v2";

/** The saved settings, or null when there are none (or they cannot be read). */
export function loadSettings() {
  try {
    const values = JSON.parse(localStorage.getItem(KEY) || "null");
    return values && typeof values === "object" ? values : null;
  } catch {
    return null;
  }
}

export function saveSettings(values) {
  try {
    localStorage.setItem(KEY, JSON.stringify(values));
  } catch {
    /* private mode or full storage: settings are simply not kept */
  }
}
