"""The documentation routes: /openapi.json and a self-contained /docs page that renders it."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from sdedge.openapi_spec import document

bp = Blueprint("openapi", __name__)

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document of every route this server answers."""
    return jsonify(document())


@bp.get("/docs")
def docs() -> Response:
    """A human page rendering /openapi.json; loads nothing from other origins."""
    return Response(DOCS_PAGE, mimetype="text/html", headers={"Content-Security-Policy": CSP})


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>sdedge API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:960px;padding:1rem;color:#1d2330}
h1{margin:.2rem 0}h2{margin-top:2rem;border-bottom:1px solid #ccd}code,pre{font:13px ui-monospace,monospace}
details{border:1px solid #dde;border-radius:6px;margin:.4rem 0;padding:.3rem .6rem;background:#fafbfd}
summary{cursor:pointer}.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase}
.get{color:#176}.post{color:#a50}.delete{color:#b22}.put,.patch{color:#55a}
pre{background:#f0f2f6;padding:.5rem;overflow:auto;max-height:28rem}.s{color:#556}
</style></head><body>
<h1>sdedge API</h1><p class="s" id="info">Loading <a href="openapi.json">openapi.json</a>...</p>
<div id="ops"></div><h2>Schemas</h2><div id="schemas"></div>
<script>
function el(tag, text, cls) { const e = document.createElement(tag); if (text) e.textContent = text;
  if (cls) e.className = cls; return e; }
function block(title, value) { const d = el("details"); d.append(el("summary", title), el("pre", JSON.stringify(value, null, 2)));
  return d; }
function operation(path, method, op) {
  const d = el("details"), s = el("summary");
  s.append(el("span", method, "m " + method), el("code", path), el("span", "  " + (op.summary || ""), "s"));
  d.append(s);
  if (op.parameters && op.parameters.length) d.append(block("parameters", op.parameters));
  if (op.requestBody) d.append(block("request body", op.requestBody.content));
  for (const [code, r] of Object.entries(op.responses || {})) d.append(block("response " + code, r.content || r.description));
  return d;
}
fetch("openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("info").textContent = doc.info.description + " Version " + doc.info.version + ".";
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(item)) (byTag[op.tags[0]] = byTag[op.tags[0]] || []).push([path, method, op]);
  const ops = document.getElementById("ops");
  for (const [tag, list] of Object.entries(byTag)) { ops.append(el("h2", tag)); for (const o of list) ops.append(operation(...o)); }
  const schemas = document.getElementById("schemas");
  for (const [name, schema] of Object.entries(doc.components.schemas)) schemas.append(block(name, schema));
}).catch(err => { document.getElementById("info").textContent = "could not load openapi.json: " + err; });
</script></body></html>
"""
