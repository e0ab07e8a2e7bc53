"""One exception type for every user-facing failure.

The CLI catches :class:`PoseliftError` and prints its message with a non-zero
exit code instead of a traceback, so messages must name the file or field at
fault and say what was expected.
"""

from __future__ import annotations


class PoseliftError(Exception):
    """A problem with the user's input (file, option, data) rather than a bug."""


class DataFormatError(PoseliftError):
    """A data file exists but does not have the expected keys, layout or values."""


class CheckpointError(PoseliftError):
    """A checkpoint or weights file is missing, unsafe or does not fit the model."""


class ConfigError(PoseliftError):
    """A configuration value or command-line option is invalid."""


class VideoError(PoseliftError):
    """A video file is missing, unreadable, corrupt or has no frames."""


class KeypointFormatError(DataFormatError):
    """A 2D keypoint file (COCO JSON, OpenPose, CSV, npz) or model output has the wrong layout."""


class NoPersonError(PoseliftError):
    """No person was found in the input."""


class OutputError(PoseliftError):
    """An output path cannot be written."""
