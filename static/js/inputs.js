// Image inputs: a drop zone with a file picker and a camera button, read into a data URL.
import { h } from "./dom.js";

const ACCEPTED = ["image/png", "image/jpeg", "image/webp"];
const MAX_SIDE = 1024; // outputs are at most 1024 px, so bigger inputs only cost upload time
const MAX_DIRECT_BYTES = 6 * 1024 * 1024;

export class ImageInputError extends Error {}

function readAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new ImageInputError("the file could not be read; choose another"));
    reader.readAsDataURL(blob);
  });
}

function decode(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new ImageInputError("this file is not an image the browser can open; choose another"));
    img.src = src;
  });
}

function reencode(img, type) {
  const scale = Math.min(1, MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
  const canvas = h("canvas", { width: Math.round(img.naturalWidth * scale), height: Math.round(img.naturalHeight * scale) });
  canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
  const dataUrl = type === "image/jpeg" ? canvas.toDataURL("image/jpeg", 0.92) : canvas.toDataURL("image/png");
  return { dataUrl, width: canvas.width, height: canvas.height };
}

/** A picked, dropped or fetched image as {dataUrl, width, height, name}: at most 1024 px a side. */
export async function imageFromBlob(blob, name = "image") {
  if (!blob.size) throw new ImageInputError(`${name} is empty; choose an image`);
  if (blob.type && !blob.type.startsWith("image/")) throw new ImageInputError(`${name} is not an image; choose a PNG, JPEG or WebP`);
  const original = await readAsDataUrl(blob);
  const img = await decode(original);
  const small = Math.max(img.naturalWidth, img.naturalHeight) <= MAX_SIDE;
  if (small && ACCEPTED.includes(blob.type) && blob.size <= MAX_DIRECT_BYTES) {
    return { dataUrl: original, width: img.naturalWidth, height: img.naturalHeight, name };
  }
  return { ...reencode(img, blob.type === "image/jpeg" ? "image/jpeg" : "image/png"), name };
}

/** A same-origin image URL (a generated PNG) as an input image. */
export async function imageFromUrl(url) {
  const response = await fetch(url);
  if (!response.ok) throw new ImageInputError(`the image could not be loaded (HTTP ${response.status})`);
  return imageFromBlob(await response.blob(), url.split("/").pop().split("?")[0]);
}

function fileInput(label, capture) {
  return h("input", { type: "file", accept: capture ? "image/*" : ACCEPTED.join(","), capture: capture || null,
    hidden: true, "aria-label": label, tabindex: "-1" });
}

function buildZone(zone, name, label) {
  const parts = {
    thumb: h("img", { class: "drop-thumb", alt: `${label} preview`, hidden: true }),
    text: h("p", { class: "drop-text" }, "Drop an image here"),
    meta: h("p", { class: "drop-meta", hidden: true }),
    pick: h("button", { type: "button", class: "secondary small", "aria-label": `Choose file: ${label}` }, "Choose file"),
    camera: h("button", { type: "button", class: "secondary small camera", "aria-label": `Camera: ${label}` }, "Camera"),
    remove: h("button", { type: "button", class: "secondary small", hidden: true, "aria-label": `Remove: ${label}` }, "Remove"),
    file: fileInput(`${label} file`, null),
    shot: fileInput(`${label} from the camera`, "environment"),
    // The field's one error slot: a failed pick and a form check both write here, never a second message.
    error: h("p", { class: "field-error", id: `${name}-error`, role: "alert", hidden: true, dataset: { slot: "" } }),
  };
  zone.replaceChildren(parts.thumb, h("div", { class: "drop-body" }, parts.text, parts.meta,
    h("div", { class: "button-row" }, parts.pick, parts.camera, parts.remove), parts.error), parts.file, parts.shot);
  return parts;
}

function droppedUrl(transfer) {
  const url = (transfer.getData("text/uri-list") || "").split("\n")[0].trim();
  if (!url) return null;
  const parsed = new URL(url, location.href);
  return parsed.origin === location.origin ? parsed.pathname + parsed.search : null;
}

/** Wire one drop zone; onChange(value|null) runs after every pick, drop or removal. */
export function createImageInput(zone, { name, label, onChange = () => {} }) {
  const parts = buildZone(zone, name, label);
  const state = { value: null, error: null };

  function show(next) {
    state.value = next;
    state.error = null;
    parts.thumb.hidden = !next;
    parts.text.hidden = Boolean(next);
    parts.meta.hidden = !next;
    parts.remove.hidden = !next;
    parts.error.hidden = true;
    zone.classList.toggle("has-image", Boolean(next));
    if (next) {
      parts.thumb.src = next.dataUrl;
      parts.meta.textContent = `${next.name} · ${next.width} × ${next.height}`;
    } else {
      parts.thumb.removeAttribute("src");
    }
    onChange(next);
  }

  function fail(error) {
    show(null);
    state.error = error instanceof ImageInputError ? error.message : "the image could not be used; choose another";
    parts.error.textContent = `${label}: ${state.error}`;
    parts.error.hidden = false;
  }

  const load = (promise) => promise.then(show).catch(fail);
  const fromFiles = (files) => { if (files && files[0]) load(imageFromBlob(files[0], files[0].name)); };

  parts.pick.addEventListener("click", () => parts.file.click());
  parts.camera.addEventListener("click", () => parts.shot.click());
  parts.remove.addEventListener("click", () => { show(null); parts.pick.focus(); });
  for (const input of [parts.file, parts.shot]) {
    input.addEventListener("change", () => { fromFiles(input.files); input.value = ""; });
  }
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const url = droppedUrl(event.dataTransfer);
    if (event.dataTransfer.files.length) fromFiles(event.dataTransfer.files);
    else if (url) load(imageFromUrl(url));
  });

  return {
    get value() { return state.value; },
    /** Why the last pick failed (null after a good one): the form's check repeats it in the same slot. */
    get error() { return state.error; },
    set: show,
    clear: () => show(null),
    setFromUrl: (url) => imageFromUrl(url).then(show),
  };
}
