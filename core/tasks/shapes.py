"""The one rule for a static shape where a model leaves dimensions open:
used for synthetic data (calibration, evaluation, latency), for the runs
behind the verdicts, and for the shapes a person is offered to fix."""

from __future__ import annotations

__all__ = ["DEFAULT_SEQUENCE", "DEFAULT_IMAGE", "suggest_shape", "shape_words"]

DEFAULT_SEQUENCE = 32  # tokens, frames, steps: long enough to be a real sequence
DEFAULT_IMAGE = 224  # height and width of an image input with open spatial size


def _is_image(shape: tuple[int, ...]) -> bool:
    return len(shape) == 4 and shape[-1] in (1, 3, 4) and (shape[1] < 0 or shape[2] < 0)


def suggest_shape(shape: tuple[int, ...], max_len: int | None = None) -> tuple[int, ...]:
    """Batch 1; the height and width of an image input (4-D, 1/3/4 channels)
    224; any other open dimension (a sequence) the model's own maximum when
    the graph shows one (``max_len``), else 32. Fixed dimensions stay."""
    image = _is_image(shape)
    out = []
    for k, d in enumerate(shape):
        if d > 0:
            out.append(d)
        elif k == 0:
            out.append(1)
        elif image and k in (1, 2):
            out.append(DEFAULT_IMAGE)
        else:
            out.append(max_len if max_len and max_len > 0 else DEFAULT_SEQUENCE)
    return tuple(out)


def shape_words(shapes: dict[str, tuple[int, ...]]) -> str:
    """``token_ids=1,32 padding_mask=1,32``: the form the input-shapes option takes."""
    return " ".join(f"{n}=" + ",".join(str(d) for d in s) for n, s in shapes.items())
