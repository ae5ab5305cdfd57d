"""Live step previews through the tiny autoencoder (TAESD) at the image's full size, at a bounded cost.

Three pieces:

- `TinyDecoder`: the model's ``vae_decoder_tiny`` IR compiled once per engine (on the CPU, through
  ``openvino.Core``) with its own infer request, so a preview never touches a genai pipeline (they run
  one generate at a time, and the UNet's is running);
- `PreviewBudget`: per job, the seconds spent on tiny previews (decode and PNG write) may not exceed
  PREVIEW_BUDGET x the job's elapsed wall time. The UNet uses every core, so a decode running beside it slows it down by about the decode's
  own wall time: bounding that bounds the cost to the generation. A decode that would break the budget
  (predicted from the last one) is skipped;
- `LivePreviews`: one job's previews. The step callback (inside genai's C++ callback) only hands over
  the latent it already copied (`offer`: no decode, never raises); a small thread decodes the newest one
  and gives the image to the sink. Until the first tiny preview of a job is drawn, a skipped one is drawn
  by the cheap linear map instead, so a page never waits blank for the budget to fill.

Errors: a decode that fails is logged once, and the job goes on with the cheap previews.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import numpy as np
from PIL import Image

from sdedge.engine.previews import preview_image

log = logging.getLogger(__name__)

DECODER_DIR = "vae_decoder_tiny"
# engine properties the CPU plugin takes at compile time (ENABLE_MMAP is genai's/Core's, not a compile one)
_COMPILE_KEYS = ("CACHE_DIR", "INFERENCE_NUM_THREADS", "PERFORMANCE_HINT")
WARMUP_LATENT = (1, 4, 64, 64)  # SD 1.5 at 512x512: the first decode's cost estimate comes from this one

Sink = Callable[[Image.Image], None]


class PreviewDecoder(Protocol):
    """What a job's previews need from a decoder (TinyDecoder; tests pass slow or failing ones)."""

    def decode(self, latent: np.ndarray) -> Image.Image:
        """The latent as an image at the full size."""
        ...

    def estimate(self, latent: np.ndarray) -> float:
        """Seconds a decode of this latent is expected to take."""
        ...


class TinyDecoder:
    """The tiny VAE decoder of one model, compiled once, with its own infer request (one decode at a time)."""

    def __init__(self, folder: Path, properties: dict[str, Any] | None = None) -> None:
        import openvino as ov

        config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        self.scaling = float(config.get("scaling_factor", 1.0))  # TAESD: 1.0 and 0.0 (sdedge/tiny_autoencoder.py)
        self.shift = float(config.get("shift_factor", 0.0))
        options = {key: value for key, value in (properties or {}).items() if key in _COMPILE_KEYS}
        compiled = ov.Core().compile_model(str(folder / "openvino_model.xml"), "CPU", options)
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()
        self.seconds_per_pixel = 0.0  # latent pixels; updated by every decode, read for the first one of a job
        self.decode(np.zeros(WARMUP_LATENT, np.float32))  # first inference allocates: keep it out of jobs

    @classmethod
    def for_model(cls, model_path: Path, properties: dict[str, Any] | None = None) -> TinyDecoder | None:
        """The model's tiny decoder, or None when it has none (or it does not compile: previews stay cheap)."""
        folder = Path(model_path) / DECODER_DIR
        if not (folder / "openvino_model.xml").is_file():
            return None
        try:
            return cls(folder, properties)
        except Exception as exc:  # noqa: BLE001 - a preview decoder is optional; the model still serves
            log.warning("the tiny preview decoder of %s did not compile (%s); previews stay approximate",
                        model_path, exc)
            return None

    def decode(self, latent: np.ndarray) -> Image.Image:
        """A (1, 4, h, w) latent in the UNet's scaled space -> the (8w, 8h) RGB image."""
        sample = np.ascontiguousarray(latent.reshape(-1, *latent.shape[-3:])[:1], dtype=np.float32)
        sample = sample / self.scaling + self.shift
        started = time.perf_counter()
        with self._lock:
            result = self._request.infer({0: sample})
        output = np.asarray(next(iter(result.values())))[0]
        self.seconds_per_pixel = (time.perf_counter() - started) / (sample.shape[-1] * sample.shape[-2])
        rgb = np.clip((output.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(rgb)

    def estimate(self, latent: np.ndarray) -> float:
        """Seconds a decode of this latent is expected to take (from the last decode's cost per pixel)."""
        return self.seconds_per_pixel * latent.shape[-1] * latent.shape[-2]


class PreviewBudget:
    """One job's preview decoding time, kept within a fraction of the job's elapsed wall time."""

    def __init__(self, fraction: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.fraction, self.clock = fraction, clock
        self.started = clock()
        self.spent = 0.0
        self.decoded = self.skipped = 0

    def allows(self, expected_seconds: float) -> bool:
        """True when a decode of about expected_seconds keeps the job within its budget."""
        return self.spent + expected_seconds <= self.fraction * (self.clock() - self.started)

    def charge(self, seconds: float) -> None:
        """Count a decode that ran."""
        self.spent += seconds
        self.decoded += 1

    @property
    def share(self) -> float:
        """Decoding seconds as a fraction of the elapsed time so far."""
        return self.spent / max(1e-9, self.clock() - self.started)


class LivePreviews:
    """One job's tiny-decoder previews: the newest offered latent is decoded on a thread of its own."""

    def __init__(self, decoder: PreviewDecoder, fraction: float, width: int, height: int, sink: Sink, *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.decoder, self.width, self.height, self.sink = decoder, width, height, sink
        self.budget = PreviewBudget(fraction, clock)
        self.clock = clock
        self._last_seconds: float | None = None  # this job's last decode
        self._pending: np.ndarray | None = None
        self._wake = threading.Condition()
        self._closed = False
        self.failed = False
        self.drawn_tiny = False
        self.offered = self.replaced = self.handled = 0  # latents handed over, overtaken, decided upon
        self.sunk = 0  # previews given to the sink (tiny or cheap)
        self._thread = threading.Thread(target=self._run, name="sdedge-tiny-preview", daemon=True)
        self._thread.start()

    @classmethod
    def for_job(cls, engine: object, decoder_setting: str, fraction: float, width: int, height: int,
                sink: Sink) -> LivePreviews | None:
        """A job's tiny previews when PREVIEW_DECODER=tiny and the engine has the decoder; None: the cheap map."""
        decoder = getattr(engine, "preview_decoder", None)  # mock and remote engines have none
        if decoder_setting != "tiny" or not isinstance(decoder, TinyDecoder):
            return None
        return cls(decoder, fraction, width, height, sink)

    @staticmethod
    def fits(latent: np.ndarray | None) -> TypeGuard[np.ndarray]:
        """True for latents the tiny decoder reads (4 channels); FLUX and SD3 latents are not."""
        return latent is not None and latent.ndim >= 3 and latent.shape[-3] == 4

    def offer(self, latent: np.ndarray) -> None:
        """Hand over a step's latent (already a copy); the newest one wins. Called inside genai's callback:
        no work here but a store and a notify."""
        with self._wake:
            self.replaced += self._pending is not None  # the thread was busy: that one is skipped
            self.offered += 1
            self._pending = latent
            self._wake.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Stop at the job's end: a decode under way finishes, nothing pending is drawn after it."""
        with self._wake:
            self._closed = True
            self._pending = None
            self._wake.notify()
        self._thread.join(timeout)

    def _take(self) -> np.ndarray | None:
        with self._wake:
            while self._pending is None and not self._closed:
                self._wake.wait()
            latent, self._pending = self._pending, None
            return None if self._closed else latent

    def _run(self) -> None:
        while (latent := self._take()) is not None:
            started, tiny = self.clock(), False
            try:
                image, tiny = self._draw(latent)
                if image is not None and not self._closed:
                    self.sink(image)
                    self.sunk += 1
            except Exception:  # noqa: BLE001 - a preview never fails the job; the thread goes on
                log.exception("writing a step preview failed")
            finally:
                if tiny:  # the PNG write counts too: it runs beside the UNet as the decode does
                    self._last_seconds = self.clock() - started
                    self.budget.charge(self._last_seconds)
                self.handled += 1

    def _draw(self, latent: np.ndarray) -> tuple[Image.Image | None, bool]:
        """The preview to show (None: none this time), and whether the tiny decoder drew it."""
        expected = self._last_seconds if self._last_seconds is not None else self.decoder.estimate(latent)
        if self.failed:
            return preview_image(latent, self.width, self.height), False
        if not self.budget.allows(expected):
            self.budget.skipped += 1
            return (None if self.drawn_tiny else preview_image(latent, self.width, self.height)), False
        try:
            image = self.decoder.decode(latent)
        except Exception as exc:  # noqa: BLE001 - the job goes on with the cheap previews
            log.warning("the tiny preview decoder failed (%s); this job's previews stay approximate", exc)
            self.failed = True
            return preview_image(latent, self.width, self.height), False
        self.drawn_tiny = True
        if image.size != (self.width, self.height):  # sizes that are not multiples of 8
            image = image.resize((self.width, self.height), Image.Resampling.BILINEAR)
        return image, True
