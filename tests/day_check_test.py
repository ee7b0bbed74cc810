#!/usr/bin/python3
"""day-check catches what it claims to catch (issue 26), against crmd on the embedded log.

A short mixed day (crm-bench --workload day) journals every write with its request id; its
day-check passes with every kind of write and at least one automation cause in it. Then each
check is shown to fail:

- a journal claiming a version past the stored one: a lost write;
- a journal line repeated, and an answer to a request never sent: a journal that cannot be true;
- an acknowledged create that does not exist;
- a create journalled as refused with a definite error that exists, and such a change that
  was applied;
- a second opportunity, task, ticket and follow-up made by sending a journalled create again
  without its request_id: each reported as existing twice;
- a stage move to "proposal" and a follow-up with a next follow-up time after the shipped
  rules stopped reacting to them: automation that did not fire is reported once the settle
  time is over.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf); under 60 s.
"""
import base64
import os
import re
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import (Crmd, caller, check, crmd_bench_parser, generate_protos, mint_token, summary,  # noqa: E402
                         work_dir)

KINDS = ("customer.update", "customer.follow_up", "opportunity.create", "opportunity.move", "task.create",
         "task.complete", "ticket.create")


def main():
    ap = crmd_bench_parser(__doc__)
    for flag in ("--protoc", "--proto-root", "--google-protos"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    work = work_dir("crm-day-check-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    key = "d" * 48
    crmd = Crmd(args.crmd, os.path.join(work, "data"), key, os.path.join(work, "crmd.log"))
    token = mint_token(key, "day-check-test", "admin")
    call = caller(lambda: crmd.channel, [("authorization", "Bearer " + token)])
    env = dict(os.environ)
    crmd.start()
    target = ["--target", crmd.addr, "--token", token]

    def day_check(journal_lines=None, journals=(), extra=()):
        """(exit code, stdout, stderr) of day-check over `journals` and a journal of `journal_lines`."""
        paths = list(journals)
        if journal_lines is not None:
            path = os.path.join(work, f"journal-{uuid.uuid4()}")
            with open(path, "w") as f:
                f.write("".join(ln + "\n" for ln in journal_lines))
            paths.append(path)
        cmd = [args.bench, "--workload", "day-check", *target, *extra]
        for p in paths:
            cmd += ["--journal", p]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout, r.stderr

    def caught(what, needle, journal_lines=None, journals=(), extra=()):
        rc, out, err = day_check(journal_lines, journals, extra)
        assert rc == 4, f"{what}: day-check exited {rc}, not 4 (problems found)\n{out}\n{err[-3000:]}"
        assert re.search(needle, err), f"{what}: no problem matching {needle!r}\n{err[-3000:]}"

    journal = os.path.join(work, "journal")
    r = subprocess.run([args.bench, "--workload", "day", *target, "--clients", "8", "--seconds", "2", "--warmup", "0",
                        "--journal", journal, "--seed", "7"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(journal) as f:
        lines = f.read().splitlines()
    intents = {}  # request id -> (kind, request bytes)
    acked = {}    # request id -> name
    for ln in lines:
        f = ln.split(" ")
        if f[0] == "W":
            intents[f[1]] = (f[2], base64.b64decode(f[3]))
        elif f[0] in "VF" and len(f) == 4:
            acked[f[3]] = f[2] if f[0] == "F" else f[1]

    def first_acked(kind):
        return next(rid for rid, (k, _) in intents.items() if k == kind and rid in acked)

    def clean_day():
        got = {k for k, _ in intents.values()}
        assert got == set(KINDS), f"the day wrote {sorted(got)}, not every kind"
        rc, out, err = day_check(journals=[journal])
        assert rc == 0, f"exit {rc}\n{out}\n{err[-3000:]}"
        assert out.rstrip().endswith("; 0 problems"), out
        causes = int(re.search(r"(\d+) automation causes", out).group(1))
        writes = int(re.search(r"(\d+) other writes", out).group(1))
        assert causes > 0 and writes == len(intents), out
        print(f"  {out.strip()}")
    check("a clean day: every kind of write, automation causes, 0 problems", clean_day)

    opp_rid = first_acked("opportunity.create")
    opp_name = acked[opp_rid]
    v_line = next(ln for ln in lines if ln.startswith("V ") and ln.endswith(" " + opp_rid))

    check("a version past the stored one is a lost write",
          lambda: caught("forged version", re.escape(opp_name) + r" acknowledged at version 1001 is at \d+",
                         lines + [f"V {opp_name} 1001"]))
    check("a repeated answer line is caught",
          lambda: caught("repeated line", "journalled twice", lines + [v_line]))
    check("an answer to a request never sent is caught",
          lambda: caught("answer without intent", "never sent", [f"V {opp_name} 1 {uuid.uuid4()}"]))

    def missing_create():
        req = m.opp.CreateOpportunityRequest.FromString(intents[opp_rid][1])
        rid = str(uuid.uuid4())
        req.request_id = rid
        req.opportunity.description = rid
        w = f"W {rid} opportunity.create {base64.b64encode(req.SerializeToString()).decode()}"
        caught("acknowledged create that does not exist", rf"opportunity.create {rid} \(opportunities/forged\) exists 0 times",
               [w, f"V opportunities/forged 1 {rid}"])
    check("an acknowledged create that does not exist is lost", missing_create)

    def refused_yet_exists():
        rid = first_acked("ticket.create")
        kind, req = intents[rid]
        caught("refused yet exists", rf"ticket.create {rid} was refused with gRPC code 8 \(nothing written\), yet it exists",
               [f"W {rid} {kind} {base64.b64encode(req).decode()}", f"X {rid} 8"])
    check("a create refused as never written that exists is caught", refused_yet_exists)

    def refused_change_applied():
        rid = first_acked("customer.update")
        kind, req = intents[rid]
        caught("refused change applied", rf"customer.update {rid} on customers/\S+ was refused with gRPC code 10 "
               r"\(nothing written\), yet it has 1 events",
               [f"W {rid} {kind} {base64.b64encode(req).decode()}", f"X {rid} 10"])
    check("a change refused as never written that was applied is caught", refused_change_applied)

    def duplicates_without_request_id():
        sent = {
            "opportunity.create": ("opportunities", "CreateOpportunity", m.opp.CreateOpportunityRequest, m.opp.Opportunity),
            "task.create": ("tasks", "CreateTask", m.tasks.CreateTaskRequest, m.tasks.Task),
            "ticket.create": ("tickets", "CreateTicket", m.tickets.CreateTicketRequest, m.tickets.Ticket),
            "customer.follow_up": ("customers", "CreateFollowUp", m.svc.CreateFollowUpRequest, m.svc.FollowUp),
        }
        rids = {}
        for kind, (service, method, req_cls, resp_cls) in sent.items():
            rid = first_acked(kind)
            req = req_cls.FromString(intents[rid][1])
            req.ClearField("request_id")  # what a client retrying without the id sends
            call(service, method, req, resp_cls)
            rids[kind] = rid
        rc, out, err = day_check(journals=[journal])
        assert rc == 4, f"exit {rc}\n{out}\n{err[-3000:]}"
        for kind, rid in rids.items():
            assert re.search(rf"{re.escape(kind)} {rid} \([^)]*\) exists 2 times", err), f"{kind}: {err[-3000:]}"
    check("a create sent again without its request_id is a duplicate, for every kind", duplicates_without_request_id)

    def automation_not_fired():
        rules = call("automation", "ListRules", m.tasks.ListRulesRequest(page_size=100), m.tasks.ListRulesResponse)
        rule = next(r for r in rules.rules if r.default_key == "default.proposal_follow_up")
        rule.definition.event.conditions[0].values[:] = ["negotiation"]
        call("automation", "UpdateRule", m.tasks.UpdateRuleRequest(rule=rule, etag=rule.etag), m.tasks.Rule)
        rule = next(r for r in rules.rules if r.default_key == "default.next_follow_up")
        rule.definition.enabled = False
        call("automation", "UpdateRule", m.tasks.UpdateRuleRequest(rule=rule, etag=rule.etag), m.tasks.Rule)
        # A customer, an opportunity and its move to proposal, journalled as the day does.
        journal_lines = []
        cust = call("customers", "CreateCustomer",
                    m.svc.CreateCustomerRequest(request_id=str(uuid.uuid4()),
                                                customer=m.svc.Customer(display_name="自动化对照", phone="13999999999")),
                    m.svc.Customer)
        create = m.opp.CreateOpportunityRequest(request_id=str(uuid.uuid4()), min_consistency_token=cust.consistency_token)
        create.opportunity.customer = cust.name
        create.opportunity.title = "自动化对照"
        create.opportunity.description = create.request_id
        opp = call("opportunities", "CreateOpportunity", create, m.opp.Opportunity)
        journal_lines += [f"W {create.request_id} opportunity.create {base64.b64encode(create.SerializeToString()).decode()}",
                          f"V {opp.name} {opp.etag} {create.request_id}"]
        for stage in ("needs_analysis", "proposal"):
            move = m.opp.MoveOpportunityStageRequest(name=opp.name, stage_id=stage, request_id=str(uuid.uuid4()))
            moved = call("opportunities", "MoveOpportunityStage", move, m.opp.Opportunity)
            journal_lines += [f"W {move.request_id} opportunity.move {base64.b64encode(move.SerializeToString()).decode()}",
                              f"V {moved.name} {moved.etag} {move.request_id}"]
        follow_up = m.svc.CreateFollowUpRequest(parent=cust.name, request_id=str(uuid.uuid4()))
        follow_up.follow_up.channel = m.evs.FOLLOW_UP_CHANNEL_PHONE
        follow_up.follow_up.summary = "自动化对照"
        follow_up.follow_up.next_step = follow_up.request_id
        follow_up.follow_up.next_follow_up_time.seconds = (int(time.time()) // 3600 + 72) * 3600
        recorded = call("customers", "CreateFollowUp", follow_up, m.svc.FollowUp)
        journal_lines += [f"W {follow_up.request_id} customer.follow_up "
                          f"{base64.b64encode(follow_up.SerializeToString()).decode()}",
                          f"F {cust.name} {recorded.name} {follow_up.request_id}"]
        caught("automation that did not fire",
               rf"default.proposal_follow_up did not fire within 2s for {re.escape(opp.name)}'s move to proposal",
               journal_lines, extra=("--settle-seconds", "2"))
        caught("automation that did not fire",
               rf"default.next_follow_up did not fire within 2s for {re.escape(cust.name)}'s follow-up with a next",
               journal_lines, extra=("--settle-seconds", "2"))
    check("a move to proposal and a follow-up without their automation tasks are caught", automation_not_fired)

    crmd.stop()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
