"""Regenerate .env.example from the Settings fields, so every setting is listed with its comment."""

from __future__ import annotations

from pathlib import Path

from sdedge.config import Settings

HEADER = "# sdedge settings. Copy to .env (or set as environment variables); each line shows the default.\n"


def render() -> str:
    """The file's text: a comment and NAME=default per setting (unset ones commented out)."""
    blocks = [HEADER]
    for name, field in Settings.model_fields.items():
        default = field.default
        value = "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        prefix = "# " if default is None else ""
        extra = " HF_TOKEN is read too." if name == "huggingface_token" else ""
        blocks.append(f"# {field.description}{extra}\n{prefix}{name.upper()}={value}\n")
    return "\n".join(blocks)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / ".env.example"
    target.write_text(render())
    print(f"wrote {target}")
