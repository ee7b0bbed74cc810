#!/usr/bin/python3
"""Hostile input against the log and the audit trail (issue 25), on crmd's embedded log.

Someone who can write crmd's data files (crmd stopped) or a damaged disk:

- flips a byte in the middle of the log's write-ahead log after acknowledged creates, or in
  one of its table files;
- rewrites an event and recomputes its hash chain (the unkeyed chains cannot tell);
- removes an aggregate's last event and sets its stream back (the chain stays valid);
- leaves projections ahead of the log (rows for events the log no longer has).

Each time crmd refuses to start with one clear line and `crmctl verify` exits 4 naming the
problem; the seals (--seal-key, Ed25519, key outside the data folder) catch the rewrites; and
`crmd --accept-log-truncation` starts anyway, logs an AUDIT line, rebuilds the projections,
after which crmd starts normally and verify is clean. crm-log-tamper plays the attacker.
Run with /usr/bin/python3.
"""
import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import check, free_port, summary, wait_healthy, work_dir  # noqa: E402

KEY = "a" * 48
TOPIC = "crm.customers.events.v1"


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--crmd", "--crmctl", "--tamper"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    work = work_dir("crm-abuse-durability-")
    env = dict(os.environ, CRM_SIGNING_KEY=KEY)
    env["CRM_TOKEN"] = subprocess.run([args.crmctl, "token", "--sub", "abuse", "--role", "admin"], env=env,
                                      capture_output=True, text=True, check=True).stdout.strip()
    seal_key = os.path.join(work, "seal.key")  # apart from every data folder
    log_path = os.path.join(work, "crmd.log")

    def crmd_args(data, *extra):
        return [args.crmd, "--data-dir", data, "--metrics-listen", "", "--dashboard-listen", "", *extra]

    def start(data, *extra):
        addr = f"127.0.0.1:{free_port()}"
        with open(log_path, "a") as out:
            p = subprocess.Popen(crmd_args(data, "--listen", addr, *extra), env=env, stdout=out,
                                 stderr=subprocess.STDOUT)
        wait_healthy(addr, seconds=30, proc=p, log_path=log_path).close()
        return p, addr

    def stop(p, sig=signal.SIGTERM):
        p.send_signal(sig)
        p.wait(timeout=30)

    def refused(data, *extra):
        """crmd's exit code and output when it is expected to refuse to start."""
        r = subprocess.run(crmd_args(data, "--listen", f"127.0.0.1:{free_port()}", *extra), env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, f"crmd started:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
        return r.stdout + r.stderr

    def verify(data, *extra):
        r = subprocess.run([args.crmctl, "verify", "--data-dir", data, *extra], env=env, capture_output=True,
                           text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    def create(addr, n, first):
        for i in range(n):
            subprocess.run([args.crmctl, "--addr", addr, "customers", "create", "--display-name", f"客户 {first + i}",
                            "--phone", f"1380{first + i:07d}"], env=env, capture_output=True, check=True)

    def customers(data):
        p, addr = start(data, *(["--seal-key", seal_key] if os.path.exists(os.path.join(data, "seals")) else []))
        r = subprocess.run([args.crmctl, "--addr", addr, "-o", "json", "customers", "list", "--page-size", "200"],
                           env=env, capture_output=True, text=True, check=True)
        stop(p)
        return r.stdout.count('"customers/')

    # Two folders: one sealed and cleanly stopped, one unsealed.
    sealed = os.path.join(work, "sealed")
    p, addr = start(sealed, "--seal-key", seal_key, "--create-seal-key")
    create(addr, 12, 0)
    stop(p)
    plain = os.path.join(work, "plain")
    p, addr = start(plain)
    create(addr, 12, 100)
    stop(p)

    def copy(src, name):
        dst = os.path.join(work, name)
        shutil.copytree(src, dst)
        return dst

    def untouched_folders_verify():
        code, out = verify(sealed, "--seal-key", seal_key)
        assert code == 0 and "seal " in out, out
        code, out = verify(plain)
        assert code == 0, out

    def seal_key_must_be_apart():
        out = refused(sealed, "--seal-key", os.path.join(sealed, "seal.key"), "--create-seal-key")
        assert "kept apart from --data-dir" in out, out
        out = refused(sealed)
        assert "the log is sealed" in out and "--seal-key" in out, out

    def flipped_wal_byte():
        data = copy(plain, "wal")
        p, addr = start(data)
        create(addr, 30, 200)
        stop(p, signal.SIGKILL)  # the WAL holds the acknowledged creates
        wal = max(glob.glob(os.path.join(data, "log", "*.log")), key=os.path.getsize)
        size = os.path.getsize(wal)
        with open(wal, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0x5A]))
        out = refused(data)
        assert f"{os.path.basename(wal)} is damaged at byte" in out and "--accept-log-truncation" in out, out
        code, out = verify(data)
        assert code == 4 and "is damaged at byte" in out, (code, out)
        # The operator accepts the loss: crmd starts, says so, rebuilds the projections.
        p, _ = start(data, "--accept-log-truncation")
        stop(p)
        with open(log_path) as f:
            audit = [ln for ln in f if "AUDIT" in ln and "accepted a truncation" in ln and "damaged at byte" in ln]
        assert audit, "no audit line for the accepted truncation"
        code, out = verify(data)
        assert code == 0, out
        kept = customers(data)
        assert 12 <= kept < 42, kept  # the creates before the damage are kept, the ones after it are gone

    def damaged_table_file():
        data = copy(plain, "sst")
        sst = max(glob.glob(os.path.join(data, "log", "*.sst")), key=os.path.getsize)
        size = os.path.getsize(sst)
        with open(sst, "r+b") as f:
            f.seek(size // 3)  # inside a data block
            b = f.read(1)
            f.seek(size // 3)
            f.write(bytes([b[0] ^ 0x5A]))
        name = os.path.basename(sst)
        out = refused(data)
        assert "Corruption" in out and name in out, out
        code, out = verify(data)
        assert code == 4 and name in out, (code, out)

    def rewritten_event():
        data = copy(sealed, "rewrite")
        t = subprocess.run([args.tamper, "rewrite", os.path.join(data, "log"), TOPIC], capture_output=True, text=True)
        assert t.returncode == 0, t.stderr
        # The unkeyed chains are fooled: the hash was recomputed.
        code, out = verify(data)
        assert code == 0, out
        code, out = verify(data, "--seal-key", seal_key)
        assert code == 4 and "are not those sealed" in out, (code, out)
        out = refused(data, "--seal-key", seal_key)
        assert "the log is not as seal" in out and "are not those sealed" in out, out

    def removed_last_event():
        data = copy(sealed, "delete")
        t = subprocess.run([args.tamper, "delete-last", os.path.join(data, "log"), TOPIC], capture_output=True,
                           text=True)
        assert t.returncode == 0, t.stderr
        code, out = verify(data, "--seal-key", seal_key)
        assert code == 4 and ("sealed records were removed" in out or "records are missing" in out), (code, out)
        out = refused(data, "--seal-key", seal_key)
        assert "hold events the log no longer has" in out or "sealed records were removed" in out, out
        p, _ = start(data, "--seal-key", seal_key, "--accept-log-truncation")
        stop(p)
        with open(log_path) as f:
            assert any("AUDIT" in ln and "accepted" in ln for ln in f), "no audit line"
        code, out = verify(data, "--seal-key", seal_key)
        assert code == 0, out
        assert customers(data) == 11

    def projections_ahead_of_the_log():
        data = copy(plain, "ahead")
        t = subprocess.run([args.tamper, "delete-last", os.path.join(data, "log"), TOPIC], capture_output=True,
                           text=True)
        assert t.returncode == 0, t.stderr
        out = refused(data)
        assert "hold events the log no longer has" in out and TOPIC in out, out
        code, out = verify(data)
        assert code == 4 and "projections hold events the log no longer has" in out, (code, out)

    check("untouched folders verify clean, with and without the seal key", untouched_folders_verify)
    check("the seal key must live outside the data folder, and a sealed log needs it", seal_key_must_be_apart)
    check("a flipped byte in the WAL: refused, verify exit 4, truncation accepted and audited", flipped_wal_byte)
    check("a damaged table file of the log: refused, verify exit 4 naming it", damaged_table_file)
    check("an event rewritten with its chain recomputed: seals catch it", rewritten_event)
    check("an aggregate's last event removed: refused, verify exit 4, accepted and audited", removed_last_event)
    check("projections ahead of the log: refused, verify exit 4", projections_ahead_of_the_log)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
