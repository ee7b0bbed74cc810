#!/usr/bin/python3
"""Disk full: crmd's data folder on a small tmpfs. Under a mixed day (crm-bench --workload day)
the disk fills up; then

- writes fail, and crmd keeps serving reads: RESOURCE_EXHAUSTED only when nothing was written,
  UNAVAILABLE when the outcome is unknown (a write failed midway); the client gets an incident
  id, under which crmd's log names the full disk;
- every write acknowledged before or during the shortage is there, and no create refused with
  a definite error (RESOURCE_EXHAUSTED) exists, then or once space returned (day-check of the
  journals);
- once space returns (the tmpfs grows), writes succeed again without a restart;
- after a clean stop, `crmctl verify` (versions, hash chains, event ids) and `crmctl verify
  --projections` (every projection equal to a fresh rebuild) find nothing wrong.

Needs root to mount the tmpfs; where mounting is not permitted it fails, unless
CRM_TEST_ALLOW_SKIP names disk_full (then it exits 77, which ctest reports as skipped).
Run with /usr/bin/python3.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import day_check, free_port, suite_unavailable, wait_healthy  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crmd", required=True)
    ap.add_argument("--crmctl", required=True)
    ap.add_argument("--bench", required=True)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="crm-diskfull-")
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt], capture_output=True, text=True)
    if mount.returncode != 0:
        shutil.rmtree(work)
        return suite_unavailable("disk_full", f"cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): "
                                              f"{(mount.stderr.strip().splitlines() or [''])[0].rstrip('.')}")
    data = os.path.join(mnt, "data")
    key = "d" * 48
    env = dict(os.environ, CRM_SIGNING_KEY=key)
    addr = f"127.0.0.1:{free_port()}"
    token = subprocess.run([args.crmctl, "token", "--sub", "disk-full", "--role", "admin"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    crmd = None
    failed = True
    journals = []

    def day(n, seconds):
        journal = os.path.join(work, f"journal-{n}")
        journals.append(journal)
        r = subprocess.run([args.bench, "--workload", "day", "--target", addr, "--token", token, "--clients", "8",
                            "--seconds", str(seconds), "--warmup", "0", "--journal", journal, "--seed", str(n),
                            "--first-customer", str(n * 10_000_000), "--json"],
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        rows = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
        assert len(rows) == 1, r.stdout
        first = re.search(r"first error: (.*)", r.stderr)
        by_code = rows[0]["errors_by_code"]
        assert sum(by_code.values()) == rows[0]["errors"], rows[0]
        return rows[0]["ops"], rows[0]["errors"], first.group(1) if first else "", by_code

    def check(*extra):
        return day_check(args.bench, ["--target", addr, "--token", token], journals, env, "day-check", extra,
                         timeout=300)[0]

    try:
        crmd = subprocess.Popen([args.crmd, "--data-dir", data, "--listen", addr, "--metrics-listen", "",
                                 "--dashboard-listen", ""], env=env,
                                stdout=open(os.path.join(work, "crmd.log"), "w"), stderr=subprocess.STDOUT)
        wait_healthy(addr, seconds=60, proc=crmd, log_path=os.path.join(work, "crmd.log")).close()
        ok, errors, first, _ = day(0, 2)
        assert ok > 0 and errors == 0, (ok, errors, first)
        print(f"before: {ok} calls, 0 errors")

        # Take all but 1 MiB of what is left.
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        with open(os.path.join(mnt, "filler"), "wb") as f:
            f.truncate(0)
            os.posix_fallocate(f.fileno(), 0, free - (1 << 20))
        ok, errors, first, by_code = day(1, 4)
        print(f"disk full: {ok} calls answered, {errors} refused ({by_code}); first refusal: {first}")
        assert errors > 0, "the disk never filled up: test did not test"
        # Every refusal, not only the first, says what the client may do: nothing else is an
        # answer to a full disk.
        assert set(by_code) <= {"RESOURCE_EXHAUSTED", "UNAVAILABLE"}, by_code
        # RESOURCE_EXHAUSTED when nothing was written; UNAVAILABLE when a write failed midway
        # (its outcome is unknown until read back). The client gets the code and an incident id,
        # never RocksDB's text with its paths; the operator finds the full disk under that id in
        # crmd's log.
        assert first.split(":")[0] in ("RESOURCE_EXHAUSTED", "UNAVAILABLE") and mnt not in first, first
        incident = re.search(r"incident ([0-9a-f-]{36})", first)
        assert incident, first
        with open(os.path.join(work, "crmd.log")) as log:
            cause = [line for line in log if incident.group(1) in line]
        assert cause and "disk holding the data is full" in cause[0], cause
        assert crmd.poll() is None, "crmd died on a full disk"
        print("acknowledged so far, read while the disk is full: " + check("--no-resend"))

        # Space returns: the tmpfs grows (the filler stays), and writes work again, no restart.
        subprocess.run(["mount", "-o", "remount,size=256m", mnt], check=True)
        # RocksDB recovers by itself within moments; each try is a new day (new customers).
        deadline = time.time() + 30
        attempt = 2
        while True:
            ok, errors, first, by_code = day(attempt, 2)
            attempt += 1
            if errors == 0 or time.time() > deadline:
                break
        assert errors == 0, f"writes did not resume once there was space: {by_code}, first {first}"
        print(f"space back: {ok} calls, 0 errors (after {attempt - 3} days with refusals while recovering)")
        print("acknowledged in all: " + check())

        crmd.send_signal(signal.SIGTERM)
        crmd.wait(timeout=60)
        assert crmd.returncode == 0, f"crmd exit {crmd.returncode}"
        crmd = None
        for extra in ([], ["--projections"]):
            r = subprocess.run([args.crmctl, "verify", "--data-dir", data, *extra], env=env, capture_output=True,
                               text=True, timeout=300)
            assert r.returncode == 0, f"crmctl verify {extra}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        print("crmctl verify and verify --projections: nothing wrong")
        failed = False
    finally:
        if crmd is not None and crmd.poll() is None:
            crmd.kill()
            crmd.wait()
        subprocess.run(["umount", mnt])
        if failed:
            print(f"FAIL (journals and crmd.log kept in {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
