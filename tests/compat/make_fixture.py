"""Makes the log-compatibility fixture of tests/compat_test.py from a build of an older commit.

    /usr/bin/python3 tests/compat/make_fixture.py --old-build /work/wt-base/build \\
        --compat-log build/tests/crm-compat-log --out tests/compat --name 8702e91

With the OLD build's crmd, crmctl and crm-bench it: starts crmd on a fresh data folder; runs
crm-bench's mixed day (--seed 1) for a few seconds; then, through the old crmctl, one of every
kind of write a later refactor of the write path could re-encode (customers created, updated,
released, claimed, deleted and restored, follow-ups, merges and an unmerge, leads qualified and
converted with an opportunity, opportunities moved, won and lost, a quote sent and accepted into a
contract, the contract submitted, approved, planned and paid, a ticket type, calendar and SLA
policy, tickets moved and commented, an automation rule); stops crmd; runs the old
`crmctl verify --projections -o json` and keeps each service's checksums (the live projections
and the old code's rebuild of them must agree, or this script stops). Then the NEW build's
crm-compat-log dumps the log's records (bytes, keys, headers, partitions, offsets) into
<out>/fixture-<name>.dump.gz and the checksums go to <out>/checksums-<name>.json.

The script and its inputs are fixed (seeds, names, numbers), but events carry wall-clock times
and random ids, so a regenerated fixture has other bytes and other checksums: regenerate both
together, never one alone. The dump is read with today's eventlog reader, which only copies
records out; everything the compatibility test checks (the bytes' meaning, the checksums) came
from the old binaries.
"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compat_test import combined, prefix_checksums  # noqa: E402
from crm_testlib import free_port, mint_token, wait_healthy  # noqa: E402

TOPICS = ["crm.customers.events.v1", "crm.opportunities.events.v1", "crm.tasks.events.v1", "crm.tickets.events.v1",
          "crm.public.events.v1", "crm.inbound.v1"]
KEY = "c" * 48

RULE = {"display_name": "赢单回访", "enabled": True, "event": {"event_type": "crm.opportunities.v1.OpportunityWon"},
        "action": {"title": "赢单回访", "assignee": "ASSIGNEE_KIND_RECORD_OWNER", "due_in_minutes": 1440,
                   "priority": "TASK_PRIORITY_HIGH"}}

TAGS = {"rules": [{"id": "active", "tag": "活跃", "event_type": "crm.customers.v1.FollowUpRecorded",
                   "measure": "TAG_RULE_MEASURE_COUNT", "window_days": 30, "threshold": 2, "enabled": True}]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-build", required=True, help="the old commit's build folder")
    ap.add_argument("--compat-log", required=True, help="crm-compat-log of today's build")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", required=True, help="the old commit, e.g. 8702e91")
    ap.add_argument("--seconds", type=float, default=3)
    args = ap.parse_args()
    crmd_bin = os.path.join(args.old_build, "services/crmd/crmd")
    crmctl_bin = os.path.join(args.old_build, "tools/crmctl")
    bench_bin = os.path.join(args.old_build, "tools/crm-bench")
    work = tempfile.mkdtemp(prefix="crm-compat-")
    data = os.path.join(work, "data")
    env = dict(os.environ, CRM_SIGNING_KEY=KEY)
    port = free_port()
    addr = f"127.0.0.1:{port}"
    tokens = {"rep": mint_token(KEY, "u1", "rep", "east"), "rep2": mint_token(KEY, "u2", "rep", "east"),
              "manager": mint_token(KEY, "m1", "manager", "east"), "admin": mint_token(KEY, "boss", "admin")}
    log = open(os.path.join(work, "crmd.log"), "a")
    crmd = subprocess.Popen([crmd_bin, "--data-dir", data, "--listen", addr, "--metrics-listen", "",
                             "--dashboard-listen", "", "--scheduler-interval", "1"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)

    def ctl(who, *argv):
        r = subprocess.run([crmctl_bin, "--addr", addr, "--token", tokens[who], "-o", "json", *argv],
                           capture_output=True, text=True, env=env, timeout=60)
        if r.returncode != 0:
            raise SystemExit(f"crmctl {' '.join(argv)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
        try:
            return json.loads(r.stdout) if r.stdout.strip() else {}
        except json.JSONDecodeError:
            return {"raw": r.stdout}

    def name(obj, *path):
        for p in path:
            obj = obj[p]
        return obj.rsplit("/", 1)[-1]

    try:
        wait_healthy(addr, proc=crmd)
        r = subprocess.run([bench_bin, "--workload", "day", "--target", addr, "--token", tokens["admin"],
                            "--clients", "4", "--seconds", str(args.seconds), "--warmup", "0", "--seed", "1",
                            "--first-customer", "500000"], capture_output=True, text=True, env=env, timeout=300)
        if r.returncode != 0:
            raise SystemExit(f"crm-bench day: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")

        # Settings of both services. The customers' settings row is written with SerializeAsString
        # and PoolPolicy holds two maps: with two entries or more a map's bytes come in an order
        # that varies between runs, so 8702e91's own rebuild differs from its live row (crmctl
        # verify --projections: customers not equal). One entry per map keeps the row's bytes
        # fixed and still covers the maps.
        ctl("admin", "pool", "set", "--daily-claim-limit", "20", "--return-after-days", "30", "--team-days",
            "east=15", "--user-limit", "u2=5")
        ctl("admin", "industries", "set", "--industry", "manufacturing=制造业", "--industry", "retail=零售",
            "--industry", "it=信息技术")
        ctl("admin", "channel-costs", "set", "--channel", "exhibition", "--month", "2026-11", "--amount", "12000.50",
            "--note", "广交会")
        tag_path = os.path.join(work, "tags.json")
        with open(tag_path, "w") as f:
            json.dump(TAGS, f, ensure_ascii=False)
        ctl("admin", "tag-rules", "set", "--file", tag_path)
        ctl("admin", "sales-settings", "set-approval-threshold", "50000")

        # Customers: every command of the customers service that writes.
        a = ctl("rep", "customers", "create", "--display-name", "兼容甲公司", "--phone", "13900000001",
                "--email", "a@compat.example", "--tag", "重点", "--channel", "exhibition", "--region", "广东/深圳",
                "--request-id", "compat-a")
        b = ctl("rep", "customers", "create", "--display-name", "兼容甲公司（重复）", "--phone", "13900000002",
                "--request-id", "compat-b")
        c = ctl("rep", "customers", "create", "--display-name", "兼容乙公司", "--phone", "13900000003",
                "--request-id", "compat-c")
        d = ctl("rep", "customers", "create", "--display-name", "兼容丙公司", "--phone", "13900000004",
                "--kind", "person", "--request-id", "compat-d")
        ctl("rep", "customers", "update", name(a, "name"), "--status", "intent", "--notes", "年框客户",
            "--scale", "large")
        ctl("rep", "customers", "followups", "add", name(a, "name"), "--channel", "visit", "--summary", "上门拜访",
            "--next-step", "报价", "--request-id", "compat-fu1")
        ctl("manager", "customers", "merge", name(a, "name"), name(b, "name"), "--request-id", "compat-m1")
        ctl("manager", "customers", "merge", name(a, "name"), name(c, "name"), "--request-id", "compat-m2")
        ctl("manager", "customers", "unmerge", name(a, "name"), name(c, "name"), "--request-id", "compat-u1")
        ctl("rep", "customers", "release", name(d, "name"), "--reason", "无意向")
        ctl("rep2", "customers", "claim", name(d, "name"), "--request-id", "compat-claim")
        ctl("manager", "customers", "delete", name(c, "name"), "--reason", "重复", "--yes")
        ctl("manager", "customers", "undelete", name(c, "name"))

        # Leads: created, qualified, converted with an opportunity request; one disqualified.
        lead = ctl("rep", "leads", "create", "--contact-name", "王芳", "--company", "兼容线索公司",
                   "--phone", "13900000005", "--channel", "exhibition", "--need", "年采购 500 台",
                   "--request-id", "compat-l1")
        ctl("rep", "leads", "qualify", name(lead, "name"))
        ctl("rep", "leads", "convert", name(lead, "name"), "--opportunity", "--opportunity-name", "500 台年框",
            "--expected-amount", "150000000", "--request-id", "compat-conv")
        lead2 = ctl("rep", "leads", "create", "--contact-name", "李雷", "--company", "兼容线索二",
                    "--phone", "13900000006", "--request-id", "compat-l2")
        ctl("rep", "leads", "disqualify", name(lead2, "name"), "--reason", "预算不足")

        # Opportunities, a quote accepted into a contract, its plan and a payment.
        o = ctl("rep", "opportunities", "create", "--customer", name(a, "name"), "--title", "智能仓储系统",
                "--amount", "120000.00", "--close-date", "2026-12-31", "--request-id", "compat-o1")
        for stage in ("needs_analysis", "proposal"):
            ctl("rep", "opportunities", "move", name(o, "name"), stage, "--note", "推进")
        q = ctl("rep", "quotes", "create", "--opportunity", name(o, "name"), "--line", "货架|2.5|33333.33|9.5|13",
                "--line", "实施服务|1|10000|0|6", "--request-id", "compat-q1")
        ctl("rep", "quotes", "send", name(q, "name"))
        acc = ctl("rep", "quotes", "accept", name(q, "name"), "--start", "2026-01-01", "--end", "2026-12-31",
                  "--request-id", "compat-acc")
        k = name(acc, "contract", "name")
        ctl("rep", "contracts", "submit", k)
        ctl("manager", "contracts", "approve", k, "--comment", "同意")
        ctl("rep", "contracts", "plan", k, "--instalment", "2026-03-31=47910.42", "--instalment",
            "2026-09-30=47910.41")
        ctl("rep", "contracts", "pay", k, "--amount", "30000.00", "--paid-at", "2026-02-01", "--method", "银行转账",
            "--reference", "B-001", "--request-id", "compat-pay1")
        ctl("rep", "opportunities", "win", name(o, "name"), "--reason", "方案最优")
        o2 = ctl("rep2", "opportunities", "create", "--customer", name(d, "name"), "--title", "小单",
                 "--amount", "800.00", "--request-id", "compat-o2")
        ctl("rep2", "opportunities", "lose", name(o2, "name"), "--reason", "价格")

        # Automation: a rule of our own beside the shipped ones.
        rule_path = os.path.join(work, "rule.json")
        with open(rule_path, "w") as f:
            json.dump(RULE, f, ensure_ascii=False)
        ctl("admin", "automation", "create", "--file", rule_path, "--request-id", "compat-rule")

        # Tickets: a type, a calendar and a policy, tickets moved along the workflow.
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "tickets")
        ctl("admin", "ticket-types", "create", "--id", "compatrepair", "--file", os.path.join(root, "repair.json"))
        ctl("admin", "sla", "set-calendar", "office", "--display-name", "中国大陆工作日", "--file",
            os.path.join(root, "office-hours.json"))
        ctl("admin", "sla", "set-policy", "--type", "compatrepair", "--first-response", "10", "--resolution", "480",
            "--warning", "1", "--calendar", "office")
        t = ctl("rep", "tickets", "create", "--type", "compatrepair", "--title", "笔记本无法开机", "--customer",
                name(a, "name"), "--priority", "high", "--value", "serial=AB123456", "--value",
                "description=屏幕不亮，无法开机", "--value", "kind=hardware", "--request-id", "compat-t1")
        ctl("rep", "tickets", "comment", name(t, "name"), "--body", "工程师已安排上门")
        ctl("rep", "tickets", "transition", name(t, "name"), "--transition", "start")
        time.sleep(2)  # the scheduler's reactions (tasks, SLA timers) land in the log
    finally:
        crmd.terminate()
        crmd.wait(timeout=60)

    r = subprocess.run([crmctl_bin, "-o", "json", "verify", "--data-dir", data, "--projections"], capture_output=True,
                       text=True, env=env, timeout=300)
    report = json.loads(r.stdout)
    if r.returncode != 0:
        raise SystemExit(f"the old crmctl verify found problems (exit {r.returncode}): {r.stdout}\n{r.stderr}")
    sums, prefixes = {}, {}
    for p in report["projections"]:
        if p["live"] != p["rebuilt"]:
            raise SystemExit(f"old code: {p['projection']} live {p['live']} != rebuilt {p['rebuilt']}")
        sums[p["projection"]] = p["live"]
        # The old crmd's own rows, read on a copy (today's ProjectionDb::Open may write to it); the
        # per-prefix sums must add up to the old crmctl's checksum, so they follow its formula.
        copy = os.path.join(work, "copy-" + p["projection"])
        shutil.copytree(os.path.join(data, p["projection"]), copy)
        prefixes[p["projection"]] = prefix_checksums(args.compat_log, copy)
        if combined(prefixes[p["projection"]]) != p["live"]:
            raise SystemExit(f"{p['projection']}: per-prefix sums {combined(prefixes[p['projection']])} do not "
                             f"add up to the old checksum {p['live']}")
    os.makedirs(args.out, exist_ok=True)
    dump = subprocess.run([args.compat_log, "dump", os.path.join(data, "log"), *TOPICS], capture_output=True,
                          check=True, timeout=300).stdout
    with gzip.GzipFile(os.path.join(args.out, f"fixture-{args.name}.dump.gz"), "wb", mtime=0) as f:
        f.write(dump)
    with open(os.path.join(args.out, f"checksums-{args.name}.json"), "w", encoding="utf-8") as f:
        json.dump({"commit": args.name, "records": dump.count(b"\nR ") + dump.startswith(b"R "),
                   "checksums": sums, "prefixes": prefixes, "changed_by_design": {}}, f, indent=2, sort_keys=True,
                  ensure_ascii=False)
        f.write("\n")
    print(f"{len(dump)} bytes of dump, checksums {sums}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
