"""The served page under load, on the tiny models: composing beside generation, and memory growth.

Starts `app.py --tiny` on loopback (never another address), then:

1. idle: one client composes `--idle-calls` times; then `--composers` clients compose
   `--compose-calls` times each with no generation running (the same crowd, the model idle);
2. load: the same composers again while `--generators` clients generate tiny runs (2 steps,
   64x64) back to back until the composers finish;
3. memory: after `--warmup` generations, `--generations` more, one after another; the server's
   resident memory before and after.

Prints every call served or not, p50/p95 per endpoint, compose p95 with generation running against
the same composers with the model idle (goal: at most 2x; the single-client figure is printed too,
since on a small machine 20 clients mostly measure Gradio's own per-call cost) and the memory
growth (goal: at most 5%). Everything is bounded: counts are fixed
and `--deadline` stops the run.

    python bench/load.py [--composers 20 --generators 4 --generations 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import serve_tiny_studio  # noqa: E402 - the tests' server runner (loopback, free port)

CAPTION = {"Subject": "A kite.", "Scene": "A beach at dusk.", "Motion": "The kite climbs.", "Spatial": "Wide shot.",
           "Camera": "The camera tilts up."}
COMPOSE = [CAPTION, "Extractive", 120]
GENERATE = ["A kite climbs over a beach.", {"resolution": "64x64", "seconds": 0.3, "steps": 2, "seed": 4}, None, None]
COMPOSE_GOAL, MEMORY_GOAL = 2.0, 0.05


class Calls:
    """Latencies and failures per endpoint, from many threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}

    def run(self, client, endpoint: str, args: list) -> None:
        started = time.perf_counter()
        try:
            client.predict(*args, api_name=endpoint)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            with self.lock:
                self.errors.setdefault(endpoint, []).append(str(exc)[:160])
            return
        with self.lock:
            self.seconds.setdefault(endpoint, []).append(time.perf_counter() - started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def report(label: str, calls: Calls) -> None:
    for endpoint in sorted(set(calls.seconds) | set(calls.errors)):
        times, errors = calls.seconds.get(endpoint, []), calls.errors.get(endpoint, [])
        line = f"  {label:6} {endpoint:10} served {len(times):4}  errors {len(errors):3}"
        if times:
            line += f"  p50 {statistics.median(times):6.3f} s  p95 {percentile(times, 0.95):6.3f} s"
        print(line)
        for message in sorted(set(errors))[:3]:
            print(f"        error: {message}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--composers", type=int, default=20)
    parser.add_argument("--compose-calls", type=int, default=10, help="compose calls per composer")
    parser.add_argument("--generators", type=int, default=4)
    parser.add_argument("--idle-calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--deadline", type=float, default=900, help="seconds for the whole run")
    args = parser.parse_args()
    from gradio_client import Client

    from studio.tiny import build_tiny_models

    deadline = time.monotonic() + args.deadline
    work = Path(tempfile.mkdtemp(prefix="chai-load-"))
    tiny = work / "tiny"
    build_tiny_models(tiny, only=["captioner", "wan-ti2v", "finetuned-lora"])
    settings = ["--queue-size", str(args.generators * 4 + 8), "--session-jobs", "2"]
    with serve_tiny_studio(work, tiny, *settings) as server:
        assert server.url.startswith("http://127.0.0.1:"), "the load bench only ever targets loopback"
        pid = server.pid
        print(f"server {server.url} (pid {pid}), tiny models, settings {' '.join(settings)}")

        # 1. idle compose latency (after one warm-up call that loads the tokenizer)
        idle = Calls()
        client = Client(server.url, verbose=False)
        client.predict(*COMPOSE, api_name="/compose")
        for _ in range(args.idle_calls):
            idle.run(client, "/compose", COMPOSE)

        # 2. the composers with the model idle, then beside generators
        crowd, load, done = Calls(), Calls(), threading.Event()

        def composer(calls: Calls):
            own = Client(server.url, verbose=False)
            for _ in range(args.compose_calls):
                if time.monotonic() > deadline:
                    return
                calls.run(own, "/compose", COMPOSE)

        composers = [threading.Thread(target=composer, args=(crowd,)) for _ in range(args.composers)]
        for thread in composers:
            thread.start()
        for thread in composers:
            thread.join()

        def generator():
            own = Client(server.url, verbose=False)
            while not done.is_set() and time.monotonic() < deadline:
                load.run(own, "/generate", GENERATE)

        generators = [threading.Thread(target=generator) for _ in range(args.generators)]
        composers = [threading.Thread(target=composer, args=(load,)) for _ in range(args.composers)]
        for thread in generators:
            thread.start()
        time.sleep(2)  # generation under way before the composers arrive
        for thread in composers:
            thread.start()
        for thread in composers:
            thread.join()
        done.set()
        for thread in generators:
            thread.join()

        # 3. memory over sequential generations
        memory = Calls()
        for _ in range(args.warmup):
            memory.run(client, "/generate", GENERATE)
        before = rss_mb(pid)
        for _ in range(args.generations):
            if time.monotonic() > deadline:
                break
            memory.run(client, "/generate", GENERATE)
        after = rss_mb(pid)
        serving = client.predict(*COMPOSE, api_name="/compose")["prompt"] != ""

    print("calls:")
    report("idle", idle)
    report("crowd", crowd)
    report("load", load)
    report("mem", memory)
    served = sum(len(v) for c in (idle, crowd, load, memory) for v in c.seconds.values())
    errors = sum(len(v) for c in (idle, crowd, load, memory) for v in c.errors.values())
    idle_p95 = percentile(idle.seconds["/compose"], 0.95)
    crowd_p95 = percentile(crowd.seconds.get("/compose", [float("inf")]), 0.95)
    load_p95 = percentile(load.seconds.get("/compose", [float("inf")]), 0.95)
    growth = (after - before) / before
    generations = len(memory.seconds.get("/generate", [])) - min(args.warmup, len(memory.seconds.get("/generate", [])))
    print(f"served {served}, errors {errors}, still serving after the run: {serving}")
    print(f"compose p95, {args.composers} clients, generating / model idle: {load_p95:.3f} s / {crowd_p95:.3f} s = "
          f"{load_p95 / crowd_p95:.2f}x (goal <= {COMPOSE_GOAL:g}x)")
    print(f"compose p95, {args.composers} clients generating / one client alone: {load_p95:.3f} s / {idle_p95:.3f} s "
          f"= {load_p95 / idle_p95:.2f}x")
    print(f"server memory over {generations} generations after {args.warmup} warm-up: {before:.0f} MB -> "
          f"{after:.0f} MB, growth {growth * 100:+.1f}% (goal <= {MEMORY_GOAL * 100:g}%)")
    return 0 if errors == 0 and serving else 1


if __name__ == "__main__":
    sys.exit(main())
