"""What the sandbox costs, measured in one run against the same work without it.

1. A conversion (digits sample, float32) through ``convert_model`` in a fresh
   worker, sandboxed (bubblewrap) and not, alternated, median of N.
2. An inspection (the report of a .tflite, with the TFLite Micro probe)
   through ``inspect_file``, sandboxed and not.
3. The server's resident memory while a 999,000-op .tflite is inspected as a
   job (the file is refused by the sandboxed worker; the server never parses it).

Prints each ratio (sandboxed / plain). The goal for a conversion is <= 1.1x.

    python bench/bench_sandbox.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.options import ConversionOptions
from core.pipeline.convert import convert_model
from core.pipeline.inspect import inspect_file
from core.pipeline.isolation import RunContext, Sandbox
from core.pipeline.sandbox import sandbox_status

SAMPLE = ROOT / "sample_models" / "digits_classifier.zip"


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _pair(label: str, run, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds with and without the sandbox, alternated."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeat):
        for enabled in (True, False):
            times[enabled].append(_timed(lambda e=enabled: run(e)))
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"{label:<34} sandboxed {on:6.2f} s   plain {off:6.2f} s   ratio {on / off:.2f}")
    return on / off


def _server_rss(repeat: int) -> None:
    import requests

    sys.path.insert(0, str(ROOT / "tests"))
    from server_helpers import studio_server  # type: ignore[import-not-found]

    from tests.helpers.crafted import many_ops_model

    blob = many_ops_model(999_000)
    with tempfile.TemporaryDirectory() as d, studio_server(Path(d) / "data") as srv:

        def rss() -> int:
            with open(f"/proc/{srv.proc.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

        before = peak = rss()
        r = requests.post(srv.url("/api/jobs"), files={"model": ("huge.tflite", blob)}, timeout=120)
        job = r.json()["id"]
        t0 = time.perf_counter()
        while True:
            peak = max(peak, rss())
            j = requests.get(srv.url(f"/api/jobs/{job}"), timeout=10).json()
            if j["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        print(
            f"server RSS inspecting a 999k-op file ({len(blob) >> 20} MiB): "
            f"{before >> 20} MiB before, peak {peak >> 20} MiB (+{(peak - before) >> 20} MiB); "
            f"job {j['status']} in {time.perf_counter() - t0:.1f} s: "
            f"{(j.get('error') or {}).get('message', '')[:80]}"
        )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    status = sandbox_status()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, sandbox: "
        f"{'bubblewrap ' + str(status.binary) if status.available else status.reason}"
    )
    if not status.available:
        return 1
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "m.tflite"

        def convert(enabled: bool) -> None:
            convert_model(
                SAMPLE, out, ConversionOptions(), ctx=RunContext(sandbox=Sandbox(enabled=enabled))
            )

        def inspect(enabled: bool) -> None:
            inspect_file(
                out,
                out_dir=Path(d) / f"r{enabled}",
                ctx=RunContext(sandbox=Sandbox(enabled=enabled)),
            )

        convert(True)  # warm the page cache and the sandbox check
        _pair("convert digits float32 (cold worker)", convert, args.repeat)
        _pair("inspect + TFLite Micro probe", inspect, args.repeat)
    _server_rss(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
