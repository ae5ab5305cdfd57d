"""`sdedge generate` and the progress bars of `sdedge download`.

    sdedge generate PROMPT [-o out.png] [--model REPO_OR_FOLDER] [--preset fast|balanced|quality]
                   [--lora NAME:WEIGHT ...] [--init-image IN.png [--mask MASK.png]] [--strength S] [-n N]
                   [--decoder full|tiny] [--steps ...] [--guidance-scale ...] [--seed ...] [--sampler ...]

The request goes through the same models, limits, presets and LoRA checks as the HTTP API; the engine
runs in this process and a tqdm bar shows steps, rate and ETA.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sdedge.config import Settings
from sdedge.errors import InvalidRequest


def add_generate(sub: argparse._SubParsersAction) -> None:
    """The `generate` sub-command and its options."""
    generate = sub.add_parser("generate", help="generate images from the command line (progress bar, presets, LoRA)")
    generate.add_argument("prompt")
    generate.add_argument("-o", "--output", type=Path, default=Path("sdedge.png"),
                          help="PNG file to write (with -n: NAME-1.png, NAME-2.png... after the first)")
    generate.add_argument("--model", help="hub repo id or local OpenVINO model folder (STABLE_DIFFUSION_REPO_ID)")
    generate.add_argument("--preset", choices=["fast", "balanced", "quality"],
                          help="the model family's preset (explicit options win)")
    generate.add_argument("--lora", action="append", default=[], metavar="NAME:WEIGHT",
                          help="a LoRA of LORA_DIR (repeatable); WEIGHT defaults to 1")
    generate.add_argument("--decoder", choices=["full", "tiny"], help="full VAE or the tiny autoencoder")
    generate.add_argument("--init-image", type=Path, help="image-to-image from this picture (with --mask: inpaint)")
    generate.add_argument("--mask", type=Path, help="inpainting mask (white repaints); needs --init-image")
    generate.add_argument("--strength", type=float, help="how much the init image changes (0..1)")
    generate.add_argument("-n", "--num-images", type=int, default=1, help="images to make (seed, seed+1, ...)")
    generate.add_argument("--negative-prompt", default="")
    generate.add_argument("--steps", type=int)
    generate.add_argument("--guidance-scale", type=float)
    generate.add_argument("--width", type=int)
    generate.add_argument("--height", type=int)
    generate.add_argument("--seed", type=int)
    generate.add_argument("--sampler")
    generate.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_lora(text: str) -> dict[str, Any]:
    """'name:0.7' -> {"name": "name", "weight": 0.7}; 'name' -> weight 1 (names may hold ':' before the last)."""
    name, _, weight = text.rpartition(":") if ":" in text else (text, "", "1")
    try:
        return {"name": name, "weight": float(weight)}
    except ValueError:
        message = f"--lora {text!r}: write NAME:WEIGHT, e.g. --lora detail:0.6"
        raise InvalidRequest(message, [{"field": "loras", "message": message, "type": "syntax"}]) from None


def request_body(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The mode and native request body the options describe (images as bytes)."""
    if args.mask is not None and args.init_image is None:
        raise InvalidRequest("--mask needs --init-image", [{"field": "mask", "message": "needs --init-image"}])
    fields: dict[str, Any] = {
        "prompt": args.prompt, "negative_prompt": args.negative_prompt, "num_inference_steps": args.steps,
        "guidance_scale": args.guidance_scale, "width": args.width, "height": args.height, "seed": args.seed,
        "sampler": args.sampler, "num_images": args.num_images, "preset": args.preset, "decoder": args.decoder,
        "loras": [parse_lora(item) for item in args.lora] or None, "strength": args.strength,
    }
    mode = "text2img"
    if args.init_image is not None:
        mode = "inpaint" if args.mask is not None else "img2img"
        fields["image" if args.mask is not None else "init_image"] = _read(args.init_image)
        if args.mask is not None:
            fields["mask"] = _read(args.mask)
    elif args.strength is not None:
        raise InvalidRequest("--strength needs --init-image", [{"field": "strength", "message": "needs --init-image"}])
    return mode, {key: value for key, value in fields.items() if value is not None}


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}", [{"field": str(path), "message": "unreadable"}]) \
            from None


def run_generate(args: argparse.Namespace, settings: Settings) -> int:
    """Validate, load the engine, resolve preset and LoRAs, generate with a progress bar, write the PNGs."""
    from tqdm.auto import tqdm

    from sdedge import generation_extras
    from sdedge.engine.loader import EngineLoader
    from sdedge.engine.params import ImageInputs, StepEvent
    from sdedge.file_store import FileStore
    from sdedge.image_fitting import default_size
    from sdedge.infotext import infotext
    from sdedge.input_files import fit_inputs
    from sdedge.modes import mode_spec
    from sdedge.uploads import decode_image

    mode, body = request_body(args)
    request = mode_spec(mode).request_model.model_validate(body)
    decoded = {name: decode_image(name, value, settings, background="black" if name == "mask" else "white")
               for name, value in request.image_fields().items()}
    source = next(iter(decoded.values()), None)
    size = default_size(source, settings) if source is not None else None
    request.to_params(settings, size)  # the limits, before minutes of loading
    loader = EngineLoader(settings)
    engine = loader.load_now()
    model_dir = Path(loader.model_path) if loader.model_path else None
    extras = generation_extras.resolve(request, settings, generation_extras.JobModel.at(model_dir, loader.model_name()))
    params = generation_extras.apply(request.to_params(settings, size, extras.preset), extras)
    inputs = ImageInputs(**fit_inputs(request, decoded, source.size, params)) if source is not None else None
    bar = tqdm(total=params.steps * params.num_images, unit="step", desc="generating", disable=args.no_progress,
               file=sys.stderr)

    def on_step(event: StepEvent) -> bool:
        bar.total = event.total_steps * event.num_images  # some samplers run one step more than asked
        bar.n = event.image_index * event.total_steps + event.step
        bar.refresh()
        return False

    try:
        output = engine.generate(params, on_step, inputs)
        bar.n = bar.total  # genai reports steps from a worker thread; the last may land after generate returns
        bar.refresh()
    finally:
        bar.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    store = FileStore(args.output.parent.resolve())
    for index, (image, seed) in enumerate(zip(output.images, output.seeds)):
        stem = args.output.stem if index == 0 else f"{args.output.stem}-{index}"
        store.save(stem, image, infotext(params, seed, loader.model_name()))
        print(f"wrote {args.output.parent / (stem + '.png')} (seed {seed})")
    print(f"{len(output.images)} image(s), {params.steps} steps, guidance {params.guidance_scale:g}, "
          f"{params.sampler}, {params.decoder or 'full'} decoder, {output.timings.get('generate_ms', 0):.0f} ms")
    return 0


def download_with_bar(settings: Settings, force: bool) -> Path:
    """Download the configured model with one bar over all its bytes (rate, ETA)."""
    from tqdm.auto import tqdm

    from sdedge import model_files

    bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc="downloading", file=sys.stderr)

    def on_progress(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        return model_files.download_model(settings, force=force, show_progress=False, on_progress=on_progress)
    finally:
        bar.close()
