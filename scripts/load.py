#!/usr/bin/env python3
"""Load test for the app's HTTP API (loopback only, bounded in count and time).

Starts `kb serve` on a free loopback port (or targets --url), then runs several rounds; each
round fires --concurrency simultaneous POST /api/ask requests (threads released together by a
barrier), --waves times, then the same for GET /api/search. Reports p50/p95/p99 latency,
throughput, errors and the server's RSS before/after every round (psutil on the server pid).

    .venv/bin/python scripts/load.py                      # start the app on the default index
    .venv/bin/python scripts/load.py --index /tmp/idx --rounds 5 --concurrency 64
    .venv/bin/python scripts/load.py --url http://127.0.0.1:7860 --pid 12345
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
QUESTIONS = [
    "我们呼叫中心证续期被驳回了，说材料不齐，证是明年{m}月{d}号到期的，还来得及吗",
    "ICP证还有{n}天到期，现在申请续期还来得及吗？",
    "公司股东变了没去报备，呼叫中心证续期会受影响吗，证{m}月{d}日到期",
    "网络文化经营许可证上个月已经过期了，怎么办",
    "EDI许可证续期需要准备哪些材料？人员社保不够怎么办",
    "营销外呼没有取得用户同意，续期被驳回了",
    "年报没按时报送，会影响增值电信许可证续期吗",
    "IDC证{m}月底到期，注册资本减少了还能续吗",
]
SEARCHES = ["续期材料", "人员 社保", "营销外呼 同意", "90日 提前申请", "过期 重新申请", "年报", "股权变更", "注册资本"]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        return (proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))) / 2**20
    except psutil.Error:
        return None


def request(url: str, body: dict | None, headers: dict[str, str], timeout: float) -> tuple[float, str]:
    """(seconds, "" or an error description)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **headers})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = json.loads(resp.read())
            error = "" if resp.status == 200 and "error" not in payload else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        error = f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        error = type(exc).__name__
    return time.perf_counter() - started, error


def phase(kind: str, base: str, concurrency: int, waves: int, headers: dict[str, str], deadline: float,
          rng: random.Random) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    started = time.perf_counter()
    sent = 0
    for _ in range(waves):
        if time.monotonic() > deadline:
            break
        barrier = threading.Barrier(concurrency)
        jobs = []
        for _ in range(concurrency):
            if kind == "ask":
                text = rng.choice(QUESTIONS).format(m=rng.randint(1, 12), d=rng.randint(1, 28), n=rng.randint(10, 400))
                jobs.append((base + "/api/ask", {"message": text}))
            else:
                q = urllib.parse.quote(rng.choice(SEARCHES))
                mode = rng.choice(["hybrid", "bm25", "dense"])
                jobs.append((f"{base}/api/search?q={q}&mode={mode}&top=10", None))

        def fire(job: tuple[str, dict | None], barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            seconds, error = request(job[0], job[1], headers, timeout=max(5.0, deadline - time.monotonic()))
            with lock:
                latencies.append(seconds)
                if error:
                    errors[error] = errors.get(error, 0) + 1

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(fire, jobs))
        sent += len(jobs)
    wall = time.perf_counter() - started
    return {
        "kind": kind,
        "requests": sent,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "wall_s": round(wall, 2),
        "throughput_rps": round(sent / wall, 1) if wall else 0.0,
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies, default=0) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else 0.0,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: str | None, startup_s: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "kb.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if index:
        cmd += ["--index", index]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"The app did not start:\n{proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(base + "/api/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"The app did not answer on {base} within {startup_s:.0f} s.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="Target a running app (loopback only) instead of starting one.")
    ap.add_argument("--pid", type=int, help="With --url: the server pid, for RSS.")
    ap.add_argument("--index", help="Index directory for the app this script starts.")
    ap.add_argument("--concurrency", type=int, default=50, help="Simultaneous requests per wave (>= 1, <= 256).")
    ap.add_argument("--waves", type=int, default=2, help="Waves per phase and round.")
    ap.add_argument("--rounds", type=int, default=3, help="Rounds (ask phase + search phase each).")
    ap.add_argument("--max-seconds", type=float, default=600, help="Stop starting new waves after this long.")
    ap.add_argument("--password", default=os.environ.get("KB_CONSULTANT_PASSWORD", ""),
                    help="Consultant password for /api/search [env KB_CONSULTANT_PASSWORD].")
    ap.add_argument("--json", dest="json_out", type=Path, help="Also write the results as JSON here.")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not 1 <= args.concurrency <= 256 or not 1 <= args.rounds <= 20 or not 1 <= args.waves <= 20:
        ap.error("--concurrency must be 1..256, --rounds 1..20, --waves 1..20 (the script is bounded on purpose).")

    proc = None
    if args.url:
        host = urllib.parse.urlparse(args.url).hostname or ""
        if host not in LOOPBACK:
            ap.error(f"--url must point at this machine (127.0.0.1/localhost), not {host!r}.")
        base, pid = args.url.rstrip("/"), args.pid
    else:
        print("Starting the app (loading the model) …", file=sys.stderr)
        proc, base = start_server(args.index, startup_s=180)
        pid = proc.pid
    headers = {"X-KB-Password": args.password} if args.password else {}
    deadline = time.monotonic() + args.max_seconds
    rng = random.Random(args.seed)
    report = {"base": base, "concurrency": args.concurrency, "waves": args.waves, "rounds": []}
    try:
        # One warm-up request of each kind, so round 1 measures serving, not lazy loading.
        request(base + "/api/ask", {"message": "呼叫中心证续期需要哪些材料"}, headers, 120)
        request(base + "/api/search?q=" + urllib.parse.quote("续期"), None, headers, 120)
        print(f"{'round':>5} {'kind':>6} {'n':>5} {'err':>4} {'rps':>7} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'p99 ms':>8} {'RSS before':>11} {'RSS after':>10}")
        for r in range(1, args.rounds + 1):
            for kind in ("ask", "search"):
                if time.monotonic() > deadline:
                    break
                before = rss_mb(pid)
                res = phase(kind, base, args.concurrency, args.waves, headers, deadline, rng)
                after = rss_mb(pid)
                res.update(round=r, rss_before_mb=before and round(before, 1), rss_after_mb=after and round(after, 1))
                report["rounds"].append(res)
                print(f"{r:>5} {kind:>6} {res['requests']:>5} {res['errors']:>4} {res['throughput_rps']:>7} "
                      f"{res['p50_ms']:>8} {res['p95_ms']:>8} {res['p99_ms']:>8} "
                      f"{before or 0:>9.1f}MB {after or 0:>8.1f}MB")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    total_errors = sum(r["errors"] for r in report["rounds"])
    print(f"total requests {sum(r['requests'] for r in report['rounds'])}, errors {total_errors}")
    if args.json_out:
        tmp = args.json_out.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, args.json_out)
    return 1 if total_errors else 0


if __name__ == "__main__":
    sys.exit(main())
