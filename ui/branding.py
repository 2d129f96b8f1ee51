"""The app's icon, drawn in code (no binary asset, no request to a font CDN:
a ``:material/...:`` page icon would make the browser fetch it from Google)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["app_icon"]

ORANGE = (255, 111, 0, 255)


@lru_cache(maxsize=1)
def app_icon() -> Any:
    """A 64×64 chip: an orange rounded square with a white die and pins."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((2, 2, 61, 61), radius=14, fill=ORANGE)
    d.rounded_rectangle((18, 18, 45, 45), radius=4, fill=(255, 255, 255, 255))
    d.rectangle((25, 25, 38, 38), fill=ORANGE)
    for i in (22, 30, 38):
        for a, b in (
            ((i, 9), (i + 3, 16)),
            ((i, 47), (i + 3, 54)),
            ((9, i), (16, i + 3)),
            ((47, i), (54, i + 3)),
        ):
            d.rectangle((*a, *b), fill=(255, 255, 255, 255))
    return img
