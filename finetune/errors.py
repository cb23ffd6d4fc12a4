"""The errors user gameplay can cause during ingest, one class per kind of problem.

All are ValueErrors, so the CLI prints them as one line (exit status 2) and the app can show
them as validation feedback; each message names the file and the frame, line or entry.
"""


class IngestError(ValueError):
    """User gameplay that cannot be ingested; the message says what is wrong and where."""


class ActionLogError(IngestError):
    """An action log that is malformed, names unknown keys, or skips/repeats frames."""


class CorruptInputError(IngestError):
    """A video, image, archive or shard that cannot be read to the end (corrupt or truncated)."""


class LengthMismatchError(IngestError):
    """Frames and action log disagree in length, or the recording is too short to train on."""


class LimitError(IngestError):
    """An input over a configured size, length or resolution limit."""


class UnsafeArchiveError(IngestError):
    """A zip whose paths escape its folder, that holds links, or that expands beyond the limit."""
