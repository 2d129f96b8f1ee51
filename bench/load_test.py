"""Load test of the shared server: N clients (threads) submit tiny conversions
through the HTTP API and poll their status while conversions run, against a
real ``streamlit run app.py`` started here on 127.0.0.1 with its own data
folder. Bounded: a fixed number of jobs and a deadline; it stops the server
and exits by itself.

    python bench/load_test.py [--clients 8] [--jobs-per-client 2] [--deadline 420]

Prints jobs completed / failed and the status-request latency (p50, p95, max)
under load, next to the same request on the idle server measured in the same
run (the peer), and the ratio between them.
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
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ("float32", "float16", "dynamic")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def _start_server(
    data: Path, password: str, workers: int
) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    log = data.parent / "server.log"
    env = {
        **os.environ,
        "TFLITE_STUDIO_DATA_DIR": str(data),
        "TFLITE_STUDIO_PASSWORD": password,
        "TFLITE_STUDIO_WORKERS": str(workers),
        "TFLITE_STUDIO_EMBEDDED_WORKERS": "1",
        "TFLITE_STUDIO_MAX_QUEUE": "1000",
        "PYTHONPATH": str(ROOT),
    }
    app = os.environ.get("TFLITE_STUDIO_TEST_APP") or str(ROOT / "app.py")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                app,
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 90
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("server exited:\n" + log.read_text(errors="replace")[-2000:])
        try:
            if requests.get(base + "/_stcore/health", timeout=2).status_code == 200:
                return proc, base, log
        except requests.RequestException:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit("server did not become healthy in 90 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


class Client(threading.Thread):
    def __init__(
        self, i: int, base: str, password: str, model: Path, jobs: int, deadline: float
    ) -> None:
        super().__init__(name=f"client-{i}", daemon=True)
        self.i, self.base, self.model, self.n, self.deadline = i, base, model, jobs, deadline
        self.session = requests.Session()
        self.session.auth = (f"client-{i}", password)
        self.status_lat: list[float] = []
        self.submit_lat: list[float] = []
        self.done = self.failed = self.refused = 0
        self.turnaround: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        for k in range(self.n):
            if time.monotonic() > self.deadline:
                return
            preset = PRESETS[(self.i + k) % len(PRESETS)]
            t0 = time.perf_counter()
            try:
                with open(self.model, "rb") as f:
                    r = self.session.post(
                        self.base + "/api/jobs",
                        timeout=60,
                        files={"model": (self.model.name, f)},
                        data={"preset": preset},
                    )
            except requests.RequestException as e:
                self.errors.append(f"submit: {e}")
                continue
            self.submit_lat.append(time.perf_counter() - t0)
            if r.status_code != 201:
                self.refused += 1
                self.errors.append(f"submit {r.status_code}: {r.text[:200]}")
                continue
            job = r.json()
            while time.monotonic() < self.deadline:
                t1 = time.perf_counter()
                try:
                    s = self.session.get(self.base + job["links"]["self"], timeout=30)
                except requests.RequestException as e:
                    self.errors.append(f"status: {e}")
                    time.sleep(0.5)
                    continue
                self.status_lat.append(time.perf_counter() - t1)
                st = s.json()["status"]
                if st == "done":
                    m = self.session.get(self.base + job["links"]["model"], timeout=60)
                    if m.status_code == 200 and m.content[4:8] == b"TFL3":
                        self.done += 1
                        self.turnaround.append(time.perf_counter() - t0)
                    else:
                        self.failed += 1
                        self.errors.append(f"download {m.status_code}")
                    break
                if st in ("failed", "cancelled"):
                    self.failed += 1
                    self.errors.append(f"job {st}: {s.json().get('error')}")
                    break
                time.sleep(0.25)


def _idle_latency(base: str, password: str, n: int = 100) -> list[float]:
    s = requests.Session()
    s.auth = ("idle", password)
    r = s.get(base + "/api/jobs?limit=1", timeout=10)
    if r.json()["jobs"]:
        path = r.json()["jobs"][0]["links"]["self"]
    else:  # no job yet: the listing is the cheapest comparable status request
        path = "/api/jobs?limit=1"
    out = []
    for _ in range(n):
        t = time.perf_counter()
        s.get(base + path, timeout=10)
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--jobs-per-client", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="server's concurrent conversions")
    ap.add_argument("--deadline", type=float, default=420.0, help="seconds, then it stops")
    ap.add_argument("--model", type=Path, default=ROOT / "sample_models" / "digits_classifier.zip")
    a = ap.parse_args()
    if not a.model.is_file():
        raise SystemExit(f"{a.model} not found: build the samples (make samples) or pass --model")
    if not (1 <= a.clients <= 64 and 1 <= a.jobs_per_client <= 10 and a.deadline <= 1800):
        raise SystemExit("stay within 64 clients, 10 jobs each and 1800 s")
    password = "load-test"
    with tempfile.TemporaryDirectory(prefix="tflite-studio-load-") as tmp:
        proc, base, log = _start_server(Path(tmp) / "data", password, a.workers)
        try:
            # the peer: one job through the idle server, then status requests with no load
            warm = Client(999, base, password, a.model, 1, time.monotonic() + 180)
            warm.run()
            time.sleep(10)  # let the server refill its warm TensorFlow processes first
            idle = _idle_latency(base, password)
            t0 = time.monotonic()
            clients = [
                Client(i, base, password, a.model, a.jobs_per_client, t0 + a.deadline)
                for i in range(a.clients)
            ]
            for c in clients:
                c.start()
            for c in clients:
                c.join(max(0.0, t0 + a.deadline + 60 - time.monotonic()))
            wall = time.monotonic() - t0
        finally:
            _stop(proc)
    lat = [x for c in clients for x in c.status_lat]
    sub = [x for c in clients for x in c.submit_lat]
    turn = [x for c in clients for x in c.turnaround]
    done = sum(c.done for c in clients)
    failed = sum(c.failed for c in clients)
    refused = sum(c.refused for c in clients)
    total = a.clients * a.jobs_per_client
    ms = 1000.0
    print(
        f"load test: {a.clients} clients x {a.jobs_per_client} jobs, server workers "
        f"{a.workers}, {os.cpu_count()} CPUs, model {a.model.name}"
    )
    print(
        f"  jobs completed {done}/{total}, failed {failed}, refused {refused}, "
        f"wall {wall:.1f} s, {done / wall * 60:.1f} jobs/min"
    )
    print(
        f"  job turnaround (submit to downloaded): p50 {statistics.median(turn):.1f} s, "
        f"p95 {_pct(turn, 95):.1f} s"
        if turn
        else "  no job finished"
    )
    print(
        f"  submit request: p50 {statistics.median(sub) * ms:.0f} ms, "
        f"p95 {_pct(sub, 95) * ms:.0f} ms"
        if sub
        else "  no submit"
    )
    if lat:
        print(
            f"  status request under load ({len(lat)} requests): p50 "
            f"{statistics.median(lat) * ms:.1f} ms, p95 {_pct(lat, 95) * ms:.1f} ms, "
            f"max {max(lat) * ms:.0f} ms"
        )
    print(
        f"  status request on the idle server (peer, {len(idle)} requests): p50 "
        f"{statistics.median(idle) * ms:.1f} ms, p95 {_pct(idle, 95) * ms:.1f} ms"
    )
    if lat:
        ratio = statistics.median(lat) / statistics.median(idle)
        print(
            f"  ratio under load / idle: p50 x{ratio:.1f}, "
            f"p95 x{_pct(lat, 95) / _pct(idle, 95):.1f}"
        )
    errs = [e for c in clients for e in c.errors]
    for e in errs[:5]:
        print("  error:", e)
    return 0 if done == total and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
