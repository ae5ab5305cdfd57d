// The inpainting mask: painted with pointer events (mouse, pen, touch) on a canvas over the image.
// The canvas has the image's own pixel size; strokes are kept in a tint colour and exported as
// white (repaint) on black (keep).

const TINT = "rgb(255, 64, 129)";

export function createMaskEditor({ root, image, canvas, brush, brushOut, onChange = () => {} }) {
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  let pointerId = null;
  let last = null;
  let painted = false;

  const erasing = () => root.querySelector("input[name=mask-tool]:checked")?.value === "erase";
  const scale = () => canvas.width / Math.max(1, canvas.getBoundingClientRect().width);

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    const s = scale();
    return { x: (event.clientX - rect.left) * s, y: (event.clientY - rect.top) * s };
  }

  function stroke(from, to) {
    ctx.save();
    ctx.globalCompositeOperation = erasing() ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = TINT;
    ctx.lineWidth = Number(brush.value) * scale();
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    if (from.x === to.x && from.y === to.y) {
      ctx.arc(to.x, to.y, ctx.lineWidth / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
    }
    ctx.restore();
    painted = true;
  }

  function down(event) {
    if (pointerId !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    pointerId = event.pointerId;
    canvas.setPointerCapture(pointerId);
    last = point(event);
    stroke(last, last);
  }

  function move(event) {
    if (event.pointerId !== pointerId) return;
    event.preventDefault();
    const next = point(event);
    stroke(last, next);
    last = next;
  }

  function up(event) {
    if (event.pointerId !== pointerId) return;
    pointerId = null;
    last = null;
    onChange();
  }

  canvas.addEventListener("pointerdown", down);
  canvas.addEventListener("pointermove", move);
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", up);
  brush.addEventListener("input", () => { brushOut.value = brush.value; });

  function fill() {
    ctx.save();
    ctx.globalCompositeOperation = "source-over";
    ctx.fillStyle = TINT;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.restore();
    painted = true;
    onChange();
  }

  function clear() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    painted = false;
    onChange();
  }

  function invert() {
    const copy = document.createElement("canvas");
    copy.width = canvas.width;
    copy.height = canvas.height;
    copy.getContext("2d").drawImage(canvas, 0, 0);
    ctx.save();
    ctx.globalCompositeOperation = "copy";
    ctx.fillStyle = TINT;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.globalCompositeOperation = "destination-out";
    ctx.drawImage(copy, 0, 0);
    ctx.restore();
    painted = true;
    onChange();
  }

  /** Show the whole mask, clear of the Generate bar (the scrollers' scroll-padding keeps its room). At once,
   * not smoothly: a finger that lands while the page still glides would paint somewhere else. */
  function reveal() {
    if (canvas.getClientRects().length) canvas.scrollIntoView({ block: "nearest" }); // else another mode is shown
  }

  /** Show an image (an input value), start a fresh, empty mask of its size, and bring it into view. */
  function setImage(value) {
    root.hidden = !value;
    if (!value) return;
    image.src = value.dataUrl;
    canvas.width = value.width;
    canvas.height = value.height;
    canvas.parentElement.style.setProperty("--aspect", (value.width / value.height).toFixed(5));
    painted = false;
    requestAnimationFrame(reveal);
  }

  /** True when some pixel is painted. */
  function isEmpty() {
    if (!painted || !canvas.width) return true;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    for (let i = 3; i < data.length; i += 4) if (data[i] > 127) return false;
    return true;
  }

  /** The mask as a PNG data URL of the image's size: white where painted, black elsewhere. */
  function toDataUrl() {
    const out = document.createElement("canvas");
    out.width = canvas.width;
    out.height = canvas.height;
    const octx = out.getContext("2d");
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const { data } = pixels;
    for (let i = 0; i < data.length; i += 4) {
      const v = data[i + 3] > 127 ? 255 : 0;
      data[i] = data[i + 1] = data[i + 2] = v;
      data[i + 3] = 255;
    }
    octx.putImageData(pixels, 0, 0);
    return out.toDataURL("image/png");
  }

  return { setImage, fill, clear, invert, isEmpty, toDataUrl };
}
