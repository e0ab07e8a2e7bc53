"""poselift: monocular 3D human pose estimation (2D-to-3D lifting, training, evaluation)."""

__version__ = "0.1.0"

from poselift.models import load_videopose3d  # noqa: E402
from poselift.pretrained import load_pretrained  # noqa: E402

__all__ = ["__version__", "load_pretrained", "load_videopose3d"]
