"""Ray's experiment snapshot (`experiment_state-*.json`), read one trial at a time.

The snapshot holds each trial's state and run metadata as JSON strings inside its own JSON, about
20 KB a trial. Decoding the file whole holds its text and all those strings at once: 40 KB a
trial (80 MiB for 2,000), at the end of a sweep, where it was the peak of the driver's memory.
This decodes the trials one by one from a chunk of the file at a time.
"""

import json
import re
from collections.abc import Iterator
from typing import TextIO

CHUNK_CHARS = 1 << 20
# Ray writes the trials first: {"trial_data": [[state, metadata], ...], "runner_data": ...}.
_TRIALS_START = re.compile(r'\s*\{\s*"trial_data"\s*:\s*\[')
_SEPARATOR = re.compile(r"[\s,]*")


def snapshot_trials(path: str, chunk_chars: int = CHUNK_CHARS) -> Iterator[tuple[dict, dict]]:
    """Each trial's (state, run metadata) in the snapshot at `path`, in the snapshot's order.

    A snapshot laid out otherwise than Ray writes it is decoded whole, as before.
    """
    with open(path) as handle:
        text = handle.read(chunk_chars)
        start = _TRIALS_START.match(text)
        if start is None:
            text += handle.read()
            for state, metadata in json.loads(text)["trial_data"]:
                yield json.loads(state), json.loads(metadata)
            return
        yield from _decode_trials(handle, text, start.end(), chunk_chars)


def _decode_trials(handle: TextIO, text: str, position: int,
                   chunk_chars: int) -> Iterator[tuple[dict, dict]]:
    """The [state, metadata] pairs of the trial list that starts at `position` of `text`, reading
    more of `handle` whenever the next pair runs past what has been read."""
    decoder = json.JSONDecoder()
    while True:
        position = _SEPARATOR.match(text, position).end()
        if text.startswith("]", position):
            return
        try:
            (state, metadata), end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            more = handle.read(chunk_chars)
            if not more:
                raise
            # Keep only the unread part, so the text never holds more than a chunk and a trial.
            text, position = text[position:] + more, 0
            continue
        yield json.loads(state), json.loads(metadata)
        position = end
