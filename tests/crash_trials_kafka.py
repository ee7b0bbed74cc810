#!/usr/bin/python3
"""Crash trials of the services on Kafka: crm-customers, crm-opportunities, crm-tasks and
crm-tickets as separate processes on crm-devbroker (librdkafka's mock cluster), under a mixed
CRM day (crm-bench --workload day with a target per service). Each trial kills one service
with SIGKILL at a random moment (the services take turns), restarts it on the same data
folder, and then:

- every write the day journalled as acknowledged is there (crm-bench --workload day-check
  against all four services); a create whose answer was lost is sent again with its
  request_id and must then exist exactly once;
- `crmctl verify --bootstrap-servers`: gapless versions, unbroken hash chains and unique event
  ids in every topic on the broker;
- the services that were not killed kept serving.

What this cannot show on the mock: it keeps the records of transactions a killed producer
left open visible to read_committed readers (ENVIRONMENT.md), where a real broker aborts and
hides them; a restarted service then sees such an event as written, which the checks accept
(an aggregate at or past its acknowledged version). `crmctl verify --projections` compares
crmd's embedded projections only, so a service's projections are checked here through its
answers to day-check.

Run with /usr/bin/python3; exits non-zero on the first trial that loses, duplicates or
corrupts anything.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import (acknowledged_writes, crmd_bench_parser, day_check, free_port, run_checked,  # noqa: E402
                         wait_healthy)

SERVICES = ("customers", "opportunities", "tasks", "tickets")


def main():
    ap = crmd_bench_parser(__doc__, crmd=False)
    ap.add_argument("--devbroker", required=True)
    for s in SERVICES:
        ap.add_argument(f"--{s}", required=True, help=f"the crm-{s} binary")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock, printed")
    ap.add_argument("--min-ms", type=int, default=500, help="earliest kill after the load starts")
    ap.add_argument("--max-ms", type=int, default=3000, help="latest kill after the load starts")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    print(f"kafka crash trials: {args.trials}, seed {seed}", flush=True)

    work = tempfile.mkdtemp(prefix="crm-crash-kafka-")
    key = "k" * 48
    env = dict(os.environ, CRM_SIGNING_KEY=key)
    token = subprocess.run([args.crmctl, "token", "--sub", "crash-trials", "--role", "admin"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    procs = {}
    bootstrap_file = os.path.join(work, "bootstrap")
    procs["broker"] = subprocess.Popen([args.devbroker, "--bootstrap-file", bootstrap_file],
                                       stdout=open(os.path.join(work, "broker.log"), "w"), stderr=subprocess.STDOUT)
    addr = {s: f"127.0.0.1:{free_port()}" for s in SERVICES}

    def start(service):
        procs[service] = subprocess.Popen(
            [getattr(args, service), "--bootstrap-servers", bootstrap, "--data-dir", os.path.join(work, service),
             "--listen", addr[service], "--metrics-listen", ""],
            env=env, stdout=open(os.path.join(work, f"{service}.log"), "a"), stderr=subprocess.STDOUT)
        wait_healthy(addr[service], seconds=120, proc=procs[service],
                     log_path=os.path.join(work, f"{service}.log")).close()

    targets = ["--target", addr["customers"], "--opportunities-target", addr["opportunities"],
               "--tasks-target", addr["tasks"], "--tickets-target", addr["tickets"], "--token", token]
    journals = []
    totals = {"acknowledged": 0, "resent": 0}
    failed = False
    try:
        deadline = time.time() + 20
        while not os.path.exists(bootstrap_file) and time.time() < deadline:
            time.sleep(0.05)
        bootstrap = open(bootstrap_file).read().strip()
        for s in SERVICES:
            start(s)
        for trial in range(args.trials):
            t0 = time.time()
            victim = SERVICES[trial % len(SERVICES)]
            journal = os.path.join(work, f"journal-{trial}")
            journals.append(journal)
            bench = subprocess.Popen([args.bench, "--workload", "day", *targets, "--clients", str(args.clients),
                                      "--seconds", "600", "--warmup", "0", "--journal", journal,
                                      "--seed", str(seed * 1000 + trial), "--first-customer", str(trial * 1_000_000)],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "bench.log"), "a"))
            # The day sets up its ticket type first; the load (and the journal) starts after.
            deadline = time.time() + 60
            while not os.path.exists(journal) and bench.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            assert os.path.exists(journal), f"the day did not start: {open(os.path.join(work, 'bench.log')).read()[-2000:]}"
            delay_ms = rng.randint(args.min_ms, args.max_ms)
            time.sleep(delay_ms / 1000)
            procs[victim].send_signal(signal.SIGKILL)
            bench.kill()
            procs[victim].wait()
            bench.wait()
            assert procs[victim].returncode == -signal.SIGKILL, f"{victim} exited by itself before the kill"
            for s in SERVICES:
                if s != victim:
                    assert procs[s].poll() is None, f"{s} died when {victim} was killed"
            acked = acknowledged_writes(journal)
            totals["acknowledged"] += acked
            t1 = time.time()
            start(victim)
            t2 = time.time()
            check_journals = journals if trial == args.trials - 1 else [journal]
            out, resent = day_check(args.bench, targets, check_journals, env, f"trial {trial}: day-check")
            totals["resent"] += resent
            run_checked([args.crmctl, "verify", "--bootstrap-servers", bootstrap], env, f"trial {trial}: crmctl verify")
            print(f"trial {trial}: {victim} killed after {delay_ms} ms; {acked} acknowledged writes; restart "
                  f"{t2 - t1:.1f} s; {out}; verify OK ({time.time() - t0:.1f} s)", flush=True)
        print(f"{args.trials} trials passed: {totals['acknowledged']} acknowledged writes, 0 lost, 0 duplicated; "
              f"{totals['resent']} unanswered creates sent again, each once; every topic verified")
    except Exception as e:  # noqa: BLE001 - report and keep the evidence
        failed = True
        print(f"FAIL: {e}\n(data, journals and logs kept in {work})", flush=True)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        if not failed:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
