#!/usr/bin/python3
"""ERP/OA integration over Kafka, with kafka-python as the external system: every service
(crm-customers, crm-opportunities, crm-tasks, crm-tickets, crm-analytics) and crm-integration
as separate processes on crm-devbroker.

- crm.inbound.v1: customer master data creates and then updates a customer; an OA approval
  activates a contract pending approval; ERP payments are recorded, a payment sent three times
  with one id counts once; an ERP order becomes a follow-up; binary-mode CloudEvents work too.
- Bad input goes to crm.inbound.v1.dlq with the reason, code and field in its headers (not
  JSON, unknown type, bad amount, wrong currency, a contract not pending approval) and changes
  nothing.
- crm-integration is killed (-9) during a burst of 120 payments with repeats and restarted:
  every payment counts exactly once, no dead letter is written twice.
- Tasks and tickets go through their lives (created, changed, completed, reopened, cancelled,
  overdue; rules created, changed, deleted; ticket types created, versioned, archived; tickets
  migrated, moved, assigned, commented, warned and breached by their SLA clocks).
- crm.public.events.v1 holds every event of the services' topics exactly once, in each
  aggregate's version order, each JSON `data` (never data_base64) valid against its schema in
  docs/events/schemas/, and every service's events are there.

Run with /usr/bin/python3. Prints "N passed, N failed" and exits non-zero on failure.
"""
import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import check, free_port, generate_protos, mint_token, summary, unary, wait_healthy, work_dir  # noqa: E402

# 售后维修 (examples/tickets/repair.json, the README's example ticket type).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "tickets", "repair.json")) as f:
    REPAIR = json.load(f)
TOPICS = ["crm.customers.events.v1", "crm.opportunities.events.v1", "crm.tasks.events.v1", "crm.tickets.events.v1"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devbroker", required=True)
    ap.add_argument("--customers", required=True)
    ap.add_argument("--opportunities", required=True)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--tickets", required=True)
    ap.add_argument("--analytics", required=True)
    ap.add_argument("--integration", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--google-protos", required=True)
    ap.add_argument("--schemas", required=True)
    args = ap.parse_args()

    work = work_dir("crm-integration-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    from jsonschema import Draft202012Validator, FormatChecker  # noqa: E402
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
    from google.protobuf import json_format  # noqa: E402
    svc, opp, oevs = m.svc, m.opp, m.opp_evs
    tk, tev, kt, kev = m.tasks, m.task_evs, m.tickets, m.ticket_evs

    key = "k" * 48
    env = dict(os.environ, CRM_SIGNING_KEY=key)
    bootstrap_file = os.path.join(work, "bootstrap")
    procs = {}
    procs["broker"] = subprocess.Popen([args.devbroker, "--bootstrap-file", bootstrap_file],
                                       stdout=open(os.path.join(work, "broker.log"), "w"), stderr=subprocess.STDOUT)
    ports = {name: free_port() for name in ("customers", "opportunities", "tasks", "tickets", "analytics", "integration")}
    channels = {}

    def start(service, binary, extra=()):
        procs[service] = subprocess.Popen(
            [binary, "--bootstrap-servers", bootstrap, "--data-dir", os.path.join(work, service),
             "--listen", f"127.0.0.1:{ports[service]}", "--metrics-listen", "", *extra],
            env=env, stdout=open(os.path.join(work, f"{service}.log"), "a"), stderr=subprocess.STDOUT)
        channels[service] = wait_healthy(f"127.0.0.1:{ports[service]}", seconds=60, proc=procs[service],
                                         log_path=os.path.join(work, f"{service}.log"))

    def start_integration():
        start("integration", args.integration, ["--customers-addr", f"127.0.0.1:{ports['customers']}",
                                                "--opportunities-addr", f"127.0.0.1:{ports['opportunities']}"])

    rep = [("authorization", "Bearer " + mint_token(key, "u1", "rep", "east"))]
    admin = [("authorization", "Bearer " + mint_token(key, "boss", "admin"))]

    def cs(method, req, resp, md=rep):
        return unary(channels["customers"], "crm.customers.v1.CustomerService", method, type(req), resp)(
            req, metadata=md, timeout=20)

    def ks(method, req, resp, md=rep):
        return unary(channels["opportunities"], "crm.opportunities.v1.ContractService", method, type(req), resp)(
            req, metadata=md, timeout=20)

    def call(service, full_name, method, req, resp, md=admin):
        return unary(channels[service], full_name, method, type(req), resp)(req, metadata=md, timeout=20)

    def eventually(fn, what, seconds=40):
        deadline = time.time() + seconds
        last = None
        while time.time() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"{what} (last: {last})")

    def read_all(topic):
        """Every record of `topic` up to its end now: (partition, offset, key, value, headers)."""
        c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                          consumer_timeout_ms=2000)
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        c.assign(parts)
        c.seek_to_beginning(*parts)
        ends = c.end_offsets(parts)
        out = []
        deadline = time.time() + 30
        while any(c.position(tp) < ends[tp] for tp in parts) and time.time() < deadline:
            for tp, recs in c.poll(timeout_ms=500).items():
                for r in recs:
                    out.append((tp.partition, r.offset, r.key, r.value, dict(r.headers)))
        c.close()
        return out

    def public_events():
        return [json.loads(v) for (_, _, _, v, _) in read_all("crm.public.events.v1")]

    def letters():
        return [(v, {k: h.decode() for k, h in hs.items()}) for (_, _, _, v, hs) in read_all("crm.inbound.v1.dlq")]

    producer = {}

    def send(ce_id, ce_type, data, key=None, raw=None, headers=None):
        value = raw if raw is not None else json.dumps(
            {"specversion": "1.0", "id": ce_id, "source": "/erp/u8", "type": ce_type, "data": data},
            ensure_ascii=False).encode()
        producer["p"].send("crm.inbound.v1", key=(key or ce_id).encode(), value=value,
                           headers=headers or [("content-type", b"application/cloudevents+json; charset=UTF-8")])
        producer["p"].flush()

    state = {}
    try:
        deadline = time.time() + 20
        while not os.path.exists(bootstrap_file) and time.time() < deadline:
            time.sleep(0.05)
        bootstrap = open(bootstrap_file).read().strip()
        start("customers", args.customers)
        start("opportunities", args.opportunities)
        start("tasks", args.tasks, ["--scheduler-interval", "1"])
        start("tickets", args.tickets, ["--scheduler-interval", "1"])
        start("analytics", args.analytics, ["--dashboard-listen", ""])
        start_integration()
        producer["p"] = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5)

        def customer_master_data():
            send("erp-cus-1", "com.erp.customer.upserted", {"display_name": "苏州工业园精密制造有限公司",
                                                            "phone": "13900001111", "industry": "manufacturing",
                                                            "owner_id": "u1", "team_id": "east"})
            created = eventually(lambda: [e for e in public_events() if e["type"] == "crm.customers.v1.CustomerCreated"
                                          and e.get("crmcorrelationid") == "inbound:erp-cus-1"],
                                 "the ERP customer was not created")[0]
            assert created["crmactorsource"] == "integration" and created["crmactor"] == "crm-integration", created
            name = created["subject"]
            state["customer"] = name
            send("erp-cus-2", "com.erp.customer.upserted", {"customer_id": name, "address": "苏州工业园区星湖街 328 号"})
            eventually(lambda: cs("GetCustomer", svc.GetCustomerRequest(name=name), svc.Customer, admin).address
                       == "苏州工业园区星湖街 328 号", "the ERP update did not land")

        def tasks_go_through_their_lives():
            def ts(method, req, resp):
                return call("tasks", "crm.tasks.v1.TaskService", method, req, resp)

            def auto(method, req, resp):
                return call("tasks", "crm.tasks.v1.AutomationService", method, req, resp)
            hour = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
            late = tk.Task(title="补录上周拜访")  # overdue at once
            late.due_time.FromDatetime(hour - datetime.timedelta(hours=1))
            ts("CreateTask", tk.CreateTaskRequest(task=late), tk.Task)
            t = tk.Task(title="发报价", reminder_offsets_minutes=[240])  # its reminder is due
            t.due_time.FromDatetime(hour + datetime.timedelta(hours=2))
            t = ts("CreateTask", tk.CreateTaskRequest(task=t), tk.Task)
            upd = tk.UpdateTaskRequest(task=tk.Task(name=t.name, title="发正式报价"))
            upd.update_mask.paths.append("title")
            ts("UpdateTask", upd, tk.Task)
            ts("CompleteTask", tk.CompleteTaskRequest(name=t.name, note="已发送"), tk.Task)
            ts("ReopenTask", tk.ReopenTaskRequest(name=t.name, reason="客户要求修改"), tk.Task)
            ts("CancelTask", tk.CancelTaskRequest(name=t.name, reason="改为电话沟通"), tk.Task)
            shipped = auto("ListRules", tk.ListRulesRequest(), tk.ListRulesResponse).rules[0]
            d = tev.RuleDefinition()
            d.CopyFrom(shipped.definition)
            d.display_name = "集成测试规则"
            rule = auto("CreateRule", tk.CreateRuleRequest(rule=tk.Rule(definition=d)), tk.Rule)
            d.enabled = False
            rule = auto("UpdateRule", tk.UpdateRuleRequest(rule=tk.Rule(name=rule.name, definition=d)), tk.Rule)
            auto("DeleteRule", tk.DeleteRuleRequest(name=rule.name), tk.Rule)

        def tickets_go_through_their_lives():
            def kc(service, method, req, resp):
                return call("tickets", f"crm.tickets.v1.{service}", method, req, resp)
            repair = json_format.ParseDict(REPAIR, kev.TicketTypeDefinition())
            kc("TicketTypeService", "CreateTicketType",
               kt.CreateTicketTypeRequest(ticket_type_id="repair", definition=repair), kt.TicketType)
            kc("SlaService", "SetCalendar", kt.SetCalendarRequest(calendar=kt.Calendar(
                name="calendars/cn", display_name="全天", calendar=kev.BusinessCalendar(windows=[
                    kev.WorkWindow(weekday=d, start_minute=0, end_minute=1440) for d in range(1, 8)]))), kt.Calendar)
            # One minute to the first response, a warning at half of it: the scheduler (every
            # second) warns and breaches the idle ticket while the checks below run.
            kc("SlaService", "SetSlaPolicy", kt.SetSlaPolicyRequest(policy=kev.SlaPolicy(
                type_id="repair", first_response_minutes=1, resolution_minutes=600, warning_percent=50,
                calendar="calendars/cn")), kt.SlaPolicyResource)
            urgent = kc("SlaService", "SetSlaPolicy", kt.SetSlaPolicyRequest(policy=kev.SlaPolicy(
                type_id="repair", priority=kev.TICKET_PRIORITY_URGENT, first_response_minutes=5)), kt.SlaPolicyResource)
            kc("SlaService", "DeleteSlaPolicy", kt.DeleteSlaPolicyRequest(name=urgent.name), kt.SlaPolicyResource)

            def ticket(title):
                t = kt.Ticket(ticket_type="ticketTypes/repair", title=title)
                t.values["serial"].text = "AB123456"
                t.values["description"].text = "屏幕不亮，无法开机"
                t.values["kind"].choice = "hardware"
                return kc("TicketService", "CreateTicket", kt.CreateTicketRequest(ticket=t), kt.Ticket)
            state["idle_ticket"] = ticket("无人响应的工单").name
            t = ticket("笔记本无法开机")
            repair.description = "第二版：序列号格式不变"
            kc("TicketTypeService", "PublishTicketTypeVersion",
               kt.PublishTicketTypeVersionRequest(name="ticketTypes/repair", definition=repair), kt.TicketType)
            kc("TicketTypeService", "MigrateTickets", kt.MigrateTicketsRequest(name="ticketTypes/repair", from_version=1),
               kt.MigrateTicketsResponse)
            kc("TicketService", "TransitionTicket", kt.TransitionTicketRequest(name=t.name, transition_id="start"),
               kt.Ticket)
            upd = kt.UpdateTicketRequest(name=t.name)
            upd.values["fee"].number = 12000
            kc("TicketService", "UpdateTicket", upd, kt.Ticket)
            kc("TicketService", "AssignTicket", kt.AssignTicketRequest(name=t.name, assignee_id="u2"), kt.Ticket)
            kc("TicketService", "AddComment", kt.AddCommentRequest(name=t.name, body="已寄回检测"), kt.Ticket)
            feedback = kev.TicketTypeDefinition()
            feedback.CopyFrom(repair)
            feedback.display_name = "意见反馈"
            kc("TicketTypeService", "CreateTicketType",
               kt.CreateTicketTypeRequest(ticket_type_id="feedback", definition=feedback), kt.TicketType)
            kc("TicketTypeService", "ArchiveTicketType",
               kt.ArchiveTicketTypeRequest(name="ticketTypes/feedback", reason="并入售后维修"), kt.TicketType)

        def oa_approval_activates_a_contract():
            k = ks("CreateContract", opp.CreateContractRequest(contract=opp.Contract(
                customer=state["customer"], title="精密零件年度框架合同", start_date="2026-01-01", end_date="2026-12-31",
                amount=oevs.Money(amount_minor=50000000, currency="CNY"))), opp.Contract)
            k = ks("SubmitContract", opp.SubmitContractRequest(name=k.name), opp.Contract)
            assert k.status == oevs.CONTRACT_STATUS_PENDING_APPROVAL, k
            state["contract"] = k.name
            send("oa-1", "com.oa.approval.completed", {"contract_id": k.name, "result": "approved", "approver": "王总",
                                                       "comment": "同意签约"})
            k = eventually(lambda: (lambda c: c if c.status == oevs.CONTRACT_STATUS_ACTIVE else None)(
                ks("GetContract", opp.GetContractRequest(name=k.name), opp.Contract)), "the OA approval did not land")
            assert k.approved_by == "crm-integration", k

        def receivable():
            return ks("GetReceivable", opp.GetReceivableRequest(name=state["contract"]), opp.Receivable).collected_minor

        def erp_payments_once_each():
            for _ in range(3):  # the ERP system retries: same id
                send("erp-pay-1", "com.erp.payment.received", {"contract_id": state["contract"], "amount": "300.00",
                                                               "paid_at": "2026-03-02", "reference": "B-001"},
                     key=state["contract"])
            # binary mode: attributes in headers
            producer["p"].send("crm.inbound.v1", key=state["contract"].encode(), value=json.dumps(
                {"contract_id": state["contract"], "amount": 200, "paid_at": "2026-03-03T10:00:00+08:00"}).encode(),
                headers=[("ce_specversion", b"1.0"), ("ce_id", b"erp-pay-2"), ("ce_source", b"/erp/u8"),
                         ("ce_type", b"com.erp.payment.received"), ("content-type", b"application/json")])
            producer["p"].flush()
            eventually(lambda: receivable() == 50000, "the payments did not add up to 500.00")
            time.sleep(1)
            assert receivable() == 50000, receivable()

        def erp_order_becomes_a_follow_up():
            send("erp-ord-1", "com.erp.order.created", {"customer_id": state["customer"], "order_no": "SO-2026-0301",
                                                        "amount": "12800.00", "summary": "精密轴承 200 套"})
            fus = eventually(lambda: cs("ListFollowUps", svc.ListFollowUpsRequest(parent=state["customer"]),
                                        svc.ListFollowUpsResponse, admin).follow_ups, "no follow-up")
            assert fus[0].summary == "ERP 订单 SO-2026-0301: 12800.00 CNY; 精密轴承 200 套", fus[0].summary

        def bad_input_to_the_dead_letter_topic():
            before = receivable()
            send("bad-1", "", None, raw=b"<xml>not json</xml>")
            send("bad-2", "com.erp.invoice.created", {"x": 1})
            send("bad-3", "com.erp.payment.received", {"contract_id": state["contract"], "amount": "1.005",
                                                       "paid_at": "2026-03-02"}, key=state["contract"])
            send("bad-4", "com.erp.payment.received", {"contract_id": state["contract"], "amount": "10", "currency": "USD",
                                                       "paid_at": "2026-03-02"}, key=state["contract"])
            send("bad-5", "com.oa.approval.completed", {"contract_id": state["contract"], "result": "approved"})
            got = eventually(lambda: (lambda ls: ls if len(ls) >= 5 else None)(letters()), "not every letter came")
            assert len(got) == 5, got
            by_id = {}
            for value, h in got:
                try:
                    by_id[json.loads(value)["id"]] = h
                except ValueError:
                    by_id["bad-1"] = h
            assert by_id["bad-1"]["crm_dlq_field"] == "value", by_id["bad-1"]
            assert by_id["bad-2"]["crm_dlq_field"] == "type" and "unknown type" in by_id["bad-2"]["crm_dlq_reason"]
            assert by_id["bad-3"]["crm_dlq_field"] == "data.amount", by_id["bad-3"]
            assert by_id["bad-4"]["crm_dlq_field"] == "data.currency", by_id["bad-4"]
            assert by_id["bad-5"]["crm_dlq_code"] == "FAILED_PRECONDITION", by_id["bad-5"]
            for h in by_id.values():
                assert h["crm_position"].startswith("crm.inbound.v1/") and h["crm_dlq_reason"], h
            assert receivable() == before
            state["letters"] = len(got)

        def kill_9_during_a_burst():
            before = receivable()
            for i in range(120):
                body = {"contract_id": state["contract"], "amount": "1.00", "paid_at": "2026-03-04"}
                send(f"burst-{i}", "com.erp.payment.received", body, key=state["contract"])
                if i % 10 == 0:
                    send(f"burst-{i}", "com.erp.payment.received", body, key=state["contract"])  # a repeat
                if i == 40:
                    procs["integration"].send_signal(signal.SIGKILL)
                    procs["integration"].wait(timeout=10)
                if i == 80:
                    start_integration()
            eventually(lambda: receivable() == before + 12000, "the burst did not count exactly once", seconds=90)
            time.sleep(1.5)
            assert receivable() == before + 12000, receivable() - before
            assert len(letters()) == state["letters"], "a dead letter was written twice"

        def public_topic_exactly_once_and_valid():
            def breached():
                return any(e["type"] == "crm.tickets.v1.SlaBreached" for e in public_events())
            eventually(breached, "the idle ticket's SLA did not breach", seconds=90)
            source_ids = set()
            for t in TOPICS:
                for (_, _, _, _, h) in read_all(t):
                    source_ids.add(h["ce_id"].decode())

            def complete():
                evs = public_events()
                return evs if {e["id"] for e in evs} >= source_ids else None
            evs = eventually(complete, "the public topic misses events")
            ids = [e["id"] for e in evs]
            assert len(ids) == len(set(ids)), "an event was published twice"
            assert set(ids) == source_ids, set(ids) ^ source_ids
            validators = {}
            last = {}
            for e in evs:
                t = e["type"]
                if t not in validators:
                    with open(os.path.join(args.schemas, f"{t}.json")) as f:
                        validators[t] = Draft202012Validator(json.load(f), format_checker=FormatChecker())
                errors = sorted(validators[t].iter_errors(e), key=str)
                assert not errors, f"{t}: {errors[0].message} at {list(errors[0].path)}"
                agg = e["crmaggregateid"]
                assert e["crmaggregateversion"] == last.get(agg, 0) + 1, (agg, e["crmaggregateversion"], last.get(agg))
                last[agg] = e["crmaggregateversion"]
            types = {e["type"] for e in evs}
            for e in evs:
                assert "data" in e and "data_base64" not in e and e["datacontenttype"] == "application/json", e
            expected = {"crm.customers.v1.CustomerCreated", "crm.opportunities.v1.ContractApproved",
                        "crm.opportunities.v1.PaymentRecorded", "crm.customers.v1.FollowUpRecorded",
                        "crm.tasks.v1.TaskCreated", "crm.tasks.v1.TaskUpdated", "crm.tasks.v1.TaskCompleted",
                        "crm.tasks.v1.TaskReopened", "crm.tasks.v1.TaskCancelled", "crm.tasks.v1.TaskOverdue",
                        "crm.tasks.v1.RuleCreated", "crm.tasks.v1.RuleUpdated", "crm.tasks.v1.RuleDeleted",
                        "crm.tickets.v1.TicketTypeCreated", "crm.tickets.v1.TicketTypeVersionPublished",
                        "crm.tickets.v1.TicketTypeArchived", "crm.tickets.v1.CalendarSet",
                        "crm.tickets.v1.SlaPolicySet", "crm.tickets.v1.SlaPolicyDeleted",
                        "crm.tickets.v1.TicketCreated", "crm.tickets.v1.TicketMigrated",
                        "crm.tickets.v1.TicketTransitioned", "crm.tickets.v1.TicketValuesChanged",
                        "crm.tickets.v1.TicketAssigned", "crm.tickets.v1.TicketCommented",
                        "crm.tickets.v1.SlaWarning", "crm.tickets.v1.SlaBreached"}
            assert expected <= types, sorted(expected - types)
            print(f"    {len(evs)} public events of {len(types)} types, each valid against its schema")

        check("customer master data creates, then updates a customer", customer_master_data)
        check("tickets go through their lives", tickets_go_through_their_lives)
        check("tasks go through their lives", tasks_go_through_their_lives)
        check("an OA approval activates a contract", oa_approval_activates_a_contract)
        check("ERP payments count once each (3 sends of one id; binary mode)", erp_payments_once_each)
        check("an ERP order becomes a follow-up", erp_order_becomes_a_follow_up)
        check("bad input goes to the dead-letter topic with the reason, and changes nothing",
              bad_input_to_the_dead_letter_topic)
        check("kill -9 of crm-integration during 120 payments: each counts once", kill_9_during_a_burst)
        check("the public topic: every event once, in order, valid against its schema",
              public_topic_exactly_once_and_valid)
    finally:
        if "p" in producer:
            producer["p"].close()
        for name, p in reversed(list(procs.items())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        for name in ("integration", "customers", "opportunities", "tasks", "tickets", "analytics"):
            path = os.path.join(work, f"{name}.log")
            if os.path.exists(path):
                with open(path) as f:
                    lines = f.readlines()
                errors = [ln for ln in lines if '"level":"error"' in ln or '"level":"warn' in ln]
                if errors:
                    print(f"--- {name}.log warnings/errors (last 5):\n" + "".join(errors[-5:]))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
