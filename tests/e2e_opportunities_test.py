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
from crm_testlib import RESULTS, check, code_of, free_port, generate_protos, mint_token, status_details, summary, unary, wait_healthy, work_dir  # noqa: E402,E501


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
    rep2 = [("authorization", "Bearer " + mint_token(key, "u2", "rep", "east"))]

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

    def events_of(name):
        h = os_("ListEvents", opp.ListEventsRequest(parent=name, page_size=100), opp.ListEventsResponse, admin)
        return [e.event_type.rsplit(".", 1)[1] for e in h.events]

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

        # The rpcs the audit of issue 26 found untested over the wire: results, errors and events.
        def recycle_bin_and_reopen_over_the_wire():
            c = customer("无锡太湖机电", "13300133000")
            o = new_opportunity(c, "数控机床", 800000)
            os_("MoveOpportunityStage", opp.MoveOpportunityStageRequest(name=o.name, stage_id="needs_analysis"),
                opp.Opportunity)
            gone = opp.DeleteOpportunityRequest(name=o.name, reason="重复录入")
            assert code_of(lambda: os_("DeleteOpportunity", gone, opp.Opportunity, rep2)) \
                == grpc.StatusCode.PERMISSION_DENIED
            assert field_of(lambda: os_("DeleteOpportunity", opp.DeleteOpportunityRequest(name="x/y"),
                                        opp.Opportunity)) == "name"
            assert code_of(lambda: os_("DeleteOpportunity", opp.DeleteOpportunityRequest(
                name="opportunities/0190a0a0-0000-7000-8000-000000000000"), opp.Opportunity)) \
                == grpc.StatusCode.NOT_FOUND
            d = os_("DeleteOpportunity", gone, opp.Opportunity)
            assert d.deleted, d

            def listed(show_deleted):
                return [x.name for x in os_("ListOpportunities", opp.ListOpportunitiesRequest(
                    filter=f'customer = "{c.name}"', show_deleted=show_deleted), opp.ListOpportunitiesResponse).opportunities]
            assert listed(False) == [] and listed(True) == [o.name], (listed(False), listed(True))
            u = os_("UndeleteOpportunity", opp.UndeleteOpportunityRequest(name=o.name), opp.Opportunity)
            assert not u.deleted and listed(False) == [o.name], u
            assert code_of(lambda: os_("UndeleteOpportunity", opp.UndeleteOpportunityRequest(name=o.name),
                                       opp.Opportunity)) == grpc.StatusCode.FAILED_PRECONDITION
            reopen = opp.ReopenOpportunityRequest(name=o.name, reason="预算恢复")
            assert code_of(lambda: os_("ReopenOpportunity", reopen, opp.Opportunity)) \
                == grpc.StatusCode.FAILED_PRECONDITION
            os_("LoseOpportunity", opp.LoseOpportunityRequest(name=o.name, reason="预算取消"), opp.Opportunity)
            assert field_of(lambda: os_("ReopenOpportunity", opp.ReopenOpportunityRequest(name=o.name, stage_id="won"),
                                        opp.Opportunity)) == "stage_id"
            assert code_of(lambda: os_("ReopenOpportunity", reopen, opp.Opportunity, rep2)) \
                == grpc.StatusCode.PERMISSION_DENIED
            r = os_("ReopenOpportunity", reopen, opp.Opportunity)
            assert r.status == oevs.OPPORTUNITY_STATUS_OPEN and r.stage_id == "needs_analysis", r
            assert events_of(o.name) == ["OpportunityCreated", "OpportunityStageChanged", "OpportunityDeleted",
                                         "OpportunityUndeleted", "OpportunityLost", "OpportunityReopened"], events_of(o.name)
            state["second"] = (c, o)

        def sales_settings_over_the_wire():
            s = os_("GetSalesSettings", opp.GetSalesSettingsRequest(), opp.SalesSettings, rep)
            assert s.pipelines and s.pipelines[0].stages[0].id == "initial_contact", s
            assert field_of(lambda: os_("GetSalesSettings", opp.GetSalesSettingsRequest(
                min_consistency_token="not-a-token"), opp.SalesSettings)) == "min_consistency_token"
            assert code_of(lambda: os_("SetPipelines", opp.SetPipelinesRequest(pipelines=s.pipelines), opp.SalesSettings,
                                       manager)) == grpc.StatusCode.PERMISSION_DENIED
            pipelines = list(s.pipelines)
            pipelines[0].stages[0].name = "初步接洽"
            set_ = os_("SetPipelines", opp.SetPipelinesRequest(pipelines=pipelines, etag=s.etag), opp.SalesSettings, admin)
            after = os_("GetSalesSettings", opp.GetSalesSettingsRequest(min_consistency_token=set_.consistency_token),
                        opp.SalesSettings, rep)
            assert after.pipelines[0].stages[0].name == "初步接洽" and after.etag != s.etag, after

        def quotes_over_the_wire():
            c, o = state["second"]
            line = oevs.QuoteLine(product="主轴", quantity_milli=2000, unit_price_minor=50000)
            q = qs("CreateQuote", opp.CreateQuoteRequest(quote=opp.Quote(
                opportunity=o.name, current=oevs.QuoteVersion(lines=[line]))), opp.Quote)
            got = qs("GetQuote", opp.GetQuoteRequest(name=q.name), opp.Quote)
            assert got.current.number == 1 and got.current.totals.total_minor == 100000, got
            assert code_of(lambda: qs("GetQuote", opp.GetQuoteRequest(name=q.name), opp.Quote, rep2)) \
                == grpc.StatusCode.PERMISSION_DENIED
            assert code_of(lambda: qs("GetQuote", opp.GetQuoteRequest(
                name="quotes/0190a0a0-0000-7000-8000-000000000000"), opp.Quote)) == grpc.StatusCode.NOT_FOUND
            assert field_of(lambda: qs("GetQuote", opp.GetQuoteRequest(name="opportunities/x"), opp.Quote)) == "name"
            listed = qs("ListQuotes", opp.ListQuotesRequest(parent=o.name), opp.ListQuotesResponse)
            assert [x.name for x in listed.quotes] == [q.name], listed
            assert field_of(lambda: qs("ListQuotes", opp.ListQuotesRequest(), opp.ListQuotesResponse)) == "parent"
            line.quantity_milli = 3000
            revise = opp.ReviseQuoteRequest(name=q.name, version=oevs.QuoteVersion(lines=[line]), request_id="rev-1")
            r = qs("ReviseQuote", revise, opp.Quote)
            assert r.current.number == 2 and r.current.totals.total_minor == 150000, r.current
            assert [v.number for v in r.earlier_versions] == [1], r.earlier_versions
            assert qs("ReviseQuote", revise, opp.Quote).current.number == 2  # the retry revises once
            bad = oevs.QuoteLine(product="主轴", quantity_milli=0, unit_price_minor=1)
            assert field_of(lambda: qs("ReviseQuote", opp.ReviseQuoteRequest(
                name=q.name, version=oevs.QuoteVersion(lines=[bad])), opp.Quote)) == "version.lines[0].quantity_milli"
            reject = opp.RejectQuoteRequest(name=q.name, reason="价格过高")
            assert code_of(lambda: qs("RejectQuote", reject, opp.Quote)) == grpc.StatusCode.FAILED_PRECONDITION
            qs("SendQuote", opp.SendQuoteRequest(name=q.name), opp.Quote)
            assert field_of(lambda: qs("RejectQuote", opp.RejectQuoteRequest(name=q.name), opp.Quote)) == "reason"
            rj = qs("RejectQuote", reject, opp.Quote)
            assert rj.status == oevs.QUOTE_STATUS_REJECTED, rj
            assert events_of(q.name) == ["QuoteCreated", "QuoteRevised", "QuoteSent", "QuoteRejected"], events_of(q.name)

        def contracts_rejected_and_terminated_over_the_wire():
            c, _ = state["second"]
            os_("SetContractPolicy", opp.SetContractPolicyRequest(approval_threshold_minor=1000), opp.SalesSettings, admin)

            def submitted(title):
                k = ks("CreateContract", opp.CreateContractRequest(contract=opp.Contract(
                    customer=c.name, title=title, amount=oevs.Money(amount_minor=500000), start_date="2026-01-01",
                    end_date="2026-12-31")), opp.Contract)
                k = ks("SubmitContract", opp.SubmitContractRequest(name=k.name), opp.Contract)
                assert k.status == oevs.CONTRACT_STATUS_PENDING_APPROVAL, k
                return k
            a, b = submitted("维保合同"), submitted("软件合同")
            reject = opp.RejectContractRequest(name=a.name, reason="金额有误")
            # Reps are not in RejectContract's row of docs/permissions.md
            assert code_of(lambda: ks("RejectContract", reject, opp.Contract, rep)) == grpc.StatusCode.PERMISSION_DENIED
            assert field_of(lambda: ks("RejectContract", opp.RejectContractRequest(name=a.name), opp.Contract,
                                       manager)) == "reason"
            r = ks("RejectContract", reject, opp.Contract, manager)
            assert r.status == oevs.CONTRACT_STATUS_DRAFT, r
            u = ks("UpdateContract", opp.UpdateContractRequest(contract=opp.Contract(name=a.name, title="维保合同（改）"),
                                                              update_mask={"paths": ["title"]}), opp.Contract)
            assert u.title == "维保合同（改）", u
            terminate = opp.TerminateContractRequest(name=b.name, reason="客户违约")
            assert code_of(lambda: ks("TerminateContract", terminate, opp.Contract)) \
                == grpc.StatusCode.FAILED_PRECONDITION
            ks("ApproveContract", opp.ApproveContractRequest(name=b.name), opp.Contract, manager)
            assert field_of(lambda: ks("TerminateContract", opp.TerminateContractRequest(name=b.name),
                                       opp.Contract)) == "reason"
            assert code_of(lambda: ks("TerminateContract", terminate, opp.Contract, rep2)) \
                == grpc.StatusCode.PERMISSION_DENIED
            t = ks("TerminateContract", terminate, opp.Contract)
            assert t.status == oevs.CONTRACT_STATUS_TERMINATED, t
            listed = ks("ListContracts", opp.ListContractsRequest(filter=f'customer = "{c.name}"'),
                        opp.ListContractsResponse)
            assert {k.name: k.status for k in listed.contracts} == {
                a.name: oevs.CONTRACT_STATUS_DRAFT, b.name: oevs.CONTRACT_STATUS_TERMINATED}, listed
            assert "ContractApprovalRejected" in events_of(a.name) and events_of(b.name)[-1] == "ContractTerminated"

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
        def opportunity_updated_and_payments_corrected_and_voided():
            c, o = state["second"]
            up = opp.UpdateOpportunityRequest(opportunity=opp.Opportunity(name=o.name, title="数控机床二期",
                                                                          amount=oevs.Money(amount_minor=900000)),
                                              update_mask={"paths": ["title", "amount"]})
            got = code_of(lambda: os_("UpdateOpportunity", up, opp.Opportunity, rep2))
            assert got == grpc.StatusCode.PERMISSION_DENIED, got
            u = os_("UpdateOpportunity", up, opp.Opportunity)
            assert u.title == "数控机床二期" and u.amount.amount_minor == 900000, u
            stale = opp.UpdateOpportunityRequest(opportunity=opp.Opportunity(name=o.name, title="x", etag="1"),
                                                 update_mask={"paths": ["title"]})
            assert code_of(lambda: os_("UpdateOpportunity", stale, opp.Opportunity)) == grpc.StatusCode.ABORTED
            assert events_of(o.name)[-1] == "OpportunityUpdated", events_of(o.name)

            k = ks("CreateContract", opp.CreateContractRequest(contract=opp.Contract(
                customer=c.name, title="备件合同", amount=oevs.Money(amount_minor=500000), start_date="2026-01-01",
                end_date="2026-12-31")), opp.Contract)
            ks("SubmitContract", opp.SubmitContractRequest(name=k.name), opp.Contract)
            ks("ApproveContract", opp.ApproveContractRequest(name=k.name), opp.Contract, manager)
            pay = oevs.PaymentRecorded(amount_minor=100000, method="银行转账")
            pay.paid_at.GetCurrentTime()
            k = ks("RecordPayment", opp.RecordPaymentRequest(name=k.name, payment=pay), opp.Contract)
            pid = k.payments[0].payment_id
            fix = opp.CorrectPaymentRequest(name=k.name, payment_id=pid, amount_minor=120000, paid_at=pay.paid_at,
                                            reason="录入错误")
            # Reps are not in CorrectPayment's or VoidPayment's rows of docs/permissions.md
            assert code_of(lambda: ks("CorrectPayment", fix, opp.Contract, rep)) == grpc.StatusCode.PERMISSION_DENIED
            assert field_of(lambda: ks("CorrectPayment", opp.CorrectPaymentRequest(
                name=k.name, payment_id=pid, amount_minor=-1, paid_at=pay.paid_at, reason="x"), opp.Contract, manager)) \
                == "amount_minor"
            fixed = ks("CorrectPayment", fix, opp.Contract, manager)
            assert fixed.collected_minor == 120000 and fixed.payments[0].corrections == 1, fixed
            void = opp.VoidPaymentRequest(name=k.name, payment_id=pid, reason="退款")
            assert code_of(lambda: ks("VoidPayment", void, opp.Contract, rep)) == grpc.StatusCode.PERMISSION_DENIED
            assert code_of(lambda: ks("VoidPayment", opp.VoidPaymentRequest(name=k.name, payment_id="nope", reason="x"),
                                      opp.Contract, manager)) == grpc.StatusCode.NOT_FOUND
            voided = ks("VoidPayment", void, opp.Contract, manager)
            assert voided.collected_minor == 0 and voided.payments[0].voided, voided
            assert events_of(k.name)[-3:] == ["PaymentRecorded", "PaymentCorrected", "PaymentVoided"], events_of(k.name)

        check("DeleteOpportunity, UndeleteOpportunity and ReopenOpportunity over gRPC",
              recycle_bin_and_reopen_over_the_wire)
        check("GetSalesSettings shows what SetPipelines set; managers may not set them", sales_settings_over_the_wire)
        check("GetQuote, ListQuotes, ReviseQuote and RejectQuote over gRPC", quotes_over_the_wire)
        check("RejectContract (not by reps), UpdateContract, TerminateContract and ListContracts over gRPC",
              contracts_rejected_and_terminated_over_the_wire)
        check("UpdateOpportunity; CorrectPayment and VoidPayment (not by reps) over gRPC",
              opportunity_updated_and_payments_corrected_and_voided)

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
