#!/usr/bin/python3
"""ERP/OA integration over Kafka, with kafka-python as the external system: crm-customers,
crm-opportunities and crm-integration as separate processes on crm-devbroker.

- crm.inbound.v1: customer master data creates and then updates a customer; an OA approval
  activates a contract pending approval; ERP payments are recorded, a payment sent three times
  with one id counts once; an ERP order becomes a follow-up; binary-mode CloudEvents work too.
- Bad input goes to crm.inbound.v1.dlq with the reason, code and field in its headers (not
  JSON, unknown type, bad amount, wrong currency, a contract not pending approval) and changes
  nothing.
- crm-integration is killed (-9) during a burst of 120 payments with repeats and restarted:
  every payment counts exactly once, no dead letter is written twice.
- crm.public.events.v1 holds every event of the services' topics exactly once, in each
  aggregate's version order, each valid against its schema in docs/events/schemas/.

Run with /usr/bin/python3. Prints "N passed, N failed" and exits non-zero on failure.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import check, free_port, generate_protos, mint_token, summary, unary, wait_healthy, work_dir  # noqa: E402

TOPICS = ["crm.customers.events.v1", "crm.opportunities.events.v1", "crm.tasks.events.v1", "crm.tickets.events.v1"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devbroker", required=True)
    ap.add_argument("--customers", required=True)
    ap.add_argument("--opportunities", required=True)
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
    svc, opp, oevs = m.svc, m.opp, m.opp_evs

    key = "k" * 48
    env = dict(os.environ, CRM_SIGNING_KEY=key)
    bootstrap_file = os.path.join(work, "bootstrap")
    procs = {}
    procs["broker"] = subprocess.Popen([args.devbroker, "--bootstrap-file", bootstrap_file],
                                       stdout=open(os.path.join(work, "broker.log"), "w"), stderr=subprocess.STDOUT)
    ports = {"customers": free_port(), "opportunities": free_port(), "integration": free_port()}
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
            assert {"crm.customers.v1.CustomerCreated", "crm.opportunities.v1.ContractApproved",
                    "crm.opportunities.v1.PaymentRecorded", "crm.customers.v1.FollowUpRecorded"} <= types, types
            print(f"    {len(evs)} public events of {len(types)} types, each valid against its schema")

        check("customer master data creates, then updates a customer", customer_master_data)
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
        for name in ("integration", "customers", "opportunities"):
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
