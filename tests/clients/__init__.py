"""Client replays: code that talks to sdedge the way an outside client does, written from that client's source.

`seed_000` ... `seed_004` are clients written only from the seed documents in shared/seeds/; `openwebui`
and `sillytavern` replay the HTTP calls those chat front-ends send (read from their public source).
Every replay uses the standard library only, bounded timeouts and condition-based loops, and raises
`StepFailed` naming the step that broke, so a report can say which step of which client fails and how.
"""

from .http import StepFailed

__all__ = ["StepFailed"]
