"""``tflite-studio sweep`` against the plain script it replaces (a script, not a test).

    .venv/bin/python bench/bench_sweep.py [--quick] [--models digits,convnet] [--repeat 3]
                                          [--tool-root DIR]

Per model, alternately (median of ``--repeat``, the order swapped every run):

- **plain**: ``bench/plain_sweep.py`` in a fresh ``python`` process: the same
  core work as a notebook would do it (unzip, the original on the evaluation
  samples, six ``TFLiteConverter.from_saved_model`` conversions, every ``.tflite``
  in LiteRT's Interpreter on the same samples, 50 timed invokes);
- **tool**: ``tflite-studio sweep MODEL --calibration-data … --eval-data …
  --max-samples N --runs 50 --report R.json`` (the whole process; it does more:
  per-layer error, a recommendation, reports).

Models: ``digits`` (sample_models/digits_classifier.zip, its calibration and
evaluation ``.npz``) and ``convnet`` (a MobileNet-like classifier, 96x96x3,
about 2.4 M parameters, built in code by ``bench/bench_models.py`` and cached).
``--quick``: one run, digits only (a smoke run).

Prints per model the seconds of both, the ratio tool/plain, and a breakdown:
median seconds per step for the tool (from the report's ``timings`` when it has
them, else the wall time between the CLI's progress lines, timestamped as they
arrive), the seconds the report says a step took inside its worker (``in-task``),
and the plain script's own phases. Then the two sides' results per preset (size,
top-1 agreement, latency), to show both did the same work. No asserts on timing.

``--tool-root DIR`` runs the tool as ``python -m core.cli`` from another source
tree, e.g. the last commit as "before" while the working tree is "after":
``git archive HEAD | tar -x -C /tmp/tflite-studio-head``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench_models import ensure

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
RUNS = 50
PRESET_RE = re.compile(r"int8-float-io|int16x8|int8|float32|float16|dynamic")


@dataclass(frozen=True)
class Model:
    name: str
    zip: Path
    calibration: Path
    eval: Path
    samples: int


@dataclass
class Timed:
    """One process: wall seconds, the epoch it was started at, and every output
    line with the seconds since the start it arrived at."""

    seconds: float
    spawn_epoch: float
    lines: list[tuple[float, str, str]]

    def text(self, stream: str) -> list[tuple[float, str]]:
        return [(t, s) for t, name, s in self.lines if name == stream]


class Tool:
    """How the tool is started: the project's ``tflite-studio``, or ``python -m
    core.cli`` from another source tree (``--tool-root``, e.g. a snapshot made with
    ``git archive HEAD | tar -x -C DIR``), to measure before and after in one run."""

    root: Path | None = None

    @classmethod
    def cmd(cls, *args: str) -> list[str]:
        if cls.root is None:
            return [str(ROOT / ".venv" / "bin" / "tflite-studio"), *args]
        return [PYTHON, "-m", "core.cli", *args]

    @classmethod
    def env(cls) -> dict[str, str]:
        if cls.root is None:
            return ENV
        return {**ENV, "PYTHONPATH": str(cls.root)}

    @classmethod
    def use(cls, root: Path | None) -> None:
        if root is not None:
            root = root.resolve()
            if not (root / "core" / "cli" / "__main__.py").is_file():
                sys.exit(f"--tool-root {root}: no core/cli/__main__.py there")
        cls.root = root


def run_timed(cmd: list[str], env: dict[str, str] | None = None) -> Timed:
    lines: list[tuple[float, str, str]] = []
    epoch, t0 = time.time(), time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or ENV,
        bufsize=1,
        cwd=Tool.root or ROOT,
    )

    def pump(stream, name: str) -> None:
        for line in stream:
            lines.append((time.perf_counter() - t0, name, line.rstrip("\n")))

    pumps = [
        threading.Thread(target=pump, args=(proc.stdout, "out")),
        threading.Thread(target=pump, args=(proc.stderr, "err")),
    ]
    for p in pumps:
        p.start()
    rc = proc.wait()
    seconds = time.perf_counter() - t0
    for p in pumps:
        p.join()
    if rc:
        tail = "\n".join(s for _, n, s in sorted(lines) if n == "err")[-3000:]
        sys.exit(f"{' '.join(Path(c).name for c in cmd[:4])} failed (exit {rc}):\n{tail}")
    return Timed(seconds, epoch, sorted(lines))


# ---------------------------------------------------------------- the plain script


def plain_steps(run: Timed) -> dict[str, float]:
    """The plain script's phases, with process start (spawn to its first
    statement) and exit (after its last line: interpreter teardown)."""
    steps: dict[str, float] = {}
    for t, line in run.text("out"):
        word, _, rest = line.partition(" ")
        if word == "T0":
            steps["process start"] = max(0.0, float(rest) - run.spawn_epoch)
        elif word == "PHASE":
            name, secs = rest.rsplit(" ", 1)
            name = {"python start": "process start"}.get(name, name)
            steps[name] = steps.get(name, 0.0) + float(secs)
        elif word == "END":
            steps["exit"] = run.seconds - t
    return steps


def plain_results(run: Timed) -> dict[str, dict]:
    rows = [json.loads(s[7:]) for _, s in run.text("out") if s.startswith("RESULT ")]
    return {r["preset"]: r for r in rows}


# ---------------------------------------------------------------- the tool

# (pattern in the lowercased progress message, step; {p} is the preset it names)
RULES = [
    (r"^running the original model on the evaluation data", "worker start + TF import (ref.)"),
    (r"unpack", "unpack + load"),
    (r"tensorflow", "import tensorflow"),
    (r"signature|loading the model|reading the evaluation data", "unpack + load"),
    (r"original model|reference", "reference run"),
    (r"convert|calibrat", "convert {p}"),
    (r"accuracy|evaluat", "evaluate {p}"),
    (r"timing|latency", "latency {p}"),
    (r"layer", "per-layer {p}"),
    (r"^wrote |report", "reports + exit"),
]
PROGRESS = re.compile(r"^\s{2}(\S.*?)(?:…|\.\.\.)$")


def step_of(message: str) -> str:
    low = message.lower()
    m = PRESET_RE.search(low)
    for pattern, step in RULES:
        if re.search(pattern, low):
            return step.format(p=m.group(0) if m else "?")
    return "other: " + message[:40]


def progress_steps(run: Timed) -> dict[str, float]:
    """Wall seconds between consecutive progress lines of the CLI (stderr),
    summed per step. Spawn to the first line is "process start" (the CLI's own
    imports and starting its worker pool); a step that overlaps another (parallel
    work) counts from its line to the next line, whichever step that is."""
    events: list[tuple[float, str]] = [(0.0, "process start")]
    for t, line in run.text("err"):
        m = PROGRESS.match(line)
        if m:
            events.append((t, step_of(m.group(1))))
        elif line.startswith("wrote "):
            events.append((t, "reports + exit"))
    events.append((run.seconds, ""))
    steps: dict[str, float] = {}
    for (t, step), (t_next, _) in zip(events, events[1:], strict=False):
        steps[step] = steps.get(step, 0.0) + (t_next - t)
    return steps


def _seconds(v: object) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        for key in ("seconds", "s", "duration", "elapsed", "wall_seconds"):
            if isinstance(v.get(key), (int, float)):
                return float(v[key])
    return None


def _collect(t: object, prefix: str, out: dict[str, float]) -> None:
    """``timings`` as {step: seconds | {seconds: …}} or [{step|name: …, seconds: …}]
    or [[step, seconds]]; nested dicts become "outer: inner"."""
    items: list[tuple[str, object]] = []
    if isinstance(t, dict):
        items = [(str(k), v) for k, v in t.items()]
    elif isinstance(t, list):
        for it in t:
            if isinstance(it, (list, tuple)) and len(it) == 2:
                items.append((str(it[0]), it[1]))
            elif isinstance(it, dict):
                keys = ("step", "name", "label", "phase", "key", "what")
                name = next((str(it[k]) for k in keys if k in it), "?")
                items.append((name, it))
    for name, v in items:
        s = _seconds(v)
        if s is not None:
            out[prefix + name] = out.get(prefix + name, 0.0) + s
        elif isinstance(v, (dict, list)):
            _collect(v, f"{prefix}{name}: ", out)


def report_timings(report: dict) -> dict[str, float] | None:
    """The report's ``timings`` (top level and per row), or None without them."""
    out: dict[str, float] = {}
    if "timings" in report:
        _collect(report["timings"], "", out)
    for row in report.get("rows") or []:
        if isinstance(row, dict) and "timings" in row:
            _collect(row["timings"], f"{row.get('label', '?')}: ", out)
    return out if out or "timings" in report else None


def in_task(report: dict) -> dict[str, float]:
    """Seconds the report says a step took inside its worker."""
    out: dict[str, float] = {}
    for row in report.get("rows") or []:
        label = row.get("label", "?")
        for step, v in (
            ("convert", row.get("conversion_seconds")),
            ("evaluate", (row.get("accuracy") or {}).get("seconds")),
            ("latency", (row.get("latency") or {}).get("seconds")),
        ):
            if isinstance(v, (int, float)):
                out[f"{step} {label}"] = float(v)
    for le in report.get("layer_errors") or []:
        if isinstance(le.get("seconds"), (int, float)):
            preset = str(le.get("preset", "?"))
            out[f"per-layer {preset}"] = float(le["seconds"])
            if preset == "int8-float-io":  # the debugger's run stands for int8 too
                out.setdefault("per-layer int8", float(le["seconds"]))
    ref = (report.get("data") or {}).get("seconds")
    if isinstance(ref, (int, float)):
        out["reference run"] = float(ref)
    return out


def tool_results(report: dict) -> dict[str, dict]:
    out = {}
    for row in report.get("rows") or []:
        m = row.get("metrics") or {}
        out[row.get("label", "?")] = {
            "size": row.get("size_bytes"),
            "top1": m.get("top1_agreement"),
            "cosine": m.get("cosine"),
            "p50_ms": row.get("latency_ms"),
        }
    return out


# ---------------------------------------------------------------- measuring


@dataclass
class Sample:
    seconds: float
    steps: dict[str, float]
    extra: dict[str, float]  # plain: nothing; tool: in-task seconds
    timings: dict[str, float] | None
    results: dict[str, dict]


LAYERS = ["auto"]  # the tool's --layers (set from the command line)


def run_plain(m: Model) -> Sample:
    cmd = [PYTHON, str(BENCH / "plain_sweep.py"), str(m.zip), str(m.calibration), str(m.eval)]
    run = run_timed(cmd + ["--samples", str(m.samples), "--runs", str(RUNS)])
    return Sample(run.seconds, plain_steps(run), {}, None, plain_results(run))


def run_tool(m: Model, tmp: Path) -> Sample:
    report_path = tmp / f"sweep-{m.name}.json"
    report_path.unlink(missing_ok=True)
    cmd = Tool.cmd("sweep", str(m.zip), "--calibration-data", str(m.calibration))
    cmd += ["--eval-data", str(m.eval), "--max-samples", str(m.samples), "--runs", str(RUNS)]
    cmd += ["--layers", LAYERS[0]]
    run = run_timed(cmd + ["--report", str(report_path)], Tool.env())
    report = json.loads(report_path.read_text(encoding="utf-8"))
    steps = progress_steps(run)
    return Sample(run.seconds, steps, in_task(report), report_timings(report), tool_results(report))


def median_steps(samples: list[dict[str, float]]) -> dict[str, float]:
    names: list[str] = []
    for s in samples:
        names += [n for n in s if n not in names]
    return {n: statistics.median([s[n] for s in samples if n in s]) for n in names}


def measure(m: Model, repeat: int, tmp: Path) -> tuple[list[Sample], list[Sample]]:
    plain: list[Sample] = []
    tool: list[Sample] = []
    for k in range(repeat):
        order = ("plain", "tool") if k % 2 == 0 else ("tool", "plain")
        for which in order:
            if which == "plain":
                plain.append(run_plain(m))
            else:
                tool.append(run_tool(m, tmp))
        print(
            f"  run {k + 1}/{repeat} ({order[0]} first): plain {plain[-1].seconds:6.2f} s"
            f"   tool {tool[-1].seconds:6.2f} s   load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    return plain, tool


# ---------------------------------------------------------------- printing


def print_breakdown(plain: list[Sample], tool: list[Sample]) -> None:
    t_steps = median_steps([s.steps for s in tool])
    t_task = median_steps([s.extra for s in tool])
    p_steps = median_steps([s.steps for s in plain])
    names = list(t_steps) + [n for n in p_steps if n not in t_steps]
    print(f"\n  {'step (median s)':<34}{'tool':>8}{'in-task':>9}{'plain':>8}")

    def cell(d: dict[str, float], n: str, w: int) -> str:
        return f"{d[n]:{w}.2f}" if n in d else " " * w

    for n in names:
        print(f"  {n:<34}{cell(t_steps, n, 8)}{cell(t_task, n, 9)}{cell(p_steps, n, 8)}")
    print(f"  {'sum of steps':<34}{sum(t_steps.values()):8.2f}{'':9}{sum(p_steps.values()):8.2f}")
    print("  (tool: wall time from each progress line to the next; in-task: seconds the report")
    print("   gives for the work inside the worker, so tool - in-task is process/sandbox/TF cost)")
    work = ("convert", "evaluate", "latency", "per-layer", "reference")
    missing = [n for n in t_steps if n.startswith(work) and n not in t_task]
    if missing:
        print("  the report gives no in-task seconds for: " + ", ".join(missing))
    timed = [s.timings for s in tool if s.timings is not None]
    if not timed:
        print("  the sweep report has no `timings` field (steps above come from progress lines)")
        return
    med = median_steps(timed)
    print(f"\n  {'report timings (median s)':<34}{'tool':>8}")
    for n, v in med.items():
        print(f"  {n:<34}{v:8.2f}")
    print(f"  {'sum':<34}{sum(med.values()):8.2f}")


def print_results(plain: Sample, tool: Sample) -> None:
    print(
        f"\n  {'preset':<15}{'size plain/tool':>22}{'top-1 plain/tool':>20}{'p50 ms plain/tool':>22}"
    )
    for preset, p in plain.results.items():
        t = tool.results.get(preset, {})

        def pct(v: object) -> str:
            return f"{v:.1%}" if isinstance(v, (int, float)) else "-"

        def ms(v: object) -> str:
            return f"{v:.4f}" if isinstance(v, (int, float)) else "-"

        size = f"{p['size']:,}/{t.get('size') or 0:,}"
        top1 = f"{pct(p['top1'])}/{pct(t.get('top1'))}"
        print(
            f"  {preset:<15}{size:>22}{top1:>20}{ms(p['p50_ms']) + '/' + ms(t.get('p50_ms')):>22}"
        )
    print("  (plain latency: Interpreter; tool: its default runtime, CompiledModel)")


def report_model(m: Model, plain: list[Sample], tool: list[Sample]) -> None:
    p = statistics.median(s.seconds for s in plain)
    t = statistics.median(s.seconds for s in tool)
    print(f"\n  plain {p:7.2f} s   tool {t:7.2f} s   ratio tool/plain {t / p:5.2f}x  (goal <= 1.0)")
    pairs = [b.seconds / a.seconds for a, b in zip(plain, tool, strict=True)]
    print(f"  runs: plain {', '.join(f'{s.seconds:.2f}' for s in plain)}")
    print(f"        tool  {', '.join(f'{s.seconds:.2f}' for s in tool)}")
    print(f"        ratio per pair {', '.join(f'{r:.2f}' for r in pairs)}")
    print_breakdown(plain, tool)
    print_results(plain[-1], tool[-1])


# ---------------------------------------------------------------- models


def digits() -> Model:
    samples = ROOT / "sample_models"
    n = _samples(samples / "digits_eval.npz")
    return Model(
        "digits",
        samples / "digits_classifier.zip",
        samples / "digits_calibration.npz",
        samples / "digits_eval.npz",
        n,
    )


def convnet() -> Model:
    d = ensure("convnet", PYTHON)
    ev = d / "convnet_eval.npz"
    return Model("convnet", d / "convnet.zip", d / "convnet_calibration.npz", ev, _samples(ev))


def _samples(npz: Path) -> int:
    import numpy as np

    with np.load(npz) as f:
        return int(len(f["image"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one run, digits only (smoke run)")
    ap.add_argument("--models", default="digits,convnet", help="comma list: digits,convnet")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (median)")
    ap.add_argument("--tool-root", type=Path, help="run the tool from this source tree")
    ap.add_argument(
        "--layers",
        choices=["auto", "always", "never"],
        default="auto",
        help="the tool's per-layer analysis (the plain script has none; never = like for like)",
    )
    args = ap.parse_args()
    LAYERS[0] = args.layers
    Tool.use(args.tool_root)
    names = ["digits"] if args.quick else [n.strip() for n in args.models.split(",") if n.strip()]
    repeat = 1 if args.quick else max(1, args.repeat)
    builders = {"digits": digits, "convnet": convnet}
    unknown = [n for n in names if n not in builders]
    if unknown:
        sys.exit(f"unknown model(s) {unknown}; choose from {sorted(builders)}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"tool: {' '.join(Tool.cmd())} (code in {Tool.root or ROOT}), --layers {args.layers}")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        for name in names:
            m = builders[name]()
            print(
                f"\n== {m.name}: {m.zip.name}, {m.samples} samples, {RUNS} runs, median of {repeat}"
            )
            plain, tool = measure(m, repeat, Path(tmp))
            report_model(m, plain, tool)
    print(
        f"\nload at the end {os.getloadavg()[0]:.2f} (other work on the machine skews both sides)"
    )


if __name__ == "__main__":
    main()
