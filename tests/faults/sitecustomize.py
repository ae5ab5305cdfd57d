"""Fault injection for test server processes (on PYTHONPATH only in tests/test_faults.py).

SDEDGE_FAULT_KILL_IN_PNG_WRITE=<flag file>: while the flag file exists, writing a result PNG (not a
preview) writes half a file and then SIGKILLs the process: a crash in the middle of the PNG write.
"""

from __future__ import annotations

import os
import signal

_FLAG = os.environ.get("SDEDGE_FAULT_KILL_IN_PNG_WRITE")

if _FLAG:
    from PIL import Image, PngImagePlugin

    _original = PngImagePlugin._save

    def _killing_save(im, fp, filename, chunk=PngImagePlugin.putchunk, save_all=False):  # type: ignore[no-untyped-def]
        name = str(filename)
        if name.endswith(".png.part") and "-preview" not in name and os.path.exists(_FLAG):
            fp.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
            fp.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return _original(im, fp, filename, chunk, save_all)

    Image.register_save("PNG", _killing_save)
