"""Following a run folder: one poll of the engine's ``RunFollower`` (file lines -> engine events).

A poll is a job because catching up with a long run reads its whole metrics.jsonl once (100,000
steps: about 15 MB and a few seconds of parsing): the window stays responsive meanwhile. Later
polls read only what was added (a stat per file when nothing was).
"""

from __future__ import annotations


def poll_run(_state, follower) -> list:
    """The events the followed run's folder gained since the last poll."""
    return follower.poll()
