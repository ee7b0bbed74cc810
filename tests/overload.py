#!/usr/bin/python3
"""Overload: crmd under an open loop of durable CreateCustomer calls at a multiple (default 2x)
of its measured peak. crm-bench --workload overload first measures the peak with --clients in
a closed loop, then sends calls on a fixed schedule whatever the answers, and prints goodput
(calls answered OK per second) as a share of that peak and how fast the shed calls were
refused with RESOURCE_EXHAUSTED (crmd's --max-inflight limit).

Every create is journalled as the mixed day's are (crm-bench --journal); afterwards crmd must
still answer its health check, day-check must find every acknowledged create exactly once and
no create refused with RESOURCE_EXHAUSTED (a journal with a forged loss must fail that check),
and `crmctl verify` must find the log intact; once it is stopped, `crmctl verify --projections`
must find every projection equal to a rebuild: shedding load refuses calls, it never loses or
corrupts anything.

--pin runs crmd on CPU 0 and crm-bench on CPU 1 (taskset): on a 2-core machine the client's
own work would otherwise take the server's CPU, more of it at twice the load than at the peak.
`make test` runs it for a few seconds with a small in-flight limit (the figures are not judged
there: machines are noisy); `make overload` runs the measurement docs/benchmarks.md quotes.
Run with /usr/bin/python3.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import (acknowledged_writes, crmd_bench_parser, day_check, forged_journal_control,  # noqa: E402
                         free_port, wait_healthy)


def main():
    ap = crmd_bench_parser(__doc__)
    ap.add_argument("--clients", type=int, default=512, help="closed-loop clients of the peak run")
    ap.add_argument("--max-inflight", type=int, default=512, help="crmd's --max-inflight")
    ap.add_argument("--overload", type=float, default=2.0,
                    help="offered load as a multiple of the peak (below 1: the latency at part load)")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--pin", action="store_true", help="crmd on CPU 0, crm-bench on CPU 1")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="crm-overload-")
    key = "k" * 48
    env = dict(os.environ, CRM_SIGNING_KEY=key)
    addr = f"127.0.0.1:{free_port()}"
    data = os.path.join(work, "data")
    journal = os.path.join(work, "journal")
    token = subprocess.run([args.crmctl, "token", "--sub", "overload", "--role", "admin"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    server_cpu = ["taskset", "-c", "0"] if args.pin else []
    client_cpu = ["taskset", "-c", "1"] if args.pin else []
    crmd = subprocess.Popen(server_cpu + [args.crmd, "--data-dir", data, "--listen", addr, "--metrics-listen", "",
                                          "--dashboard-listen", "", "--max-inflight", str(args.max_inflight)],
                            env=env, stdout=open(os.path.join(work, "crmd.log"), "a"), stderr=subprocess.STDOUT)
    failed = True
    try:
        wait_healthy(addr, seconds=60, proc=crmd, log_path=os.path.join(work, "crmd.log")).close()
        r = subprocess.run(client_cpu + [args.bench, "--workload", "overload", "--target", addr, "--token", token,
                                         "--clients", str(args.clients), "--overload", str(args.overload),
                                         "--seconds", str(args.seconds), "--warmup", str(args.warmup), "--json",
                                         "--journal", journal],
                           capture_output=True, text=True, timeout=600)
        sys.stdout.write(r.stdout)
        assert r.returncode == 0, f"crm-bench exit {r.returncode}: {r.stderr[-3000:]}"
        rows = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
        over = [x for x in rows if x["workload"] == "overload"]
        assert len(over) == 1, r.stdout
        o = over[0]
        if args.overload > 1:
            assert o["rejected"] > 0, f"nothing was shed: the load did not overload crmd ({o})"
        assert o["other_errors"] == 0 and o["not_sent"] == 0, o
        wait_healthy(addr, seconds=10).close()
        acked = acknowledged_writes(journal)
        assert acked > 0, "no create was acknowledged: the test did not test"
        target = ["--target", addr, "--token", token]
        checked, resent = day_check(args.bench, target, [journal], env, "day-check of the overload's journal")
        print(f"{acked} acknowledged creates; {checked}")
        forged_journal_control(args.bench, target, journal, os.path.join(work, "journal-forged"), env)
        subprocess.run([args.crmctl, "verify", "--data-dir", data], env=env, check=True, capture_output=True)
        crmd.send_signal(signal.SIGTERM)
        crmd.wait(timeout=60)
        v = subprocess.run([args.crmctl, "verify", "--data-dir", data, "--projections"], env=env,
                           capture_output=True, text=True)
        assert v.returncode == 0, f"verify --projections: {v.stdout[-2000:]} {v.stderr[-2000:]}"
        print(f"overload {args.overload}x: goodput {o['goodput']:.0f}/s = {o['goodput_share']:.3f} of the peak "
              f"{o['peak']:.0f}/s, ok p50 {o['ok_p50_ms']:.1f} ms p99 {o['ok_p99_ms']:.1f} ms; {o['rejected']} refused "
              f"(p50 {o['rejected_p50_ms']:.1f} ms, p99 {o['rejected_p99_ms']:.1f} ms), {o['expired']} past their "
              f"{o['patience_ms']:.0f} ms deadline; crmd healthy after, log and "
              f"projections verified; every acknowledged create there once, none refused there")
        failed = False
    finally:
        if crmd.poll() is None:
            crmd.kill()
            crmd.wait()
        if failed:
            print(f"FAIL (data kept in {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
