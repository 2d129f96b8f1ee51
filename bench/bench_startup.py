"""App start to first page: TFLite Studio vs the same app importing TensorFlow.

Launches ``streamlit run app.py`` (headless, a free port, no embedded workers so
no TensorFlow child processes compete for the CPU) and times, from launch:

- ``health``: ``/_stcore/health`` answers 200 (the server is up),
- ``page``:   ``/`` answers 200 as well (the first page is served),
- ``script``: ``/_stcore/script-health-check`` answers 200 (``studio.py`` ran:
  page config, navigation and the Convert page, in the app process).

The peer is a temporary copy of the entry with ``import tensorflow`` at its top,
measured alternately in the same run. Both variants run from identical temporary
folders (the entry copied, everything else linked), so only that line differs.

    python bench/bench_startup.py [--runs 3]

Prints one line per run and the ratios (goal <= 0.5). ``script`` is the mark that
holds in every launch mode: when ``streamlit run`` serves ``app.py`` as an
``st.App`` the entry is imported before the server answers, so ``page`` includes
it; as a plain script the entry (and its imports) run at the first page view.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.5
LINKED = ("studio.py", "pages", "ui", "core", "sample_models", ".streamlit")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def _variant(tmp: Path, name: str, with_tf: bool, entry: Path) -> Path:
    d = tmp / name
    d.mkdir()
    for item in LINKED:
        if (ROOT / item).exists():
            os.symlink(ROOT / item, d / item)
    src = entry.read_text(encoding="utf-8")
    if with_tf:  # first statement after the docstring and __future__ imports
        line = "import tensorflow  # noqa: F401  (the peer: TensorFlow on the start path)\n"
        fut = "from __future__ import annotations\n"
        src = src.replace(fut, fut + line, 1) if fut in src else line + src
    (d / "app.py").write_text(src, encoding="utf-8")
    return d


def _measure(folder: Path, data_dir: Path, timeout: float = 180.0) -> dict[str, float]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TFLITE_STUDIO_DATA_DIR": str(data_dir),
        "TFLITE_STUDIO_EMBEDDED_WORKERS": "0",
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(folder / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--server.scriptHealthCheckEnabled",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    marks: dict[str, float] = {}
    try:
        while len(marks) < 3:
            now = time.perf_counter() - t0
            if now > timeout:
                raise TimeoutError(f"no first page after {timeout:.0f} s")
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}")
            if "health" not in marks and _ok(base + "/_stcore/health"):
                marks["health"] = time.perf_counter() - t0
            if "health" in marks and "page" not in marks and _ok(base + "/"):
                marks["page"] = time.perf_counter() - t0
            if (
                "page" in marks
                and "script" not in marks
                and _ok(base + "/_stcore/script-health-check")
            ):
                marks["script"] = time.perf_counter() - t0
            time.sleep(0.02)
        return marks
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--entry",
        type=Path,
        default=ROOT / "app.py",
        help="The entry script to time (default: app.py).",
    )
    args = ap.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {"studio": [], "with_tf": []}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as t:
        tmp = Path(t)
        folders = {
            "studio": _variant(tmp, "studio", False, args.entry),
            "with_tf": _variant(tmp, "with_tf", True, args.entry),
        }
        _measure(folders["studio"], tmp / "warmup-data")  # warm the disk cache once
        for i in range(args.runs):
            for name in ("studio", "with_tf") if i % 2 == 0 else ("with_tf", "studio"):
                m = _measure(folders[name], tmp / f"data-{name}-{i}")
                results[name].append(m)
                print(
                    f"run {i + 1} {name:<8} health {m['health']:6.2f} s   page "
                    f"{m['page']:6.2f} s   script {m['script']:6.2f} s",
                    flush=True,
                )
    med = {
        n: {k: statistics.median(r[k] for r in rs) for k in ("health", "page", "script")}
        for n, rs in results.items()
    }
    print()
    print(f"{'median':<10}{'studio':>10}{'with TF':>10}{'ratio':>8}")
    for k in ("health", "page", "script"):
        ratio = med["studio"][k] / med["with_tf"][k]
        print(f"{k:<10}{med['studio'][k]:>9.2f}s{med['with_tf'][k]:>9.2f}s{ratio:>8.2f}")
    for k, words in (
        ("page", "first page served (/ and health 200)"),
        ("script", "first page rendered (studio.py ran)"),
    ):
        ratio = med["studio"][k] / med["with_tf"][k]
        verdict = "meets" if ratio <= GOAL else "misses"
        print(f"{words}: {ratio:.2f} of the TensorFlow peer ({verdict} the goal <= {GOAL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
