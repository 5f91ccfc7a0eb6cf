"""Images on the pages (the Digits data set's 8x8 digits)."""

from __future__ import annotations

import numpy as np

__all__ = ["upscale"]


def upscale(image: np.ndarray, factor: int = 8) -> np.ndarray:
    """Nearest-neighbour enlargement (keeps the pixels of an 8x8 digit crisp), in [0, 1]."""
    img = image / max(float(image.max()), 1e-9)
    return np.kron(img, np.ones((factor, factor)))
