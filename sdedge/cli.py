"""The `sdedge` command: serve, download, convert, generate, models, users, tokens."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from sdedge import __version__, cli_accounts, cli_generate, cli_models
from sdedge.config import Settings, SettingsError, load_settings
from sdedge.errors import SdedgeError, invalid_from_pydantic
from sdedge.json_logs import configure_logging

log = logging.getLogger("sdedge")


def build_parser() -> argparse.ArgumentParser:
    """All sub-commands and their options."""
    parser = argparse.ArgumentParser(prog="sdedge", description="Stable Diffusion server for edge devices (OpenVINO).")
    parser.add_argument("--version", action="version", version=f"sdedge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server (settings from env and .env)")
    serve.add_argument("--host", help="override HOST")
    serve.add_argument("--port", type=int, help="override PORT")

    download = sub.add_parser("download", help="download the configured model into MODELS_CACHE_DIR")
    download.add_argument("--no-force", action="store_true", help="skip the download when the model is complete")

    convert = sub.add_parser("convert", help="diffusers model (folder or hub id) -> int8 OpenVINO folder; "
                                             "--tiny-autoencoder adds TAESD")
    convert.add_argument("source", help="diffusers folder or hub id (alone with --tiny-autoencoder: an OpenVINO model)")
    convert.add_argument("output", type=Path, nargs="?", help="output folder")
    convert.add_argument("--weight-format", default="int8", choices=["int8", "int4", "fp16", "fp32"])
    convert.add_argument("--tiny-autoencoder", action="store_true",
                         help="add TAESD (SD 1.x/2.x) or TAESDXL (SDXL) as vae_*_tiny/ for FAST_DECODER")
    convert.add_argument("--weights", dest="tiny_weights",
                         help="AutoencoderTiny folder or hub id (default: madebyollin/taesd or madebyollin/taesdxl)")
    convert.add_argument("--from-ir", dest="tiny_ir", nargs="?", const="auto", metavar="REPO",
                         help="download a published OpenVINO export instead (default rupeshs/taesd-ov or "
                              "rupeshs/taesdxl-openvino), no torch needed")

    convert.add_argument("--fuse-lora", dest="fuse_lora", action="append", default=[], metavar="NAME_OR_PATH[:WEIGHT]",
                         help="fuse a LoRA into the OpenVINO model folder SOURCE's weights, written to OUTPUT "
                              "(repeatable; a name is looked up in LORA_DIR, a path to a .safetensors file is used "
                              "as given; weight 1 by default). No per-step cost, 3x3 convolutions included. Needs no "
                              "torch: works from the plain install, not only the convert extra")
    convert.add_argument("--lcm", action=argparse.BooleanOptionalAction, default=None,
                         help="make the fused SD 1.x model an LCM model (LCM scheduler; presets: 4 steps, guidance "
                              "1); default: on when a fused LoRA's name says LCM-LoRA (lcm-lora-sdv1-5)")

    convert.add_argument("--hybrid-int8", action="store_true",
                         help="copy the OpenVINO model folder SOURCE to OUTPUT with a UNet whose convolutions compute "
                              "in int8 (int8 activations, calibrated with NNCF): much less memory and faster where "
                              "OpenVINO computes in f32 (AVX2-only CPUs). Needs nncf (the quantize extra), no torch")
    convert.add_argument("--calibration-samples", type=int, default=32, metavar="N",
                         help="--hybrid-int8: UNet inputs to calibrate on (default 32)")
    convert.add_argument("--calibration-size", type=int, default=512, metavar="PX",
                         help="--hybrid-int8: image size of the calibration trajectories (default 512)")
    convert.add_argument("--calibration-steps", type=int, default=8, metavar="N",
                         help="--hybrid-int8: DDIM steps per calibration trajectory (default 8)")

    bench = sub.add_parser("bench", help="benchmark against the raw runtime and peers (see docs/BENCHMARKS.md)",
                           add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="options of the benchmark (--quick, --help, ...)")

    cli_generate.add_generate(sub)
    sub.add_parser("mcp", help="serve the MCP tools over stdio (for an assistant that launches sdedge itself)")
    cli_accounts.add_commands(sub)
    cli_models.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # the benchmark parses its own options
        return run_bench(argv[1:])
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    try:
        return handler(args)
    except SettingsError as exc:
        print(f"sdedge: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"sdedge: {invalid_from_pydantic(exc).message}", file=sys.stderr)
        return 1
    except SdedgeError as exc:
        print(f"sdedge: {exc.message}", file=sys.stderr)
        return 1


def run_bench(args: list[str]) -> int:
    """`sdedge bench`: run benchmarks/run.py of the checkout around the working folder (not in the wheel)."""
    import subprocess

    script = next((d / "benchmarks" / "run.py" for d in [Path.cwd(), *Path.cwd().parents]
                   if (d / "benchmarks" / "run.py").is_file()), None)
    if script is None:
        print("sdedge bench: the benchmarks live in the source checkout, not in the installed package. Run it "
              "from a clone: `git clone <sdedge repo> && cd sdedge && python benchmarks/run.py --quick` "
              "(docs/BENCHMARKS.md).", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(script), *args])


def _settings(**overrides: object) -> Settings:
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the app under waitress; SIGTERM or Ctrl-C re-queues the running job and exits."""
    import waitress

    from sdedge.app import create_app

    settings = _settings(host=args.host, port=args.port)
    app = create_app(settings)
    # send_bytes=1: flush every write, so Server-Sent Events reach clients as they happen.
    # max_request_body_size: a body over MAX_REQUEST_BYTES is refused from its Content-Length, before
    # waitress buffers it (its own default is 1 GiB).
    server = waitress.create_server(app, host=settings.host, port=settings.port, threads=settings.threads,
                                    ident="sdedge", send_bytes=1, max_request_body_size=settings.max_request_bytes,
                                    **proxy_options(settings))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    log.info("sdedge %s listening on http://%s:%d/", __version__, settings.host, settings.port)
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("stopping: the running job goes back to the queue")
    finally:
        server.close()
        app.extensions["sdedge"].shutdown()
    return 0


def proxy_options(settings: Settings) -> dict[str, object]:
    """waitress's trusted-proxy options: X-Forwarded-* headers are believed from TRUSTED_PROXY only."""
    if not settings.trusted_proxy:
        return {}
    return {"trusted_proxy": settings.trusted_proxy, "trusted_proxy_count": settings.trusted_proxy_count,
            "trusted_proxy_headers": settings.trusted_proxy_headers, "clear_untrusted_proxy_headers": True}


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_download(args: argparse.Namespace) -> int:
    """Download (or, with --no-force, complete) the configured model."""
    from sdedge import model_files

    settings = _settings()
    if args.no_force and model_files.resolve_model(settings) is not None:
        print(f"model already complete at {model_files.resolve_model(settings)}")
        return 0
    path = cli_generate.download_with_bar(settings, force=not args.no_force and not settings.model_is_local)
    print(f"model ready at {path}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Export a diffusers model to int8 OpenVINO IR (optimum-intel), fuse LoRAs, quantize hybrid int8, add TAESD."""
    from sdedge.convert import run_convert
    from sdedge.hybrid_int8 import Calibration
    from sdedge.loras import LoraError

    lora_dir = _settings().loras_dir if args.fuse_lora else None
    hybrid = Calibration(args.calibration_samples, args.calibration_size, args.calibration_steps) \
        if args.hybrid_int8 else None
    try:
        message = run_convert(args.source, args.output, args.weight_format, tiny_autoencoder=args.tiny_autoencoder,
                              tiny_weights=args.tiny_weights, tiny_ir=args.tiny_ir, fuse=args.fuse_lora,
                              lcm=args.lcm, lora_dir=lora_dir, hybrid=hybrid)
    except (RuntimeError, LoraError) as exc:
        print(f"sdedge: {exc}", file=sys.stderr)
        return 1
    print(message)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Load the engine in-process, generate with a progress bar and write PNGs with their parameters."""
    settings = _settings(stable_diffusion_repo_id=args.model)
    return cli_generate.run_generate(args, settings)


def cmd_mcp(args: argparse.Namespace) -> int:
    """The MCP tool server over stdio, on an engine and worker of its own (stdout carries the protocol)."""
    from sdedge.mcp_tools import run_stdio

    return run_stdio(_settings())


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": cmd_serve,
    "download": cmd_download,
    "convert": cmd_convert,
    "generate": cmd_generate,
    "mcp": cmd_mcp,
    **cli_accounts.COMMANDS,
    **cli_models.COMMANDS,
}
