"""The MCP tool server (official `mcp` SDK, `MCPServer`): sdedge's service layer as tools for assistants.

Tools: generate_image, edit_image (img2img, or inpainting with a mask), list_models, list_loras,
get_job, cancel_job. A generation submits a job like every HTTP surface, reports progress while it
runs, and answers with the image(s) as image content plus their URLs. The caller is the HTTP request's
(the security layer put it in the WSGI environ, under PRINCIPAL_KEY) or, over stdio, the local user.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from sdedge import __version__, loras
from sdedge.config import Settings
from sdedge.errors import SdedgeError
from sdedge.housekeeping import BEAT_EVERY_SECONDS
from sdedge.job_store import Job, JobStatus
from sdedge.job_view import ImageForm
from sdedge.mcp_mount import BASE_URL_KEY, PRINCIPAL_KEY
from sdedge.principal import SYSTEM, Principal, anonymous
from sdedge.services import Services

POLL_SECONDS = 1.0  # the longest a progress wait sleeps before it looks at the job again
GENERATED = "/generated/"
INSTRUCTIONS = ("Stable Diffusion on this machine (OpenVINO). generate_image draws from a prompt; edit_image "
                "repaints an image (a data URL, base64, or a /generated/ URL from an earlier result), with a "
                "mask for inpainting. Jobs queue: get_job and cancel_job take the job id a result names.")


def run_stdio(settings: Settings) -> int:
    """`sdedge mcp`: this process's own services and engine, the tools on stdin/stdout; 1 when a server
    already runs on this DATA_DIR (then its /mcp is the way: one engine per machine)."""
    import sys

    from sdedge.services import build_services

    svc = build_services(settings)
    if any(node.id == svc.nodes.node for node in svc.nodes.live(3 * BEAT_EVERY_SECONDS)):
        print(f"sdedge mcp: a server already runs on {settings.data_dir}; point the assistant at its /mcp "
              "(streamable HTTP) instead (README: MCP)", file=sys.stderr)
        return 1
    svc.start_loading()
    svc.worker.start()
    try:
        build_mcp(svc, local=True).run("stdio")
    finally:
        svc.shutdown()
    return 0


def build_mcp(svc: Services, *, local: bool = False) -> MCPServer:
    """The MCP server over svc; local (stdio) calls act as the machine's own user."""
    mcp = MCPServer("sdedge", instructions=INSTRUCTIONS, version=__version__, log_level=svc.settings.log_level)
    tools = _Tools(svc, local)
    for tool in (tools.generate_image, tools.edit_image, tools.list_models, tools.list_loras, tools.get_job,
                 tools.cancel_job):
        mcp.add_tool(tool)
    return mcp


class _Tools:
    """The tool functions, bound to one app's services."""

    def __init__(self, svc: Services, local: bool) -> None:
        self.svc, self.local = svc, local

    # -- the tools -------------------------------------------------------------------------------
    async def generate_image(self, prompt: str, ctx: Context, negative_prompt: str = "", size: str | None = None,
                             steps: int | None = None, seed: int | None = None, model: str | None = None,
                             preset: str | None = None, sampler: str | None = None,
                             guidance_scale: float | None = None) -> list[Image | str]:
        """Generate an image from a prompt. size is WIDTHxHEIGHT (e.g. 512x512); seed -1 or absent is random.
        Reports progress per denoising step; returns the image and its URL."""
        body = _body(prompt=prompt, negative_prompt=negative_prompt, num_inference_steps=steps, seed=seed,
                     model=model, preset=preset, sampler=sampler, guidance_scale=guidance_scale, **_size(size))
        return await self._generate(ctx, "text2img", body, {})

    async def edit_image(self, image: str, prompt: str, ctx: Context, mask: str | None = None,
                         strength: float | None = None, negative_prompt: str = "", size: str | None = None,
                         steps: int | None = None, seed: int | None = None, model: str | None = None,
                         preset: str | None = None) -> list[Image | str]:
        """Repaint an image (data URL, base64 PNG/JPEG/WebP, or a /generated/ URL of an earlier result): img2img,
        or inpainting where mask (white = repaint) is given. strength 0..1 is how much changes."""
        who = self.caller(ctx)
        files = {"image" if mask else "init_image": await anyio.to_thread.run_sync(self._image_bytes, image, who)}
        if mask:
            files["mask"] = await anyio.to_thread.run_sync(self._image_bytes, mask, who)
        body = _body(prompt=prompt, negative_prompt=negative_prompt, num_inference_steps=steps, seed=seed,
                     model=model, preset=preset, strength=strength, **_size(size))
        return await self._generate(ctx, "inpaint" if mask else "img2img", body, files)

    async def list_models(self, ctx: Context) -> dict[str, Any]:
        """The models this server offers and whether each is loaded."""
        self.caller(ctx)
        return await anyio.to_thread.run_sync(self._models)

    async def list_loras(self, ctx: Context) -> dict[str, Any]:
        """The LoRA files this server offers (use them in a prompt as <lora:NAME:WEIGHT>)."""
        self.caller(ctx)
        return {"loras": await anyio.to_thread.run_sync(self._loras)}

    async def get_job(self, job_id: str, ctx: Context) -> dict[str, Any]:
        """A job's status, progress, result URLs or error."""
        who = self.caller(ctx)
        job = await self._call(lambda: self.svc.generation.get(job_id, who))
        return self._view(job, ctx)

    async def cancel_job(self, job_id: str, ctx: Context) -> dict[str, Any]:
        """Cancel a queued job now, or a running one at its next step."""
        who = self.caller(ctx)
        job = await self._call(lambda: self.svc.generation.cancel(job_id, who))
        return self._view(job, ctx)

    # -- helpers ---------------------------------------------------------------------------------
    def caller(self, ctx: Context) -> Principal:
        """Who calls: the HTTP request's caller, or over stdio the machine's own user; ToolError otherwise."""
        environ = self._environ(ctx)
        if environ is None:
            if self.local:
                return SYSTEM
            raise ToolError("no caller: this server is reached through /mcp")
        who: Principal = environ.get(PRINCIPAL_KEY) or anonymous()
        if not who.allowed:
            raise ToolError("this server needs a credential: `Authorization: Bearer <token>`")
        return who

    @staticmethod
    def _environ(ctx: Context) -> dict[str, Any] | None:
        request = getattr(ctx.request_context, "request", None)
        scope = getattr(request, "scope", None) or {}
        found: dict[str, Any] | None = scope.get("wsgi_environ")
        return found

    async def _call(self, work: Callable[[], Any]) -> Any:
        """Run a blocking service call in a worker thread; our errors become tool errors."""
        try:
            return await anyio.to_thread.run_sync(work)
        except SdedgeError as exc:
            raise ToolError(exc.message) from None

    async def _generate(self, ctx: Context, mode: str, body: dict[str, Any],
                        files: dict[str, bytes]) -> list[Image | str]:
        who = self.caller(ctx)
        generation, meter = self.svc.generation, self.svc.submissions
        if meter is not None:
            await self._call(lambda: meter.hit(who.rate_key))
        job = (await self._call(lambda: generation.submit(mode, body, files or None, caller=who))).job
        try:
            job = await self._follow(ctx, job, who)
        except anyio.get_cancelled_exc_class():  # the client gave up: nobody's work is left running for nobody
            with anyio.CancelScope(shield=True):
                await self._call_quietly(lambda: generation.cancel(job.id, who))
            raise
        if job.status is not JobStatus.SUCCEEDED:
            error = job.error or {}
            raise ToolError(f"job {job.id} {job.status.value}: {error.get('message', 'no reason given')}")
        return await anyio.to_thread.run_sync(self._result, job, ctx)

    async def _follow(self, ctx: Context, job: Job, who: Principal) -> Job:
        """Wait for the job to end, reporting each step it reaches."""
        generation, notifier = self.svc.generation, self.svc.generation.notifier
        seen, last = notifier.version(), -1
        while True:
            job = await self._call(lambda: generation.get(job.id, who))
            progress = generation.progress(job)
            if job.status is JobStatus.RUNNING and progress["step"] != last and progress["total"]:
                last = progress["step"]
                await ctx.report_progress(last, progress["total"], f"step {last}/{progress['total']}")
            if job.status.finished:
                if job.status is JobStatus.SUCCEEDED and progress["total"] and last < progress["total"]:
                    await ctx.report_progress(progress["total"], progress["total"], "done")
                return job
            seen = await anyio.to_thread.run_sync(notifier.wait, seen, POLL_SECONDS)

    async def _call_quietly(self, work: Callable[[], Any]) -> None:
        try:
            await self._call(work)
        except ToolError:
            pass  # it ended meanwhile

    def _result(self, job: Job, ctx: Context) -> list[Image | str]:
        generation = self.svc.generation
        blocks: list[Image | str] = []
        for name in generation.result_files(job):
            data = generation.read_file(name)
            if data is not None:
                blocks.append(Image(data=data, format="png"))
        view = self._view(job, ctx)
        summary = {"job_id": job.id, "images": (view.get("result") or {}).get("urls", []),
                   "seeds": (job.result or {}).get("seeds")}
        if self.local:  # the assistant runs on this machine: the files themselves
            summary["paths"] = [str(p) for name in generation.result_files(job) if (p := self.svc.images.path(name))]
        blocks.append(json.dumps(summary))
        return blocks

    def _view(self, job: Job, ctx: Context) -> dict[str, Any]:
        """The job's public view with file URLs (not data URLs: the images travel as image content)."""
        view = self.svc.generation.view(job, ImageForm.URLS)
        base = (self._environ(ctx) or {}).get(BASE_URL_KEY)
        if base and not self.svc.settings.base_url and view.get("result"):
            for key in ("images", "urls"):
                view["result"][key] = [base + url if url.startswith("/") else url for url in view["result"][key]]
        return view

    def _image_bytes(self, value: str, who: Principal) -> bytes:
        """An input image: a /generated/ file the caller may see, else the data URL or base64 as given."""
        if GENERATED in value and not value.startswith("data:"):
            name = value.split(GENERATED, 1)[1].split("?", 1)[0]
            path = self.svc.generation.file_path(name, who)
            if path is None:
                raise ToolError(f"no generated file {name!r}")
            return path.read_bytes()
        text = value.split(",", 1)[1] if value.startswith("data:") else value
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:
            raise ToolError("image must be a data URL, base64, or a /generated/ URL") from None

    def _models(self) -> dict[str, Any]:
        return self.svc.models.list_view()

    def _loras(self) -> list[dict[str, Any]]:
        return [{"name": f.name, "alias": f.alias, "size": f.size}
                for f in loras.list_loras(self.svc.settings.loras_dir)]  # LORA_DIR, default DATA_DIR/loras


def _size(size: str | None) -> dict[str, int]:
    if not size:
        return {}
    width, sep, height = size.lower().partition("x")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit():
        raise ToolError(f"size must look like 512x512, got {size!r}")
    return {"width": int(width), "height": int(height)}


def _body(**fields: Any) -> dict[str, Any]:
    """A request body without the fields left unset (so the server's defaults apply)."""
    return {key: value for key, value in fields.items() if value is not None}
