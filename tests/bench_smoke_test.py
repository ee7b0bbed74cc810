#!/usr/bin/python3
"""crm-bench's evidence workloads, briefly: the durable create beside the PostgreSQL peer at the
same concurrency (both rows and the ratio in JSON), and a mixed day in-process. The figures
themselves are not judged here (machines are noisy); docs/benchmarks.md holds them.

Run with /usr/bin/python3.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crm_testlib  # noqa: E402,F401 - refuses to run under python -O, which drops the asserts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    args = ap.parse_args()
    r = subprocess.run([args.bench, "--workload", "create", "--clients", "4", "--seconds", "2", "--warmup", "0",
                        "--peer", "postgres", "--json"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    ours = [x for x in rows if x["workload"] == "create" and x["backend"] == "embedded"]
    peer = [x for x in rows if x["workload"] == "create" and x["backend"] == "postgres"]
    ratio = [x for x in rows if x["workload"] == "create-ratio"]
    assert len(ours) == 1 and len(peer) == 1 and len(ratio) == 1, r.stdout
    assert ours[0]["ops"] > 0 and peer[0]["ops"] > 0, rows
    # Our own errors count as much as the peer's: a create path failing under 4 clients is a bug.
    assert ours[0]["errors"] == 0 and ours[0]["errors_by_code"] == {}, ours
    assert peer[0]["errors"] == 0, peer
    assert peer[0]["p99_ms"] >= peer[0]["p50_ms"] > 0, peer
    assert abs(ratio[0]["ratio"] - ours[0]["throughput"] / peer[0]["throughput"]) < 0.01, rows
    print(f"create: {ours[0]['throughput']:.0f}/s, postgres {peer[0]['throughput']:.0f}/s, ratio {ratio[0]['ratio']}")

    r = subprocess.run([args.bench, "--workload", "day", "--clients", "4", "--seconds", "2", "--warmup", "0", "--json"],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    day = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert len(day) == 1 and day[0]["ops"] > 0 and day[0]["errors"] == 0, (r.stdout, r.stderr[-2000:])
    assert day[0]["errors_by_code"] == {}, day
    assert "day mix:" in r.stderr and "complete_task=" in r.stderr, r.stderr[-2000:]
    print(f"day: {day[0]['throughput']:.0f} calls/s, 0 errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
