#!/usr/bin/python3
"""crmctl's operator verbs (which it runs crm-ops for) against crmd's data folder: tail (one
line each, CloudEvents JSON lines, following new records), lag, verify while crmd runs (hash
chains and versions) and verify --projections once it stopped (every projection equal to a
fresh rebuild), with their exit codes.

Run with /usr/bin/python3. Prints "N passed, N failed" and exits non-zero on failure.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import Crmd, LineReader, check, crmd_test_args, generate_protos, summary, work_dir  # noqa: E402


def main():
    args = crmd_test_args()

    work = work_dir("crm-ops-")
    generate_protos(work, args.protoc, args.proto_root, args.google_protos)  # wait_healthy needs the health stubs
    key = "o" * 48
    data = os.path.join(work, "data")
    crmd = Crmd(args.crmd, data, key, os.path.join(work, "crmd.log"))
    env = dict(os.environ, CRM_SIGNING_KEY=key)

    def ctl(*a, ok=(0,)):
        r = subprocess.run([args.crmctl, *a], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode in ok, f"crmctl {' '.join(a)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    follow_creates = [1]  # the customers tail --follow's check created
    with crmd:
        token = ctl("token", "--sub", "u1", "--role", "rep", "--team", "east").stdout.strip()
        env["CRM_TOKEN"] = token
        env["CRM_ADDR"] = crmd.addr
        for i in range(3):
            ctl("customers", "create", "--display-name", f"运维测试公司{i}", "--phone", f"1380000000{i}")

        def tail_prints_each_record():
            lines = ctl("tail", "crm.customers.events.v1", "--data-dir", data).stdout.strip().splitlines()
            assert len(lines) == 3 and all("crm.customers.v1.CustomerCreated" in ln for ln in lines), lines
            events = [json.loads(ln) for ln in ctl("-o", "json", "tail", "crm.customers.events.v1", "--data-dir", data,
                                                   "--from-beginning").stdout.splitlines()]
            assert len(events) == 3 and {e["crmaggregateversion"] for e in events} == {1}, events
            assert all(e["specversion"] == "1.0" and e["data"]["profile"]["display_name"].startswith("运维测试公司")
                       for e in events), events
            r = ctl("tail", "crm.nothing.v1", "--data-dir", data, ok=(2,))
            assert "no topic crm.nothing.v1" in r.stderr, r.stderr

        def tail_follows_new_records():
            scratch = os.path.join(work, "tail-tmp")
            os.makedirs(scratch)
            p = subprocess.Popen([args.crmctl, "-o", "json", "tail", "crm.customers.events.v1", "--data-dir", data,
                                  "-n", "0", "--follow"], env=dict(env, TMPDIR=scratch), stdout=subprocess.PIPE)
            lines = LineReader(p.stdout, "crmctl tail --follow")
            try:
                # -n 0 starts at the end as tail finds it once started, which nothing signals:
                # write until a record shows (each a new customer), within a deadline.
                names = []
                deadline = time.time() + 30
                while True:
                    names.append(f"跟随测试公司{len(names)}")
                    ctl("customers", "create", "--display-name", names[-1], "--phone", f"1380001{len(names):04d}")
                    try:
                        line = lines.line(1)
                        break
                    except AssertionError:
                        if time.time() > deadline:
                            raise
                e = json.loads(line)
                assert e["data"]["profile"]["display_name"] in names, (e, names)
                # Interrupted, it stops cleanly and removes its follower's scratch folder.
                p.send_signal(signal.SIGTERM)
                assert p.wait(timeout=10) == 0, p.returncode
                assert os.listdir(scratch) == [], os.listdir(scratch)
                follow_creates[0] = len(names)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()

        def destructive_verbs_need_yes_and_dry_run_shows_the_request():
            cust = json.loads(ctl("-o", "json", "customers", "create", "--display-name", "联系人测试公司",
                                  "--phone", "13800000008").stdout)
            added = json.loads(ctl("-o", "json", "customers", "contacts", "add", cust["name"], "--name", "张三",
                                   "--phone", "13900000008").stdout)
            contact_id = added["contacts"][0]["id"]
            r = ctl("customers", "contacts", "remove", cust["name"], "--contact-id", contact_id, ok=(2,))
            assert "add --yes" in r.stderr, r.stderr
            r = ctl("customers", "contacts", "remove", cust["name"], "--contact-id", contact_id, "--dry-run")
            assert "would call RemoveContact" in r.stdout and contact_id in r.stdout, r.stdout
            got = json.loads(ctl("-o", "json", "customers", "get", cust["name"]).stdout)
            assert len(got["contacts"]) == 1, got
            ctl("customers", "contacts", "remove", cust["name"], "--contact-id", contact_id, "--yes")
            got = json.loads(ctl("-o", "json", "customers", "get", cust["name"]).stdout)
            assert not got.get("contacts"), got

        def lag_is_zero_when_caught_up():
            # The services follow each other's topics asynchronously (the rules' tasks, then the
            # customers' follower of the tasks topic): caught up within a bounded wait.
            deadline = time.monotonic() + 20
            while True:
                rows = json.loads(ctl("-o", "json", "lag", "--data-dir", data).stdout)
                if all(r["lag"] == 0 for r in rows) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert {r["projection"] for r in rows} == {"customers", "opportunities", "tasks", "tickets", "analytics"}
            assert all(r["lag"] == 0 for r in rows), rows
            applied = 6 + follow_creates[0]
            assert any(r["topic"] == "crm.customers.events.v1" and r["applied"] == applied for r in rows), rows

        def ops_verbs_run_crm_ops_beside_crmctl_or_on_path():
            # crmctl carries no engine: crm-ops runs these verbs, and --help says so.
            helptext = ctl("--help").stdout
            for verb in ("rebuild", "tail", "lag", "verify"):
                assert any(ln.split()[:1] == [verb] and "(runs crm-ops)" in ln for ln in helptext.splitlines()), helptext
            # A crmctl alone in its folder takes crm-ops from PATH, and without it says what is missing.
            alone = os.path.join(work, "alone")
            os.makedirs(alone)
            lone = os.path.join(alone, "crmctl")
            try:
                os.link(args.crmctl, lone)
            except OSError:
                shutil.copy2(args.crmctl, lone)
            bare = dict(env, PATH="/usr/bin:/bin")
            r = subprocess.run([lone, "-o", "json", "lag", "--data-dir", data], env=bare, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
            assert "lag runs crm-ops" in r.stderr and "nor on PATH" in r.stderr, r.stderr
            # A relative PATH entry is not searched: it would run what the current folder holds.
            tools = os.path.dirname(os.path.abspath(args.crmctl))
            r = subprocess.run([lone, "lag", "--data-dir", data], env=dict(env, PATH=".:/usr/bin:/bin"), cwd=tools,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and "nor on PATH" in r.stderr, (r.returncode, r.stderr)
            on_path = dict(env, PATH=tools + ":/usr/bin:/bin")
            r = subprocess.run([lone, "-o", "json", "lag", "--data-dir", data], env=on_path, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, (r.returncode, r.stderr)
            assert {row["projection"] for row in json.loads(r.stdout)} >= {"customers", "tickets"}, r.stdout

        def verify_while_running():
            out = ctl("verify", "--data-dir", data).stdout
            assert "verified: no problem" in out, out
            r = ctl("verify", "--data-dir", data, "--projections", ok=(4,))
            assert "stop crmd to verify projections" in r.stdout, r.stdout

        def verify_projections_after_stop():
            crmd.stop()
            report = json.loads(ctl("-o", "json", "verify", "--data-dir", data, "--projections").stdout)
            assert report["problems"] == 0, report
            assert len(report["projections"]) == 5 and all(p["equal"] for p in report["projections"]), report
            assert report["topics"][0]["events"] == 6 + follow_creates[0], report["topics"][0]
            # A projection folder gone is a problem too, named, not a clean verify.
            shutil.rmtree(os.path.join(data, "tasks"))
            r = ctl("verify", "--data-dir", data, "--projections", ok=(4,))
            assert "tasks projections are missing" in r.stdout, r.stdout

        check("tail prints each record, as a line or as CloudEvents JSON; an unknown topic is exit 2",
              tail_prints_each_record)
        check("tail --follow prints a record written after it started", tail_follows_new_records)
        check("a destructive verb: refused without --yes, --dry-run prints the request, --yes does it",
              destructive_verbs_need_yes_and_dry_run_shows_the_request)
        check("lag: every projection of crmd caught up", lag_is_zero_when_caught_up)
        check("crmctl --help lists the operator verbs as crm-ops's; they run crm-ops beside crmctl, else on PATH, "
              "else exit 2 naming it", ops_verbs_run_crm_ops_beside_crmctl_or_on_path)
        check("verify beside a running crmd: chains ok; --projections needs crmd stopped (exit 4)",
              verify_while_running)
        check("verify --projections after stop: every projection equals a fresh rebuild; a missing one is exit 4",
              verify_projections_after_stop)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
