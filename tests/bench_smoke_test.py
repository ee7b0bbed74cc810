#!/usr/bin/python3
"""crm-bench's evidence workloads, briefly: the durable create beside the PostgreSQL peer at the
same concurrency (both rows and the ratio in JSON), a mixed day in-process, and repeated updates
of a fixed set of customers, in-process and against a crmd process whose /metrics it reads. Each
shows the write kernel's work per command (crm_kernel_*), checked for sense: a create reads one
state row, an update of a customer written before takes its state from the cache. The figures
themselves are not judged here (machines are noisy); docs/benchmarks.md holds them.

Run with /usr/bin/python3.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crm_testlib  # noqa: E402 - refuses to run under python -O, which drops the asserts


def json_rows(r):
    return [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]


def kernel_of(row, service):
    """The row's kernel work of `service`, per command; fails when it is missing or looks wrong."""
    assert "kernel_error" not in row, row
    k = row.get("kernel", {}).get(service)
    assert k is not None and k["commands"] > 0, row
    # One state per command, read or cached; a command that wrote folds, seals and appends.
    assert abs(k["state_reads"] + k["cache_hits"] - 1) < 0.001, k
    # The projection takes the kernel's fold with each record: no row read or fold of its own.
    assert k["projection_reads"] == 0 and k["projection_folds"] == 0, k
    return k


def check_update(row, what):
    assert row["workload"] == "update" and row["ops"] > 0 and row["errors"] == 0, row
    k = kernel_of(row, "customers")
    # Each customer was written before the window (created, then updated in the warm-up): every
    # update starts from the cached state and writes one event.
    assert k["cache_hits"] >= 0.95 and k["state_reads"] <= 0.05, (what, k)
    assert abs(k["appends"] - 1) < 0.05 and abs(k["seals"] - 1) < 0.05 and abs(k["folds"] - 1) < 0.05, (what, k)
    assert k["commands"] >= row["ops"] * 0.9, (what, k, row["ops"])
    print(f"update ({what}): {row['throughput']:.0f}/s, {k['commands']} commands, "
          f"{k['state_reads']:.2f} reads and {k['cache_hits']:.2f} cache hits per command")


def refused(bench, args, says):
    r = subprocess.run([bench, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, (args, r.stdout[-1000:])
    assert says in r.stderr, (args, r.stderr[-1000:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--crmd", required=True)
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
    k = kernel_of(ours[0], "customers")
    # A create starts from nothing: one (empty) state row read, no cache hit, one event.
    assert k["cache_hits"] == 0 and k["state_reads"] == 1, k
    assert abs(k["appends"] - 1) < 0.01 and abs(k["seals"] - 1) < 0.01 and abs(k["folds"] - 1) < 0.01, k
    assert "kernel" not in peer[0], peer
    print(f"create: {ours[0]['throughput']:.0f}/s, postgres {peer[0]['throughput']:.0f}/s, ratio {ratio[0]['ratio']}")

    r = subprocess.run([args.bench, "--workload", "day", "--clients", "4", "--seconds", "2", "--warmup", "0", "--json"],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    day = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert len(day) == 1 and day[0]["ops"] > 0 and day[0]["errors"] == 0, (r.stdout, r.stderr[-2000:])
    assert day[0]["errors_by_code"] == {}, day
    assert "day mix:" in r.stderr and "complete_task=" in r.stderr, r.stderr[-2000:]
    for service in ("customers", "opportunities", "tasks", "tickets"):
        kernel_of(day[0], service)
    assert "analytics" not in day[0]["kernel"], day  # no write kernel
    print(f"day: {day[0]['throughput']:.0f} calls/s, 0 errors")

    short = ["--seconds", "2", "--warmup", "1", "--json"]
    r = subprocess.run([args.bench, "--workload", "update", "--clients", "2", "--customers", "8", *short],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    rows = json_rows(r)
    assert len(rows) == 1, r.stdout
    check_update(rows[0], "in-process")
    r = subprocess.run([args.bench, "--workload", "update", "--clients", "2", "--customers", "8", "--seconds", "1",
                        "--warmup", "0"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0 and "kernel customers" in r.stdout and "cache hits" in r.stdout, r.stdout

    refused(args.bench, ["--workload", "update", "--customers", "0"], "--customers")
    refused(args.bench, ["--workload", "update", "--customers", "2000000"], "--customers")
    refused(args.bench, ["--workload", "update", "--customers", "3", "--clients", "4"], "at least --clients (4)")
    refused(args.bench, ["--workload", "create", "--customers", "8"], "--customers is an option of --workload update")
    refused(args.bench, ["--workload", "update", "--floor"], "--floor and --peer compare creates")
    refused(args.bench, ["--workload", "update", "--clients", "0"], "--clients")
    refused(args.bench, ["--workload", "update", "--metrics", "127.0.0.1:9464"], "give --target too")
    refused(args.bench, ["--workload", "update", "--target", "127.0.0.1:1", "--token", "t", "--metrics", "nonsense"],
            "--metrics: 'nonsense' is not host:port")
    refused(args.bench, ["--workload", "rebuild", "--target", "127.0.0.1:1", "--token", "t",
                         "--metrics", "127.0.0.1:1"], "--metrics: only create, update and day")

    # Against a crmd process: the counters come from its /metrics.
    work = tempfile.mkdtemp(prefix="crm-bench-smoke-")
    key = "k" * 48
    metrics = f"127.0.0.1:{crm_testlib.free_port()}"
    crmd = crm_testlib.Crmd(args.crmd, os.path.join(work, "data"), key, os.path.join(work, "crmd.log"),
                            metrics_listen=metrics)
    try:
        crmd.start()
        token = crm_testlib.mint_token(key, "bench", "admin")
        target = ["--target", crmd.addr, "--token", token]
        refused(args.bench, ["--workload", "update", *target, "--metrics", f"127.0.0.1:{crm_testlib.free_port()}"],
                "--metrics: cannot connect")
        r = subprocess.run([args.bench, "--workload", "update", *target, "--metrics", metrics, "--clients", "2",
                            "--customers", "8", *short], capture_output=True, text=True, timeout=240)
        assert r.returncode == 0, r.stderr
        rows = json_rows(r)
        assert len(rows) == 1 and rows[0]["backend"] == "target", r.stdout
        check_update(rows[0], "crmd process")
        text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10).read().decode()
        served = sorted({ln.split('"')[1] for ln in text.splitlines() if ln.startswith("crm_kernel_appends_total{")})
        assert served == ["customers", "opportunities", "tasks", "tickets"], served
        # Without --metrics the run says how to get the counters, and shows none.
        r = subprocess.run([args.bench, "--workload", "update", *target, "--clients", "1", "--customers", "2",
                            "--seconds", "1", "--warmup", "0", "--json"], capture_output=True, text=True, timeout=240)
        assert r.returncode == 0 and "give --metrics" in r.stderr, r.stderr
        assert "kernel" not in json_rows(r)[0], r.stdout
    finally:
        if crmd.running():
            crmd.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
