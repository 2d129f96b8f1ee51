"""What worker tasks return: frozen, typed results (``to_dict``/``from_dict``
through ``core.serial``, the one serialization rule)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from core.serial import Serializable

__all__ = [
    "SignatureInput",
    "ConversionResult",
    "DataSource",
    "Thresholds",
    "Flag",
    "OutputMetrics",
    "AccuracyResult",
    "Reference",
    "ThreadLatency",
    "LatencyResult",
    "reference_key",
    "DEGENERATE",
]


# ---------------------------------------------------------------- conversion


@dataclass(frozen=True)
class SignatureInput(Serializable):
    name: str
    dtype: str
    shape: tuple[int, ...]  # -1 where dynamic


@dataclass(frozen=True)
class ConversionResult(Serializable):
    output_path: str
    output_size: int
    output_sha256: str
    seconds: float  # converter time alone, load included
    preset: str
    options: dict[str, Any]
    input_kind: str
    input_name: str
    input_size: int
    signature_key: str
    signature_keys: tuple[str, ...]
    inputs: tuple[SignatureInput, ...]
    tf_version: str
    warnings: tuple[str, ...] = field(default=())
    # inputs left dynamic -> a static shape to offer (batch 1, sequence 32, image 224)
    suggested_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


# ---------------------------------------------------------------- accuracy


class DataSource(str, enum.Enum):
    USER = "user"  # evaluation data the person gave
    CALIBRATION = "calibration"  # no evaluation data: the calibration samples
    SYNTHETIC = "synthetic"  # neither: random inputs (agreement only, no accuracy)


@dataclass(frozen=True)
class Thresholds(Serializable):
    """The rule of the recommendation and of the verdicts."""

    top1_agreement: float = 0.99  # classifiers: agreement with the original
    cosine: float = 0.99  # other outputs: cosine similarity ...
    snr_db: float = 20.0  # ... and signal-to-noise ratio
    check_top1: float = 0.95  # below: "bad"; between: "check"
    check_cosine: float = 0.95
    check_snr_db: float = 10.0
    # signal fidelity every output needs, classifiers included: below either,
    # agreement means nothing (an int8 model that collapsed can still "agree")
    floor_cosine: float = 0.9
    floor_snr_db: float = 10.0


@dataclass(frozen=True)
class Flag(Serializable):
    """Something a person should know about a measurement, in words."""

    code: str  # e.g. large_error, calibration_constant, input_clipped, synthetic_data
    severity: str  # "error" | "warning" | "info"
    message: str


@dataclass(frozen=True)
class OutputMetrics(Serializable):
    """How one output of the ``.tflite`` differs from the original's."""

    __derived__ = ("accuracy_drop",)

    name: str
    shape: tuple[int, ...]  # per sample
    kind: str  # "classifier" | "binary" | "values"
    max_abs_error: float
    mean_abs_error: float
    rmse: float
    # cosine similarity of each sample's output vector, averaged over the samples
    # (outputs of one value per sample: of the vector over the samples)
    cosine: float
    snr_db: float | None  # 10·log10(Σ ref² / Σ error²); None: no error at all
    top1_agreement: float | None = None
    accuracy_original: float | None = None
    accuracy_tflite: float | None = None
    # degenerate comparisons (``core.tasks.metrics``): never "good"
    nonfinite: int = 0  # NaN or Inf values in the .tflite's output
    collapsed: bool = False  # the .tflite's output is constant across samples, the original's not
    constant_original: bool = False  # the original's output is constant across samples
    original_classes: int | None = None  # distinct top-1 classes the original predicts

    @property
    def is_classifier(self) -> bool:
        return self.kind in ("classifier", "binary")

    @property
    def top1_meaningful(self) -> bool:
        """Agreement says something only if the original predicts more than one class."""
        return self.top1_agreement is not None and (self.original_classes or 2) > 1

    @property
    def accuracy_drop(self) -> float | None:
        if self.accuracy_original is None or self.accuracy_tflite is None:
            return None
        return self.accuracy_original - self.accuracy_tflite


# Flag codes of a comparison that cannot be called good (``core.tasks.metrics``).
DEGENERATE = frozenset(
    {"non_finite", "collapsed_output", "low_fidelity", "constant_original", "one_class_original"}
)


def _min_snr(outputs: tuple[OutputMetrics, ...]) -> float | None:
    vals = [o.snr_db for o in outputs if o.snr_db is not None]
    return min(vals) if vals else None


@dataclass(frozen=True)
class AccuracyResult(Serializable):
    """The ``.tflite`` against the original on the same inputs."""

    __derived__ = ("summary",)

    tflite: str  # file name
    preset: str | None
    signature_key: str
    data_source: DataSource
    data_name: str
    samples: int
    outputs: tuple[OutputMetrics, ...]
    verdict: str  # "good" | "check" | "bad"
    verdict_text: str
    flags: tuple[Flag, ...] = ()
    seconds: float = 0.0

    @property
    def primary(self) -> OutputMetrics:
        """The first classifier output, else the first output."""
        return next((o for o in self.outputs if o.is_classifier), self.outputs[0])

    @property
    def summary(self) -> dict[str, Any]:
        """The headline numbers (the sweep table's ``metrics``)."""
        p = self.primary
        return {
            "output": p.name,
            "kind": p.kind,
            "top1_agreement": p.top1_agreement,
            "accuracy": p.accuracy_tflite,
            "accuracy_original": p.accuracy_original,
            "accuracy_drop": p.accuracy_drop,
            "cosine": min(o.cosine for o in self.outputs),
            "snr_db": _min_snr(self.outputs),
            "max_abs_error": max(o.max_abs_error for o in self.outputs),
            "mean_abs_error": p.mean_abs_error,
            "rmse": p.rmse,
            "verdict": self.verdict,
            "samples": self.samples,
            "data_source": self.data_source.value,
            "top1_meaningful": p.top1_meaningful,
            "degenerate": sorted({f.code for f in self.flags if f.code in DEGENERATE}),
        }

    def to_text(self) -> str:
        lines = [
            f"{self.tflite} vs the original, on {self.samples} {self._source_words()}:",
            f"verdict: {self.verdict} — {self.verdict_text}",
        ]
        for o in self.outputs:
            snr = "identical" if o.snr_db is None else f"{o.snr_db:.1f} dB"
            lines.append(
                f"  {o.name} {list(o.shape)} ({o.kind}): max |err| {o.max_abs_error:.4g}, "
                f"mean |err| {o.mean_abs_error:.4g}, RMSE {o.rmse:.4g}, cosine {o.cosine:.5f}, "
                f"SNR {snr}"
            )
            if o.top1_agreement is not None:
                lines.append(f"    top-1 agreement with the original: {o.top1_agreement:.2%}")
            drop = o.accuracy_drop
            if o.accuracy_original is not None and o.accuracy_tflite is not None:
                lines.append(
                    f"    accuracy: original {o.accuracy_original:.2%}, tflite "
                    f"{o.accuracy_tflite:.2%} (drop {(drop or 0.0) * 100:+.2f} points)"
                )
        for f in self.flags:
            lines.append(f"{f.severity}: {f.message}")
        return "\n".join(lines)

    def _source_words(self) -> str:
        return {
            DataSource.USER: f"samples from {self.data_name}",
            DataSource.CALIBRATION: f"calibration samples ({self.data_name})",
            DataSource.SYNTHETIC: "random synthetic samples",
        }[self.data_source]


def reference_key(direction: str, name: str) -> str:
    """The one layout of a reference ``.npz``: ``in__NAME``, ``out__NAME``
    (``labels`` is stored under its own name)."""
    if direction not in ("in", "out"):
        raise ValueError(direction)
    return f"{direction}__{name}"


@dataclass(frozen=True)
class Reference(Serializable):
    """The original model's outputs on the evaluation inputs, kept in a .npz
    (keys from ``reference_key``, plus ``labels``)."""

    npz_path: str
    model_name: str
    signature_key: str
    data_source: DataSource
    data_name: str
    samples: int
    inputs: dict[str, dict[str, Any]]  # name -> {"dtype", "shape"}
    outputs: dict[str, str]  # name -> kind ("classifier" | "binary" | "values")
    has_labels: bool
    flags: tuple[Flag, ...] = ()
    tf_version: str = ""
    seconds: float = 0.0

    def arrays(self, limit: int | None = None) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """(inputs, outputs, labels or None) from the ``.npz``, at most ``limit`` samples."""
        import numpy as np

        n = self.samples if limit is None else min(self.samples, limit)
        with np.load(self.npz_path, allow_pickle=False) as z:
            ins = {k: z[reference_key("in", k)][:n] for k in self.inputs}
            outs = {k: z[reference_key("out", k)][:n] for k in self.outputs}
            labels = z["labels"][:n] if "labels" in z.files else None
        return ins, outs, labels


# ---------------------------------------------------------------- latency


@dataclass(frozen=True)
class ThreadLatency(Serializable):
    threads: int
    runs: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    init_ms: float  # building the interpreter and allocating tensors
    first_ms: float  # the first (cold) invocation


@dataclass(frozen=True)
class LatencyResult(Serializable):
    __derived__ = ("threads", "p50_ms", "mean_ms", "p90_ms", "min_ms", "runs")

    model: str
    size_bytes: int
    runtime: str  # e.g. "ai-edge-litert 2.3.0 CompiledModel"
    delegate: str  # "XNNPACK" or "none (builtin kernels)"
    warmup: int
    settings: tuple[ThreadLatency, ...]
    rss_delta_bytes: int  # resident memory the model added (first setting)
    peak_rss_bytes: int  # peak resident memory of the measuring process
    cpu_count: int
    input_source: str = "random"  # "random" | "sample"
    runtime_api: str = "interpreter"  # "compiled_model" | "interpreter" (the one that ran)
    note: str = ""  # e.g. why CompiledModel fell back to the interpreter

    @property
    def best(self) -> ThreadLatency:
        return min(self.settings, key=lambda s: s.p50_ms)

    def at(self, threads: int) -> ThreadLatency | None:
        return next((s for s in self.settings if s.threads == threads), None)

    # the best setting's figures, flat in the JSON
    @property
    def threads(self) -> int:
        return self.best.threads

    @property
    def p50_ms(self) -> float:
        return self.best.p50_ms

    @property
    def mean_ms(self) -> float:
        return self.best.mean_ms

    @property
    def p90_ms(self) -> float:
        return self.best.p90_ms

    @property
    def min_ms(self) -> float:
        return self.best.min_ms

    @property
    def runs(self) -> int:
        return self.best.runs

    def to_text(self) -> str:
        lines = [
            f"{self.model} ({self.size_bytes:,} bytes) on {self.runtime} "
            f"(runtime {self.runtime_api}), delegate "
            f"{self.delegate}, {self.warmup} warm-up runs, {self.cpu_count} CPUs",
            f"{'threads':>7}  {'p50 ms':>9}  {'mean ms':>9}  {'p90 ms':>9}  {'min ms':>9}  "
            f"{'runs':>5}",
        ]
        for s in self.settings:
            lines.append(
                f"{s.threads:>7}  {s.p50_ms:>9.4f}  {s.mean_ms:>9.4f}  {s.p90_ms:>9.4f}  "
                f"{s.min_ms:>9.4f}  {s.runs:>5}"
            )
        lines.append(
            f"memory: +{self.rss_delta_bytes / (1 << 20):.1f} MiB resident for the model "
            f"(process peak {self.peak_rss_bytes / (1 << 20):.0f} MiB)"
        )
        b = self.best
        lines.append(f"fastest: {b.p50_ms:.4f} ms median with {b.threads} thread(s)")
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join(lines)
