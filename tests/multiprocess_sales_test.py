#!/usr/bin/python3
"""crm-customers, crm-opportunities, crm-tasks, crm-tickets and crm-analytics as separate
processes on crm-devbroker (the Kafka protocol), reacting to each other's events through the topics only:

- a merge in the customers service moves the merged customer's opportunities to the survivor;
- a customer in the recycle bin flags its open opportunities, also when crm-opportunities was
  killed (-9) while it happened and started again;
- a won opportunity makes its customer a deal customer (成交) in the customers service;
- kafka-python reads the opportunities topic and finds the re-pointing event with the
  customers event as its causation and CloudEvents headers;
- crm-tasks turns the win into a return-visit task, a lead created while it was killed -9 into
  exactly one task after its restart, and a completion note into a follow-up in crm-customers;
  kafka-python finds the TaskCreated caused by the OpportunityWon;
- crm-tickets links a ticket to a customer of crm-customers, a task in crm-tasks may relate to
  that ticket, and kafka-python reads the TicketCreated with its CloudEvents type;
- crm-analytics reports the won opportunity (read-your-writes with its consistency token) over
  gRPC and over its dashboard's HTTP API, and serves the dashboard page.

Run with /usr/bin/python3. Prints "N passed, N failed" and exits non-zero on failure.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import RESULTS, check, free_port, generate_protos, mint_token, summary, unary, wait_healthy, work_dir  # noqa: E402,E501


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devbroker", required=True)
    ap.add_argument("--customers", required=True)
    ap.add_argument("--opportunities", required=True)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--tickets", required=True)
    ap.add_argument("--analytics", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--google-protos", required=True)
    args = ap.parse_args()

    work = work_dir("crm-multiprocess-sales-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc  # noqa: E402
    from kafka import KafkaConsumer, TopicPartition  # noqa: E402
    svc, opp, oevs = m.svc, m.opp, m.opp_evs

    key = "s" * 48
    env = dict(os.environ, CRM_SIGNING_KEY=key)
    bootstrap_file = os.path.join(work, "bootstrap")
    procs = {}
    procs["broker"] = subprocess.Popen([args.devbroker, "--bootstrap-file", bootstrap_file],
                                       stdout=open(os.path.join(work, "broker.log"), "w"), stderr=subprocess.STDOUT)
    ports = {"customers": free_port(), "opportunities": free_port(), "tasks": free_port(), "tickets": free_port(),
             "analytics": free_port()}
    dashboard_port = free_port()
    channels = {}

    def start(service, binary, extra=()):
        procs[service] = subprocess.Popen(
            [binary, "--bootstrap-servers", bootstrap, "--data-dir", os.path.join(work, service),
             "--listen", f"127.0.0.1:{ports[service]}", "--metrics-listen", "", "--scheduler-interval", "1", *extra],
            env=env, stdout=open(os.path.join(work, f"{service}.log"), "a"), stderr=subprocess.STDOUT)
        channels[service] = wait_healthy(f"127.0.0.1:{ports[service]}", seconds=60, proc=procs[service],
                                         log_path=os.path.join(work, f"{service}.log"))

    rep = [("authorization", "Bearer " + mint_token(key, "u1", "rep", "east"))]
    manager = [("authorization", "Bearer " + mint_token(key, "m1", "manager", "east"))]
    admin = [("authorization", "Bearer " + mint_token(key, "boss", "admin"))]

    def cs(method, req, resp, md=rep):
        return unary(channels["customers"], "crm.customers.v1.CustomerService", method, type(req), resp)(
            req, metadata=md, timeout=20)

    def os_(method, req, resp, md=rep):
        return unary(channels["opportunities"], "crm.opportunities.v1.OpportunityService", method, type(req), resp)(
            req, metadata=md, timeout=20)

    def ts(method, req, resp, md=rep):
        return unary(channels["tasks"], "crm.tasks.v1.TaskService", method, type(req), resp)(
            req, metadata=md, timeout=20)

    def rule_tasks(related):
        r = ts("ListTasks", m.tasks.ListTasksRequest(filter=f'related = "{related}"', page_size=100),
               m.tasks.ListTasksResponse, manager)
        return [t for t in r.tasks if t.origin.rule_id]

    def eventually(fn, what, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if fn():
                return
            time.sleep(0.2)
        raise AssertionError(what)

    def get_opp(name):
        return os_("GetOpportunity", opp.GetOpportunityRequest(name=name), opp.Opportunity, manager)

    state = {}
    try:
        deadline = time.time() + 20
        while not os.path.exists(bootstrap_file) and time.time() < deadline:
            time.sleep(0.05)
        bootstrap = open(bootstrap_file).read().strip()
        start("customers", args.customers)
        start("opportunities", args.opportunities)
        start("tasks", args.tasks)
        start("tickets", args.tickets)
        start("analytics", args.analytics, ["--dashboard-listen", f"127.0.0.1:{dashboard_port}"])

        def customer(name, phone):
            return cs("CreateCustomer", svc.CreateCustomerRequest(
                customer=svc.Customer(display_name=name, phone=phone)), svc.Customer)

        def new_opp(c, title):
            return os_("CreateOpportunity", opp.CreateOpportunityRequest(
                opportunity=opp.Opportunity(customer=c.name, title=title, amount=oevs.Money(amount_minor=100000)),
                min_consistency_token=c.consistency_token), opp.Opportunity)

        def merge_across_processes():
            survivor = customer("广州珠江贸易", "13600001111")
            merged = customer("广州珠江贸易有限公司", "13600001112")
            o = new_opp(merged, "年度采购")
            cs("MergeCustomers", svc.MergeCustomersRequest(survivor=survivor.name, merged=merged.name),
               svc.MergeCustomersResponse, manager)
            eventually(lambda: get_opp(o.name).customer == survivor.name, "the opportunity did not follow the merge")
            state.update(survivor=survivor, merged=merged, opp=o)

        def recycle_bin_while_killed():
            p = procs["opportunities"]
            p.kill()
            p.wait(timeout=10)
            cs("DeleteCustomer", svc.DeleteCustomerRequest(name=state["survivor"].name, reason="重复"), svc.Customer)
            start("opportunities", args.opportunities)
            eventually(lambda: get_opp(state["opp"].name).customer_deleted, "not flagged after the restart")
            cs("UndeleteCustomer", svc.UndeleteCustomerRequest(name=state["survivor"].name), svc.Customer)
            eventually(lambda: not get_opp(state["opp"].name).customer_deleted, "the flag stayed")

        def won_makes_a_deal_customer():
            won = os_("WinOpportunity", opp.WinOpportunityRequest(name=state["opp"].name, reason="价格合适"),
                      opp.Opportunity)
            state["won_token"] = won.consistency_token

            def deal():
                c = cs("GetCustomer", svc.GetCustomerRequest(name=state["survivor"].name), svc.Customer)
                return c.deals_won == 1 and c.lifecycle_status == m.evs.LIFECYCLE_STATUS_DEAL
            eventually(deal, "the customer did not become a deal customer")

        def kafka_shows_the_cause():
            consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                                     consumer_timeout_ms=3000, api_version_auto_timeout_ms=10000)
            topic = "crm.opportunities.events.v1"
            parts = consumer.partitions_for_topic(topic)
            assert parts and len(parts) == 8, parts
            consumer.assign([TopicPartition(topic, p) for p in parts])
            consumer.seek_to_beginning()
            found = None
            deadline = time.time() + 20
            oid = state["opp"].name.split("/", 1)[1]
            while found is None and time.time() < deadline:
                for rec in consumer:
                    headers = dict(rec.headers or [])
                    if headers.get("ce_type") != b"crm.opportunities.v1.OpportunityCustomerChanged":
                        continue
                    env = m.env.EventEnvelope()
                    env.ParseFromString(rec.value)
                    if env.aggregate_id == oid:
                        found = env
                        break
            assert found is not None, "no OpportunityCustomerChanged on the topic"
            assert found.actor.source == m.env.ACTOR_SOURCE_SYSTEM, found.actor
            changed = oevs.OpportunityCustomerChanged()
            assert found.payload.Unpack(changed)
            assert changed.to_customer_id == state["survivor"].name.split("/", 1)[1], changed
            # its cause is the merged customer's CustomerMergedInto
            history = cs("ListCustomerEvents", svc.ListCustomerEventsRequest(parent=state["merged"].name, page_size=100),
                         svc.ListCustomerEventsResponse, manager)
            merged_into = [e.event_id for e in history.events if e.event_type.endswith("CustomerMergedInto")]
            assert found.causation_id == merged_into[-1], (found.causation_id, merged_into)

        def tasks_follow_both_services():
            eventually(lambda: [t for t in rule_tasks(state["opp"].name) if t.title.startswith("成交回访")],
                       "no return-visit task for the won opportunity")
            won = [t for t in rule_tasks(state["opp"].name) if t.title.startswith("成交回访")]
            assert len(won) == 1, won
            state["won_task"] = won[0]
            p = procs["tasks"]
            p.kill()
            p.wait(timeout=10)
            lead = unary(channels["customers"], "crm.customers.v1.LeadService", "CreateLead", svc.CreateLeadRequest,
                         svc.Lead)(svc.CreateLeadRequest(lead=svc.Lead(contact_name="陈总", company="佛山制造",
                                                                       phone="13600001113")),
                                   metadata=rep, timeout=20)
            start("tasks", args.tasks)
            eventually(lambda: rule_tasks(lead.name), "no task for the lead made while crm-tasks was down")
            time.sleep(2)
            assert len(rule_tasks(lead.name)) == 1, rule_tasks(lead.name)
            ts("CompleteTask", m.tasks.CompleteTaskRequest(name=won[0].name, note="回访满意"), m.tasks.Task)

            def noted():
                r = cs("ListFollowUps", svc.ListFollowUpsRequest(parent=state["survivor"].name, page_size=100),
                       svc.ListFollowUpsResponse)
                return [f for f in r.follow_ups if f.summary == "回访满意"]
            eventually(noted, "the note did not reach crm-customers")
            assert len(noted()) == 1

        def kafka_shows_the_task_and_its_cause():
            consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                                     consumer_timeout_ms=3000, api_version_auto_timeout_ms=10000)
            topic = "crm.tasks.events.v1"
            parts = consumer.partitions_for_topic(topic)
            consumer.assign([TopicPartition(topic, p) for p in parts])
            consumer.seek_to_beginning()
            tid = state["won_task"].name.split("/", 1)[1]
            found = None
            deadline = time.time() + 20
            while found is None and time.time() < deadline:
                for rec in consumer:
                    headers = dict(rec.headers or [])
                    if headers.get("ce_type") != b"crm.tasks.v1.TaskCreated":
                        continue
                    env = m.env.EventEnvelope()
                    env.ParseFromString(rec.value)
                    if env.aggregate_id == tid:
                        found = env
                        break
            assert found is not None, "no TaskCreated on the topic"
            assert found.actor.source == m.env.ACTOR_SOURCE_AUTOMATION, found.actor
            assert found.causation_id == state["won_task"].origin.cause_event_id
            assert state["won_task"].origin.cause_event_type == "crm.opportunities.v1.OpportunityWon"

        def tickets_link_customers_and_reach_kafka():
            kt, kev = m.tickets, m.ticket_evs
            d = kev.TicketTypeDefinition(display_name="咨询")
            d.form.fields.add(key="question", label="问题", type=kev.FIELD_TYPE_LONG_TEXT, required=True)
            d.workflow.initial_state = "open"
            d.workflow.states.add(id="open", name="待处理")
            d.workflow.states.add(id="done", name="已完成", final=True)
            d.workflow.transitions.add(id="finish", name="完成", **{"from": "open", "to": "done"})
            unary(channels["tickets"], "crm.tickets.v1.TicketTypeService", "CreateTicketType",
                  kt.CreateTicketTypeRequest, kt.TicketType)(
                kt.CreateTicketTypeRequest(ticket_type_id="inquiry", definition=d), metadata=admin, timeout=20)
            fresh = customer("东莞精工电子", "13600001114")  # a moment ago, in the other process
            t = kt.Ticket(ticket_type="ticketTypes/inquiry", title="发票抬头怎么改", customer=fresh.name)
            t.values["question"].text = "发票抬头需要改成新公司名"
            made = unary(channels["tickets"], "crm.tickets.v1.TicketService", "CreateTicket", kt.CreateTicketRequest,
                         kt.Ticket)(kt.CreateTicketRequest(ticket=t), metadata=rep, timeout=20)
            assert made.customer == fresh.name, made
            task = m.tasks.Task(title="回电确认发票信息", related=made.name)
            task.due_time.FromSeconds(int(time.time()) // 3600 * 3600 + 7200)
            eventually(lambda: _try(lambda: ts("CreateTask", m.tasks.CreateTaskRequest(task=task), m.tasks.Task)),
                       "crm-tasks did not learn the ticket")
            consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                                     consumer_timeout_ms=3000, api_version_auto_timeout_ms=10000)
            topic = "crm.tickets.events.v1"
            parts = consumer.partitions_for_topic(topic)
            consumer.assign([TopicPartition(topic, p) for p in parts])
            consumer.seek_to_beginning()
            found = None
            deadline = time.time() + 20
            while found is None and time.time() < deadline:
                for rec in consumer:
                    headers = dict(rec.headers or [])
                    if headers.get("ce_type") != b"crm.tickets.v1.TicketCreated":
                        continue
                    env = m.env.EventEnvelope()
                    env.ParseFromString(rec.value)
                    if env.aggregate_id == made.name.split("/", 1)[1]:
                        found = env
                        break
            assert found is not None, "no TicketCreated on the topic"
            created = kev.TicketCreated()
            assert found.payload.Unpack(created)
            assert created.customer_id == fresh.name.split("/", 1)[1] and created.type_id == "inquiry", created

        def analytics_reports_the_other_processes_writes():
            import datetime
            import json
            import urllib.request
            an = m.analytics
            now = datetime.datetime.now(datetime.timezone.utc)
            req = an.GetFunnelReportRequest(min_consistency_token=state["won_token"])
            req.start_time.FromDatetime(now - datetime.timedelta(days=1))
            req.end_time.FromDatetime(now + datetime.timedelta(days=1))
            r = unary(channels["analytics"], "crm.analytics.v1.AnalyticsService", "GetFunnelReport",
                      an.GetFunnelReportRequest, an.FunnelReport)(req, metadata=admin, timeout=20)
            assert r.won == 1 and r.opportunities >= 1, r
            day = lambda d: (now + datetime.timedelta(hours=8) + d).strftime("%Y-%m-%d")  # noqa: E731
            url = (f"http://127.0.0.1:{dashboard_port}/api/v1/reports/funnel?from={day(datetime.timedelta(days=-1))}"
                   f"&to={day(datetime.timedelta(days=1))}&consistency_token={state['won_token']}")
            q = urllib.request.Request(url, headers={"Authorization": admin[0][1]})
            with urllib.request.urlopen(q, timeout=20) as resp:
                body = json.loads(resp.read())
            assert body["won"] == "1" and [s["stage_name"] for s in body["stages"]][0] == "初步接触", body
            with urllib.request.urlopen(f"http://127.0.0.1:{dashboard_port}/", timeout=20) as resp:
                assert "CRM 数据看板" in resp.read().decode("utf-8")

        def _try(fn):
            try:
                fn()
                return True
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                return False

        check("a merge in crm-customers moves the opportunities in crm-opportunities", merge_across_processes)
        check("a delete while crm-opportunities was killed -9 is flagged after its restart", recycle_bin_while_killed)
        check("a win in crm-opportunities makes a deal customer in crm-customers", won_makes_a_deal_customer)
        check("kafka-python reads the re-pointing event with its cause", kafka_shows_the_cause)
        check("crm-tasks follows both services, across kill -9, and writes notes back", tasks_follow_both_services)
        check("kafka-python reads the automated task with its cause", kafka_shows_the_task_and_its_cause)
        check("crm-tickets links a customer of crm-customers; tasks relate to the ticket; it is on Kafka",
              tickets_link_customers_and_reach_kafka)
        check("crm-analytics reports the other processes' writes over gRPC and on its dashboard",
              analytics_reports_the_other_processes_writes)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if RESULTS["failed"]:
            for name in ("customers", "opportunities", "tasks", "tickets", "analytics"):
                print(f"--- {name}.log\n" + open(os.path.join(work, f"{name}.log")).read()[-3000:])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
