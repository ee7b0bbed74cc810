#!/usr/bin/python3
"""Crash trials: crmd is killed with SIGKILL at a random moment under a mixed CRM day
(crm-bench --workload day: 70% reads, 30% writes over customers, opportunities, tasks and
tickets), then restarted on the same data, trial after trial. After each restart:

- the day acknowledged something before the kill, and crm-bench reported no error of its own;
- every write the day journalled as acknowledged is there (crm-bench --workload day-check):
  each aggregate at or past its acknowledged version, each follow-up listed, each customer
  once; a create whose answer was lost in the crash is sent again with its request_id and
  must then exist exactly once;
- `crmctl verify`: gapless versions, unbroken hash chains and unique event ids in every topic;
- once crmd is stopped, `crmctl verify --projections`: every projection equal to a fresh
  rebuild from the log (checksums).

20 trials run in `make test`, 200 in `make soak`. Run with /usr/bin/python3; exits non-zero
on the first trial that loses, duplicates or corrupts anything.
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
from crm_testlib import (acknowledged_writes, crmd_bench_parser, day_check, forged_journal_control,  # noqa: E402
                         free_port, kill_load, run_checked, wait_for_load, wait_healthy)


def main():
    ap = crmd_bench_parser(__doc__)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock, printed")
    ap.add_argument("--min-ms", type=int, default=300, help="earliest kill after the load starts")
    ap.add_argument("--max-ms", type=int, default=2500, help="latest kill after the load starts")
    ap.add_argument("--keep", action="store_true", help="keep the data folder and journals")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    print(f"crash trials: {args.trials}, seed {seed}", flush=True)

    work = tempfile.mkdtemp(prefix="crm-crash-")
    data = os.path.join(work, "data")
    key = "k" * 48
    env = dict(os.environ, CRM_SIGNING_KEY=key)
    port = free_port()
    addr = f"127.0.0.1:{port}"
    log = open(os.path.join(work, "crmd.log"), "a")
    token = subprocess.run([args.crmctl, "token", "--sub", "crash-trials", "--role", "admin"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    env["CRM_TOKEN"] = token

    def start():
        p = subprocess.Popen([args.crmd, "--data-dir", data, "--listen", addr, "--metrics-listen", "",
                              "--dashboard-listen", ""], env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_healthy(addr, seconds=60, proc=p, log_path=log.name).close()
        return p

    journals = []
    totals = {"acknowledged": 0, "resent": 0}
    failed = False
    crmd = None
    try:
        for trial in range(args.trials):
            t0 = time.time()
            crmd = start()
            journal = os.path.join(work, f"journal-{trial}")
            journals.append(journal)
            bench_log = os.path.join(work, f"bench-{trial}.log")
            bench = subprocess.Popen([args.bench, "--workload", "day", "--target", addr, "--token", token,
                                      "--clients", str(args.clients), "--seconds", "600", "--warmup", "0",
                                      "--journal", journal, "--seed", str(seed * 1000 + trial),
                                      "--first-customer", str(trial * 1_000_000)],
                                     stdout=subprocess.DEVNULL, stderr=open(bench_log, "w"))
            wait_for_load(bench, journal, bench_log)
            delay_ms = rng.randint(args.min_ms, args.max_ms)
            time.sleep(delay_ms / 1000)
            bench_alive = bench.poll() is None
            crmd.send_signal(signal.SIGKILL)
            # The day dies with it: what was in flight stays unanswered (intents without an
            # acknowledgement), as a client that lost its server would see it.
            kill_load(bench, bench_log, f"trial {trial}", bench_alive)
            crmd.wait()
            assert crmd.returncode == -signal.SIGKILL, f"crmd exited by itself ({crmd.returncode}) before the kill"
            acked = acknowledged_writes(journal)
            assert acked > 0, f"trial {trial}: nothing was acknowledged before the kill: the trial did not test"
            totals["acknowledged"] += acked

            t1 = time.time()
            crmd = start()
            t2 = time.time()
            # The last trial checks every journal again: nothing acknowledged earlier was lost
            # by a later crash either.
            check_journals = journals if trial == args.trials - 1 else [journal]
            out, resent = day_check(args.bench, ["--target", addr, "--token", token], check_journals, env,
                                    f"trial {trial}: day-check")
            totals["resent"] += resent
            t3 = time.time()
            run_checked([args.crmctl, "verify", "--data-dir", data], env, f"trial {trial}: crmctl verify")
            t4 = time.time()
            crmd.send_signal(signal.SIGTERM)
            crmd.wait(timeout=60)
            crmd = None
            run_checked([args.crmctl, "verify", "--data-dir", data, "--projections"], env,
                        f"trial {trial}: crmctl verify --projections")
            t5 = time.time()
            print(f"  restart {t2 - t1:.1f} s, day-check {t3 - t2:.1f} s, verify {t4 - t3:.1f} s, stop and projections {t5 - t4:.1f} s")
            print(f"trial {trial}: killed after {delay_ms} ms; {acked} acknowledged writes, "
                  f"{resent} creates with no answer sent again; {out}; verify and projections OK "
                  f"({time.time() - t0:.1f} s)", flush=True)
        # The check can fail: a journal claiming a version past the one stored and a customer
        # never created are both reported.
        crmd = start()
        forged_journal_control(args.bench, ["--target", addr, "--token", token], journals[-1],
                               os.path.join(work, "journal-forged"), env)
        crmd.send_signal(signal.SIGTERM)
        crmd.wait(timeout=60)
        crmd = None
        print(f"{args.trials} trials passed: {totals['acknowledged']} acknowledged writes, 0 lost, 0 duplicated; "
              f"{totals['resent']} unanswered creates sent again, each once; every projection equal to a rebuild")
    except Exception as e:  # noqa: BLE001 - report and keep the evidence
        failed = True
        print(f"FAIL: {e}\n(data and journals kept in {work})", flush=True)
    finally:
        if crmd is not None and crmd.poll() is None:
            crmd.kill()
            crmd.wait()
        if not failed and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
