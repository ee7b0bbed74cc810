"""Tasks (待办) and automation end to end against crmd on the embedded log, through gRPC from
Python: every default rule fired by the other services' events, the scheduler's overdue
notices, a completion note written back to the customer, permissions and bad input per field,
and exactly once across kill -9, restarts and a rebuild from the log.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf).
"""
import argparse
import datetime
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import Crmd, check, code_of, fields_of, generate_protos, mint_token, summary, unary, work_dir  # noqa: E402

CST = datetime.timezone(datetime.timedelta(hours=8))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crmd", required=True)
    ap.add_argument("--crmctl", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--google-protos", required=True)
    args = ap.parse_args()
    work = work_dir("crm-e2e-tasks-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc  # noqa: E402
    svc, opp, oevs, tk, tev = m.svc, m.opp, m.opp_evs, m.tasks, m.task_evs

    key = "e" * 48
    data = os.path.join(work, "data")
    crmd = Crmd(args.crmd, data, key, os.path.join(work, "crmd.log"))
    port = crmd.port

    rep = [("authorization", "Bearer " + mint_token(key, "u1", "rep", "east"))]
    rep2 = [("authorization", "Bearer " + mint_token(key, "u2", "rep", "east"))]
    manager = [("authorization", "Bearer " + mint_token(key, "m1", "manager", "east"))]
    admin = [("authorization", "Bearer " + mint_token(key, "boss", "admin"))]

    def call(service, method, req, resp_cls, md=rep):
        return unary(crmd.channel, service, method, type(req), resp_cls)(req, metadata=md, timeout=10)

    def cs(method, req, resp_cls, md=rep):
        return call("crm.customers.v1.CustomerService", method, req, resp_cls, md)

    def os_(method, req, resp_cls, md=rep):
        return call("crm.opportunities.v1.OpportunityService", method, req, resp_cls, md)

    def ks(method, req, resp_cls, md=rep):
        return call("crm.opportunities.v1.ContractService", method, req, resp_cls, md)

    def ts(method, req, resp_cls, md=rep):
        return call("crm.tasks.v1.TaskService", method, req, resp_cls, md)

    def auto(method, req, resp_cls, md=admin):
        return call("crm.tasks.v1.AutomationService", method, req, resp_cls, md)

    def customer(name, phone):
        return cs("CreateCustomer", svc.CreateCustomerRequest(customer=svc.Customer(display_name=name, phone=phone)),
                  svc.Customer)

    def related_tasks(related, md=admin):
        r = ts("ListTasks", tk.ListTasksRequest(filter=f'related = "{related}"', page_size=1000), tk.ListTasksResponse,
               md)
        return [t for t in r.tasks if t.origin.rule_id]

    def eventually(fn, what, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            got = fn()
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(what)

    def rule_task(related, title_prefix, n=1):
        tasks = eventually(lambda: [t for t in related_tasks(related) if t.title.startswith(title_prefix)],
                           f"no task '{title_prefix}' on {related}")
        assert len(tasks) == n, tasks
        return tasks[0]

    def due_hours_from_now(t):
        return (t.due_time.ToDatetime(datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc)) \
            .total_seconds() / 3600

    def field_of(fn):
        return fields_of(fn, m)[0]

    state = {}
    with crmd:
        def default_rules_are_listed_and_readable_by_everyone():
            r = auto("ListRules", tk.ListRulesRequest(), tk.ListRulesResponse, rep)
            keys = sorted(x.default_key for x in r.rules)
            assert keys == ["default.contract_renewal", "default.lost_customer_care", "default.new_lead", "default.next_follow_up", "default.proposal_follow_up",
                            "default.return_visit", "default.sla_breach_escalation"], keys
            state["rules"] = {x.default_key: x for x in r.rules}

        def new_lead_makes_a_task_for_its_owner_within_24_hours():
            lead = call("crm.customers.v1.LeadService", "CreateLead", svc.CreateLeadRequest(lead=svc.Lead(contact_name="王经理", company="深圳某科技",
                                                                         phone="13800138001")), svc.Lead)
            t = rule_task(lead.name, "联系新线索")
            assert t.assignee_id == "u1" and t.team_id == "east", t
            assert t.title == "联系新线索：深圳某科技", t.title
            assert 23 <= due_hours_from_now(t) <= 25, due_hours_from_now(t)
            assert t.due_time.seconds % 3600 == 0
            assert t.origin.cause_event_type == "crm.customers.v1.LeadCreated"
            ev = ts("ListEvents", tk.ListEventsRequest(parent=t.name), tk.ListEventsResponse, admin).events
            assert ev[0].actor.source == m.env.ACTOR_SOURCE_AUTOMATION and ev[0].causation_id == t.origin.cause_event_id
            state["lead"] = lead.name

        def proposal_and_won_opportunities_make_follow_up_and_return_visit_tasks():
            c = customer("杭州云栖科技有限公司", "13800138002")
            o = os_("CreateOpportunity", opp.CreateOpportunityRequest(
                opportunity=opp.Opportunity(customer=c.name, title="智能仓储系统",
                                            amount=oevs.Money(amount_minor=12000000)),
                min_consistency_token=c.consistency_token), opp.Opportunity)
            os_("MoveOpportunityStage", opp.MoveOpportunityStageRequest(name=o.name, stage_id="proposal"),
                opp.Opportunity)
            t = rule_task(o.name, "跟进方案报价")
            assert 71 <= due_hours_from_now(t) <= 73, due_hours_from_now(t)
            os_("WinOpportunity", opp.WinOpportunityRequest(name=o.name), opp.Opportunity)
            t = rule_task(o.name, "成交回访")
            assert 15 * 24 - 1 <= due_hours_from_now(t) <= 15 * 24 + 1
            state["customer"], state["opportunity"], state["proposal_task"] = c, o, \
                rule_task(o.name, "跟进方案报价")

        def a_planned_follow_up_and_a_lost_customer_make_tasks():
            c = state["customer"]
            nxt = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2, minutes=30)
            fu = svc.FollowUp(channel=m.evs.FOLLOW_UP_CHANNEL_PHONE, summary="电话沟通，客户有兴趣")
            fu.next_follow_up_time.FromDatetime(nxt)
            cs("CreateFollowUp", svc.CreateFollowUpRequest(parent=c.name, follow_up=fu), svc.FollowUp)
            t = rule_task(c.name, "按计划跟进")
            want = (int(nxt.timestamp()) // 3600 + 1) * 3600
            assert t.due_time.seconds == want, (t.due_time.seconds, want)
            lost = customer("流失测试公司", "13800138003")
            upd = svc.UpdateCustomerRequest(customer=svc.Customer(
                name=lost.name, lifecycle_status=m.evs.LIFECYCLE_STATUS_LOST, churn_reason="选择了竞品"))
            upd.update_mask.paths.extend(["lifecycle_status", "churn_reason"])
            cs("UpdateCustomer", upd, svc.Customer)
            rule_task(lost.name, "流失客户关怀")

        def an_active_contract_ending_within_30_days_gets_a_renewal_task():
            c = state["customer"]
            end = (datetime.datetime.now(CST) + datetime.timedelta(days=10)).strftime("%Y-%m-%d")
            k = ks("CreateContract", opp.CreateContractRequest(contract=opp.Contract(
                customer=c.name, title="年度服务合同", amount=oevs.Money(amount_minor=1200000),
                start_date="2026-01-01", end_date=end), min_consistency_token=c.consistency_token), opp.Contract)
            ks("SubmitContract", opp.SubmitContractRequest(name=k.name), opp.Contract)
            ks("ApproveContract", opp.ApproveContractRequest(name=k.name), opp.Contract, manager)
            t = rule_task(k.name, "合同续约")
            assert t.origin.cause_date == end and t.priority == tev.TASK_PRIORITY_HIGH, t
            state["contract"] = k.name

        def a_completion_note_becomes_a_follow_up_on_the_customer():
            t = state["proposal_task"]
            done = ts("CompleteTask", tk.CompleteTaskRequest(name=t.name, note="客户同意下周签约"), tk.Task)
            assert done.status == tev.TASK_STATUS_DONE
            c = state["customer"]

            def notes():
                r = cs("ListFollowUps", svc.ListFollowUpsRequest(parent=c.name, page_size=100),
                       svc.ListFollowUpsResponse)
                return [f for f in r.follow_ups if f.summary == "客户同意下周签约"]
            got = eventually(notes, "the note never reached the customer")
            assert len(got) == 1 and got[0].created_by == "u1", got
            counts = ts("CountTasks", tk.CountTasksRequest(), tk.TaskCounts)
            assert counts.done_today >= 1, counts

        def overdue_tasks_are_announced_once_by_the_scheduler():
            past = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0) \
                - datetime.timedelta(hours=1)
            t = tk.Task(title="补录上周拜访")
            t.due_time.FromDatetime(past)
            t = ts("CreateTask", tk.CreateTaskRequest(task=t, request_id="late-1"), tk.Task)
            assert t.overdue

            def overdue_events():
                ev = ts("ListEvents", tk.ListEventsRequest(parent=t.name), tk.ListEventsResponse).events
                return [e for e in ev if e.event_type == "crm.tasks.v1.TaskOverdue"]
            got = eventually(overdue_events, "no TaskOverdue")
            time.sleep(2.5)  # two more scheduler runs
            assert len(overdue_events()) == 1 and got[0].occurred_at.seconds == int(past.timestamp())
            views = ts("ListTasks", tk.ListTasksRequest(view=tk.TASK_VIEW_OVERDUE), tk.ListTasksResponse)
            assert t.name in [x.name for x in views.tasks]
            state["late"] = t.name

        def reps_see_and_change_only_their_tasks():
            name = state["late"]
            assert code_of(lambda: ts("GetTask", tk.GetTaskRequest(name=name), tk.Task, rep2)) == \
                grpc.StatusCode.PERMISSION_DENIED
            assert ts("GetTask", tk.GetTaskRequest(name=name), tk.Task, manager).name == name
            assert code_of(lambda: ts("CancelTask", tk.CancelTaskRequest(name=name), tk.Task, rep2)) == \
                grpc.StatusCode.PERMISSION_DENIED
            other = tk.Task(title="替同事建", assignee_id="u2")
            other.due_time.FromDatetime(datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc))
            assert code_of(lambda: ts("CreateTask", tk.CreateTaskRequest(task=other), tk.Task)) == \
                grpc.StatusCode.PERMISSION_DENIED
            assert ts("CreateTask", tk.CreateTaskRequest(task=other), tk.Task, manager).assignee_id == "u2"
            rule = state["rules"]["default.new_lead"]
            assert code_of(lambda: auto("CreateRule", tk.CreateRuleRequest(rule=rule), tk.Rule, rep)) == \
                grpc.StatusCode.PERMISSION_DENIED

        def bad_input_names_the_field():
            t = tk.Task(title="x")
            t.due_time.FromDatetime(datetime.datetime(2027, 1, 1, 9, 30, tzinfo=datetime.timezone.utc))
            assert field_of(lambda: ts("CreateTask", tk.CreateTaskRequest(task=t), tk.Task)) == "task.due_time"
            t.due_time.FromDatetime(datetime.datetime(2027, 1, 1, 9, tzinfo=datetime.timezone.utc))
            t.related = "accounts/1"
            assert field_of(lambda: ts("CreateTask", tk.CreateTaskRequest(task=t), tk.Task)) == "task.related"
            r = tk.Rule()
            r.CopyFrom(state["rules"]["default.new_lead"])
            r.definition.event.event_type = "crm.nope.v1.Nothing"
            assert field_of(lambda: auto("CreateRule", tk.CreateRuleRequest(rule=r), tk.Rule)) == \
                "rule.definition.event.event_type"
            assert field_of(lambda: ts("ListTasks", tk.ListTasksRequest(filter="colour = red"),
                                       tk.ListTasksResponse)) == "filter"
            out = subprocess.run([args.crmctl, "--addr", f"127.0.0.1:{port}", "--token", rep[0][1][7:], "tasks",
                                  "create", "--title", "x", "--due", "2027-01-01", "--priority", "soon"],
                                 capture_output=True, text=True)
            assert out.returncode == 2 and "--priority" in out.stderr, out

        def rules_are_read_by_name_and_deleted_by_admins():
            d = tk.Rule()
            d.definition.CopyFrom(state["rules"]["default.new_lead"].definition)
            d.definition.enabled = False  # fires for nothing while the other checks run
            created = auto("CreateRule", tk.CreateRuleRequest(rule=d, request_id="rule-1"), tk.Rule)
            got = auto("GetRule", tk.GetRuleRequest(name=created.name), tk.Rule, rep)
            assert got.definition == d.definition and got.etag == "1" and not got.deleted, got
            assert field_of(lambda: auto("GetRule", tk.GetRuleRequest(name="tasks/1"), tk.Rule, rep)) == "name"
            assert code_of(lambda: auto("GetRule", tk.GetRuleRequest(name="rules/0190a0a0-0000-7000-8000-000000000000"),
                                        tk.Rule, rep)) == grpc.StatusCode.NOT_FOUND
            delete = tk.DeleteRuleRequest(name=created.name, request_id="del-1")
            # Only admins are in DeleteRule's row of docs/permissions.md
            for who in (rep, manager):
                assert code_of(lambda: auto("DeleteRule", delete, tk.Rule, who)) == grpc.StatusCode.PERMISSION_DENIED
            assert code_of(lambda: auto("DeleteRule", tk.DeleteRuleRequest(name=created.name, etag="9"), tk.Rule)) \
                == grpc.StatusCode.ABORTED
            gone = auto("DeleteRule", delete, tk.Rule)
            assert gone.deleted and gone.etag == "2", gone
            assert auto("DeleteRule", delete, tk.Rule).etag == "2", "a retried delete writes once"
            listed = auto("ListRules", tk.ListRulesRequest(), tk.ListRulesResponse, rep)
            assert created.name not in [x.name for x in listed.rules], listed
            shown = auto("ListRules", tk.ListRulesRequest(show_deleted=True), tk.ListRulesResponse, rep)
            assert [x.deleted for x in shown.rules if x.name == created.name] == [True], shown
            assert auto("GetRule", tk.GetRuleRequest(name=created.name), tk.Rule, rep).deleted
            ev = ts("ListEvents", tk.ListEventsRequest(parent=created.name), tk.ListEventsResponse, admin).events
            assert [e.event_type for e in ev] == ["crm.tasks.v1.RuleCreated", "crm.tasks.v1.RuleDeleted"], ev
            assert ev[1].actor.user_id == "boss", ev[1]

        def crmctl_lists_the_task_center():
            base = [args.crmctl, "--addr", f"127.0.0.1:{port}", "--token", rep[0][1][7:]]
            out = subprocess.run(base + ["tasks", "list", "--view", "overdue"], capture_output=True, text=True)
            assert out.returncode == 0 and "补录上周拜访" in out.stdout and "(overdue)" in out.stdout, out
            out = subprocess.run(base + ["-o", "json", "tasks", "create", "--title", "发报价", "--due",
                                         "2027-01-01T10:00:00+08:00", "--remind", "60", "--channel", "wecom"],
                                 capture_output=True, text=True)
            assert out.returncode == 0 and "CHANNEL_WECOM" in out.stdout, out
            out = subprocess.run(base + ["automation", "list"], capture_output=True, text=True)
            assert out.returncode == 0 and "default.new_lead" in out.stdout, out

        def nothing_fires_twice_across_kill_9_restarts_and_a_rebuild():
            watched = [state["lead"], state["opportunity"].name, state["customer"].name, state["contract"]]
            before = {r: sorted(t.name for t in related_tasks(r)) for r in watched}
            crmd.stop(signal.SIGKILL)
            crmd.start()
            time.sleep(2.5)
            after = {r: sorted(t.name for t in related_tasks(r)) for r in watched}
            assert after == before, (before, after)
            crmd.stop()
            out = subprocess.run([args.crmctl, "rebuild", "--data-dir", data], capture_output=True, text=True)
            assert out.returncode == 0 and "tasks: rebuilt" in out.stdout, out
            crmd.start()
            time.sleep(2.5)
            rebuilt = {r: sorted(t.name for t in related_tasks(r)) for r in watched}
            assert rebuilt == before, (before, rebuilt)

        for name, fn in [
            ("default rules are listed and readable by everyone", default_rules_are_listed_and_readable_by_everyone),
            ("a new lead makes a task for its owner within 24 hours",
             new_lead_makes_a_task_for_its_owner_within_24_hours),
            ("proposal and won opportunities make follow-up and return-visit tasks",
             proposal_and_won_opportunities_make_follow_up_and_return_visit_tasks),
            ("a planned follow-up and a lost customer make tasks", a_planned_follow_up_and_a_lost_customer_make_tasks),
            ("an active contract ending within 30 days gets a renewal task",
             an_active_contract_ending_within_30_days_gets_a_renewal_task),
            ("a completion note becomes a follow-up on the customer",
             a_completion_note_becomes_a_follow_up_on_the_customer),
            ("overdue tasks are announced once by the scheduler", overdue_tasks_are_announced_once_by_the_scheduler),
            ("reps see and change only their tasks", reps_see_and_change_only_their_tasks),
            ("bad input names the field", bad_input_names_the_field),
            ("GetRule reads a rule by name; DeleteRule (admins only) writes RuleDeleted once",
             rules_are_read_by_name_and_deleted_by_admins),
            ("crmctl lists the task center", crmctl_lists_the_task_center),
            ("nothing fires twice across kill -9, restarts and a rebuild",
             nothing_fires_twice_across_kill_9_restarts_and_a_rebuild),
        ]:
            check(name, fn)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
