"""Opportunities (商机), quotes, contracts and payment collection (回款) end to end against crmd
on the embedded log, through gRPC from Python: the whole sale, the opportunities service's
reactions to the customers service's events (merge, recycle bin, lead conversion), bad input
per field, and acknowledged writes surviving kill -9.

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
from crm_testlib import RESULTS, check, free_port, generate_protos, mint_token, status_details, summary, unary, wait_healthy, work_dir  # noqa: E402,E501


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crmd", required=True)
    ap.add_argument("--crmctl", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--google-protos", required=True)
    args = ap.parse_args()
    work = work_dir("crm-e2e-opp-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc  # noqa: E402
    svc, opp, oevs = m.svc, m.opp, m.opp_evs

    key = "f" * 48
    port = free_port()
    data = os.path.join(work, "data")
    crmd = {}

    def start():
        crmd["p"] = subprocess.Popen([args.crmd, "--data-dir", data, "--listen", f"127.0.0.1:{port}",
                                      "--metrics-listen", "", "--dashboard-listen", "", "--scheduler-interval", "1"],
                                     env=dict(os.environ, CRM_SIGNING_KEY=key),
                                     stdout=open(os.path.join(work, "crmd.log"), "a"), stderr=subprocess.STDOUT)
        crmd["channel"] = wait_healthy(f"127.0.0.1:{port}")

    rep = [("authorization", "Bearer " + mint_token(key, "u1", "rep", "east"))]
    manager = [("authorization", "Bearer " + mint_token(key, "m1", "manager", "east"))]
    admin = [("authorization", "Bearer " + mint_token(key, "boss", "admin"))]

    def call(service, method, req, resp_cls, md=rep):
        return unary(crmd["channel"], service, method, type(req), resp_cls)(req, metadata=md, timeout=10)

    def cs(method, req, resp_cls, md=rep):
        return call("crm.customers.v1.CustomerService", method, req, resp_cls, md)

    def os_(method, req, resp_cls, md=rep):
        return call("crm.opportunities.v1.OpportunityService", method, req, resp_cls, md)

    def qs(method, req, resp_cls, md=rep):
        return call("crm.opportunities.v1.QuoteService", method, req, resp_cls, md)

    def ks(method, req, resp_cls, md=rep):
        return call("crm.opportunities.v1.ContractService", method, req, resp_cls, md)

    def customer(name, phone):
        return cs("CreateCustomer", svc.CreateCustomerRequest(customer=svc.Customer(display_name=name, phone=phone)),
                  svc.Customer)

    def new_opportunity(cust, title, amount_minor):
        # The customer's consistency token: the opportunities service waits until it knows it.
        return os_("CreateOpportunity", opp.CreateOpportunityRequest(
            opportunity=opp.Opportunity(customer=cust.name, title=title, amount=oevs.Money(amount_minor=amount_minor)),
            min_consistency_token=cust.consistency_token), opp.Opportunity)

    def get_opp(name, md=admin):
        return os_("GetOpportunity", opp.GetOpportunityRequest(name=name), opp.Opportunity, md)

    def eventually(fn, what, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            got = fn()
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(what)

    def field_of(fn):
        try:
            fn()
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
            bad = m.details.BadRequest()
            assert any(d.Unpack(bad) for d in status_details(e, m.status).details if d.Is(bad.DESCRIPTOR))
            return bad.field_violations[0].field
        raise AssertionError("accepted")

    state = {}
    start()
    try:
        def the_whole_sale():
            c = customer("杭州云栖科技有限公司", "13800138000")
            o = new_opportunity(c, "智能仓储系统", 12000000)
            assert o.stage_name == "初步接触" and o.owner_id == "u1", o
            for stage in ("needs_analysis", "proposal"):
                o = os_("MoveOpportunityStage", opp.MoveOpportunityStageRequest(name=o.name, stage_id=stage),
                        opp.Opportunity)
            q = qs("CreateQuote", opp.CreateQuoteRequest(request_id="q1", quote=opp.Quote(
                opportunity=o.name, current=oevs.QuoteVersion(lines=[
                    oevs.QuoteLine(product="货架", quantity_milli=2500, unit_price_minor=3333333, discount_bp=950,
                                   tax_rate_bp=1300),
                    oevs.QuoteLine(product="实施服务", quantity_milli=1000, unit_price_minor=1000000,
                                   tax_rate_bp=600)]))), opp.Quote)
            # 83,333.33 − 7,916.67 = 75,416.66 + 13% 9,804.17 = 85,220.83; + 10,600.00
            assert q.current.totals.total_minor == 9582083, q.current.totals
            qs("SendQuote", opp.SendQuoteRequest(name=q.name), opp.Quote)
            acc = qs("AcceptQuote", opp.AcceptQuoteRequest(name=q.name, start_date="2026-01-01",
                                                           end_date="2026-12-31", request_id="acc1"),
                     opp.AcceptQuoteResponse)
            k = acc.contract
            assert k.status == oevs.CONTRACT_STATUS_DRAFT and k.amount.amount_minor == 9582083, k
            assert k.number.startswith("HT") and len(k.number) == 14, k.number
            k = ks("SubmitContract", opp.SubmitContractRequest(name=k.name), opp.Contract)
            assert k.status == oevs.CONTRACT_STATUS_PENDING_APPROVAL  # threshold 0 until an admin sets one
            k = ks("ApproveContract", opp.ApproveContractRequest(name=k.name, comment="同意"), opp.Contract, manager)
            assert k.status == oevs.CONTRACT_STATUS_ACTIVE and k.approved_by == "m1"
            ks("SetPaymentPlan", opp.SetPaymentPlanRequest(name=k.name, instalments=[
                oevs.Instalment(due_date="2026-03-31", amount_minor=4791042),
                oevs.Instalment(due_date="2026-09-30", amount_minor=4791041)]), opp.Contract)
            paid_at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
            pay = oevs.PaymentRecorded(amount_minor=3000000, method="银行转账", reference="B-001")
            pay.paid_at.FromDatetime(paid_at)
            k = ks("RecordPayment", opp.RecordPaymentRequest(name=k.name, payment=pay, request_id="pay1"), opp.Contract)
            k = ks("RecordPayment", opp.RecordPaymentRequest(name=k.name, payment=pay, request_id="pay1"), opp.Contract)
            assert len(k.payments) == 1 and k.receivable_minor == 6582083, k
            r = ks("GetCustomerReceivables", opp.GetCustomerReceivablesRequest(customer=c.name),
                   opp.CustomerReceivables)
            assert r.total_receivable_minor["CNY"] == 6582083, r
            won = os_("WinOpportunity", opp.WinOpportunityRequest(name=o.name, reason="方案最优"), opp.Opportunity)
            assert won.status == oevs.OPPORTUNITY_STATUS_WON
            # The customers service reacts: a deal customer (成交), caused by the OpportunityWon
            eventually(lambda: cs("GetCustomer", svc.GetCustomerRequest(name=c.name), svc.Customer).deals_won == 1,
                       "the customer did not become a deal customer")
            assert cs("GetCustomer", svc.GetCustomerRequest(name=c.name), svc.Customer).lifecycle_status \
                == m.evs.LIFECYCLE_STATUS_DEAL
            h = os_("ListEvents", opp.ListEventsRequest(parent=k.name), opp.ListEventsResponse)
            kinds = [(e.event_type.rsplit(".", 1)[1], e.actor.user_id) for e in h.events]
            assert kinds[:3] == [("ContractDrafted", "u1"), ("ContractSubmitted", "u1"), ("ContractApproved", "m1")], kinds
            state.update(customer=c, opportunity=o, contract=k)

        def merge_moves_opportunities_to_the_survivor():
            survivor = customer("深圳华强电子", "13500135000")
            merged = customer("深圳华强电子有限公司", "13500135001")
            o = new_opportunity(merged, "芯片采购", 500000)
            cs("MergeCustomers", svc.MergeCustomersRequest(survivor=survivor.name, merged=merged.name),
               svc.MergeCustomersResponse, manager)
            eventually(lambda: get_opp(o.name).customer == survivor.name, "the opportunity did not follow the merge")
            h = os_("ListEvents", opp.ListEventsRequest(parent=o.name), opp.ListEventsResponse)
            change = h.events[-1]
            assert change.event_type == "crm.opportunities.v1.OpportunityCustomerChanged", change
            customer_events = cs("ListCustomerEvents", svc.ListCustomerEventsRequest(parent=merged.name, page_size=100),
                                 svc.ListCustomerEventsResponse, admin)
            merged_into = [e.event_id for e in customer_events.events if e.event_type.endswith("CustomerMergedInto")]
            assert change.causation_id == merged_into[-1], (change.causation_id, merged_into)
            state["survivor"] = survivor
            state["merged_opp"] = o

        def recycle_bin_flags_open_opportunities():
            survivor = state["survivor"]
            cs("DeleteCustomer", svc.DeleteCustomerRequest(name=survivor.name, reason="重复"), svc.Customer)
            eventually(lambda: get_opp(state["merged_opp"].name).customer_deleted, "not flagged")
            flagged = os_("ListOpportunities", opp.ListOpportunitiesRequest(filter="customer_deleted = true"),
                          opp.ListOpportunitiesResponse, manager)
            assert [x.name for x in flagged.opportunities] == [state["merged_opp"].name], flagged
            cs("UndeleteCustomer", svc.UndeleteCustomerRequest(name=survivor.name), svc.Customer)
            eventually(lambda: not get_opp(state["merged_opp"].name).customer_deleted, "the flag stayed")

        def lead_conversion_creates_one_opportunity():
            lead = call("crm.customers.v1.LeadService", "CreateLead", svc.CreateLeadRequest(lead=svc.Lead(
                contact_name="王芳", company="杭州云帆贸易有限公司", phone="13900002222")), svc.Lead)
            conv = call("crm.customers.v1.LeadService", "ConvertLead", svc.ConvertLeadRequest(
                name=lead.name, create_opportunity=True, opportunity_name="500 台年框",
                expected_amount_minor=150000000, request_id="convert-1"), svc.ConvertLeadResponse)

            def listed():
                r = os_("ListOpportunities", opp.ListOpportunitiesRequest(
                    filter=f'customer = "{conv.customer.name}"'), opp.ListOpportunitiesResponse)
                return r if r.total_size else None
            r = eventually(listed, "no opportunity for the conversion")
            assert r.total_size == 1 and r.opportunities[0].title == "500 台年框", r
            assert r.opportunities[0].lead_id == lead.name.split("/")[1], r.opportunities[0]

        def bad_input_names_the_field():
            c = state["customer"]
            assert field_of(lambda: os_("CreateOpportunity", opp.CreateOpportunityRequest(opportunity=opp.Opportunity(
                customer="customers/x", title="t")), opp.Opportunity)) == "opportunity.customer"
            assert field_of(lambda: os_("CreateOpportunity", opp.CreateOpportunityRequest(opportunity=opp.Opportunity(
                customer=c.name, title="t", expected_close_date="2026-02-30")), opp.Opportunity)) \
                == "opportunity.expected_close_date"
            assert field_of(lambda: os_("MoveOpportunityStage", opp.MoveOpportunityStageRequest(
                name=state["merged_opp"].name, stage_id="nope"), opp.Opportunity)) == "stage_id"
            assert field_of(lambda: ks("RecordPayment", opp.RecordPaymentRequest(
                name=state["contract"].name, payment=oevs.PaymentRecorded(amount_minor=-5)), opp.Contract)) \
                == "payment.amount_minor"
            assert field_of(lambda: ks("SetPaymentPlan", opp.SetPaymentPlanRequest(
                name=state["contract"].name, instalments=[oevs.Instalment(due_date="2026/01/01", amount_minor=1)]),
                opp.Contract)) == "plan.instalments[0].due_date"
            assert field_of(lambda: os_("ListOpportunities", opp.ListOpportunitiesRequest(filter="status = MAYBE"),
                                        opp.ListOpportunitiesResponse)) == "filter"
            assert field_of(lambda: ks("GetReceivable", opp.GetReceivableRequest(name="opportunities/x"),
                                       opp.Receivable)) == "name"

        def acknowledged_writes_survive_kill_9():
            k = state["contract"]
            pay = oevs.PaymentRecorded(amount_minor=100000, method="现金")
            pay.paid_at.GetCurrentTime()
            acked = ks("RecordPayment", opp.RecordPaymentRequest(name=k.name, payment=pay, request_id="pay2"),
                       opp.Contract)
            crmd["p"].send_signal(signal.SIGKILL)
            crmd["p"].wait(timeout=10)
            start()
            again = ks("GetContract", opp.GetContractRequest(name=k.name), opp.Contract)
            assert again.collected_minor == acked.collected_minor == 3100000, (again.collected_minor, acked)
            assert get_opp(state["opportunity"].name).status == oevs.OPPORTUNITY_STATUS_WON

        check("the whole sale: opportunity, quote, contract, approval, plan, payment, receivable", the_whole_sale)
        check("a merge moves the merged customer's opportunities to the survivor", merge_moves_opportunities_to_the_survivor)
        check("the recycle bin flags open opportunities and undelete clears the flag",
              recycle_bin_flags_open_opportunities)
        check("a lead converted with an opportunity requested gets exactly one", lead_conversion_creates_one_opportunity)
        check("bad input is INVALID_ARGUMENT naming the field", bad_input_names_the_field)

        def the_funnel_counts_them_now_and_as_of_before():
            import datetime
            import grpc
            an = m.analytics
            now = datetime.datetime.now(datetime.timezone.utc)
            req = an.GetFunnelReportRequest()
            req.start_time.FromDatetime(now - datetime.timedelta(hours=1))
            req.end_time.FromDatetime(now + datetime.timedelta(hours=1))

            def funnel(r, md=admin):
                return call("crm.analytics.v1.AnalyticsService", "GetFunnelReport", r, an.FunnelReport, md)
            r = funnel(req)
            assert r.opportunities >= 3 and r.won >= 1, r
            assert r.stages and r.stages[0].stage_id == "initial_contact", r
            assert r.stages[0].reached == r.opportunities, r
            req.as_of.FromDatetime(now - datetime.timedelta(minutes=59))
            assert funnel(req).opportunities == 0
            req.ClearField("as_of")
            req.scope = an.REPORT_SCOPE_ALL
            try:
                funnel(req, rep)
                raise AssertionError("a rep saw every team's funnel")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
        check("the analytics funnel counts them now, and nothing as of before", the_funnel_counts_them_now_and_as_of_before)
        def crmctl_sells_and_collects():
            env = dict(os.environ, CRM_ADDR=f"127.0.0.1:{port}", CRM_TOKEN=mint_token(key, "u1", "rep", "east"))

            def ctl(*argv, rc=0):
                p = subprocess.run([args.crmctl, *argv], env=env, capture_output=True, text=True, timeout=30)
                assert p.returncode == rc, (argv, p.returncode, p.stdout, p.stderr)
                return p.stdout + p.stderr

            import json
            cust = json.loads(ctl("customers", "create", "--display-name", "南京紫金物联", "--phone", "13700001111",
                                  "-o", "json"))["name"]
            # created a moment ago and no token passed: the service catches its view up first
            o = json.loads(ctl("opportunities", "create", "--customer", cust, "--title", "传感器 1 万套",
                               "--amount", "1,000,000.00", "-o", "json"))
            assert o["amount"]["amount_minor"] == "100000000", o
            ctl("opportunities", "move", o["name"], "proposal", "--note", "需求确认")
            q = json.loads(ctl("quotes", "create", "--opportunity", o["name"], "--line", "传感器|10000|98.5|5|13",
                               "-o", "json"))
            # 10000 × 98.50 = 985,000.00; 5% off 49,250.00; VAT 13% of 935,750.00 = 121,647.50
            assert q["current"]["totals"]["total_minor"] == "105739750", q["current"]["totals"]
            ctl("quotes", "send", q["name"])
            acc = json.loads(ctl("quotes", "accept", q["name"], "--start", "2026-01-01", "--end", "2026-12-31",
                                 "-o", "json"))
            k = acc["contract"]["name"]
            upd = json.loads(ctl("contracts", "update", k, "--notes", "首付 30%", "-o", "json"))
            assert upd["notes"] == "首付 30%" and upd["etag"] == "2", upd
            assert "nothing to update" in ctl("contracts", "update", k, rc=2)
            listed = ctl("contracts", "list", "--filter", f'customer = "{cust}"')
            assert "DRAFT" in listed and "1057397.50 CNY" in listed, listed
            out = ctl("opportunities", "list", "--filter", f'customer = "{cust}"')
            assert "1 of 1; total 1000000.00 CNY (weighted 600000.00)" in out, out
            # bad flags exit 2 without a call; a refused call exits 1 naming the field
            assert "more than 2 decimals" in ctl("contracts", "pay", k, "--amount", "1.001", "--paid-at", "2026-01-05",
                                                  rc=2)
            assert "neither yyyy-MM-dd" in ctl("contracts", "pay", k, "--amount", "1", "--paid-at", "yesterday", rc=2)
            assert "CONTRACT_STATUS" in ctl("contracts", "pay", k, "--amount", "1", "--paid-at", "2026-01-05", rc=1)
            assert "refusing" in ctl("contracts", "terminate", k, "--reason", "x", rc=2)
            assert "field: stage_id" in ctl("opportunities", "move", o["name"], "nope", rc=1)

        check("acknowledged writes survive kill -9", acknowledged_writes_survive_kill_9)
        check("crmctl sells and refuses bad input with the documented exit codes", crmctl_sells_and_collects)
        crmd["p"].send_signal(signal.SIGTERM)
        check("crmd exits 0 on SIGTERM", lambda: crmd["p"].wait(timeout=20) == 0 or (_ for _ in ()).throw(
            AssertionError(f"exit {crmd['p'].returncode}")))
    finally:
        if crmd["p"].poll() is None:
            crmd["p"].kill()
        if RESULTS["failed"]:
            print("--- crmd.log\n" + open(os.path.join(work, "crmd.log")).read()[-4000:])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
