#!/usr/bin/python3
"""A sales day end to end through gRPC against crmd on the embedded log: a lead is created,
qualified and converted into a customer with a contact and an opportunity request; the rep
records follow-ups; an admin's behaviour rule, previewed first, tags the customer through the
scheduler; 查重 finds the customer by the lead's phone; the history shows who did what.

Independent client: Debian's python3-grpcio with protos compiled here, tokens minted with
hmac. Run with /usr/bin/python3. Prints "N passed, N failed"; non-zero exit on failure.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import RESULTS, check, code_of, fields_of, free_port, generate_protos, mint_token, status_details, summary, unary, wait_healthy, work_dir  # noqa: E402,E501


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crmd", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--google-protos", required=True)
    args = ap.parse_args()
    work = work_dir("crm-e2e-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc  # noqa: E402
    svc, evs = m.svc, m.evs

    key = "e" * 48
    port = free_port()
    crmd = subprocess.Popen([args.crmd, "--data-dir", os.path.join(work, "data"), "--listen", f"127.0.0.1:{port}",
                             "--metrics-listen", "", "--dashboard-listen", "", "--scheduler-interval", "1"],
                            env=dict(os.environ, CRM_SIGNING_KEY=key),
                            stdout=open(os.path.join(work, "crmd.log"), "w"), stderr=subprocess.STDOUT)
    try:
        channel = wait_healthy(f"127.0.0.1:{port}")
        rep = [("authorization", "Bearer " + mint_token(key, "u1", "rep", "east"))]
        admin = [("authorization", "Bearer " + mint_token(key, "boss", "admin"))]
        manager = [("authorization", "Bearer " + mint_token(key, "m1", "manager", "east"))]
        rep2 = [("authorization", "Bearer " + mint_token(key, "u2", "rep", "east"))]

        def cs(method, req, resp):
            return unary(channel, "crm.customers.v1.CustomerService", method, req, resp)

        def ls(method, req, resp):
            return unary(channel, "crm.customers.v1.LeadService", method, req, resp)

        state = {}
        rule = evs.TagRule(id="phone-active", tag="高活跃意向客户", event_type="crm.customers.v1.FollowUpRecorded",
                           measure=evs.TAG_RULE_MEASURE_COUNT, match_field="channel",
                           match_value="FOLLOW_UP_CHANNEL_PHONE", window_days=30, threshold=2, enabled=True)

        def lead_to_customer():
            create = ls("CreateLead", svc.CreateLeadRequest, svc.Lead)
            lead = create(svc.CreateLeadRequest(request_id="lead-1", lead=svc.Lead(
                contact_name="王芳", company="杭州云帆贸易有限公司", phone="+86 139-0000-2222",
                source_channel=evs.SOURCE_CHANNEL_EXHIBITION, source_detail="广交会", need="年采购 500 台")),
                metadata=rep, timeout=10)
            assert lead.status == evs.LEAD_STATUS_OPEN and lead.owner_id == "u1", lead
            q = ls("QualifyLead", svc.QualifyLeadRequest, svc.Lead)(svc.QualifyLeadRequest(name=lead.name),
                                                                     metadata=rep, timeout=10)
            assert q.status == evs.LEAD_STATUS_QUALIFIED
            conv = ls("ConvertLead", svc.ConvertLeadRequest, svc.ConvertLeadResponse)(svc.ConvertLeadRequest(
                name=lead.name, create_opportunity=True, opportunity_name="500 台年框",
                expected_amount_minor=150000000, request_id="convert-1"), metadata=rep, timeout=10)
            assert conv.customer_created and conv.lead.status == evs.LEAD_STATUS_CONVERTED
            c = conv.customer
            assert c.display_name == "杭州云帆贸易有限公司" and c.phone == "+86 139-0000-2222", c
            assert c.source_channel == evs.SOURCE_CHANNEL_EXHIBITION and c.owner_id == "u1"
            assert len(c.contacts) == 1 and c.contacts[0].name == "王芳" and c.contacts[0].primary
            again = ls("ConvertLead", svc.ConvertLeadRequest, svc.ConvertLeadResponse)(svc.ConvertLeadRequest(
                name=lead.name, create_opportunity=True, opportunity_name="500 台年框",
                expected_amount_minor=150000000, request_id="convert-1"), metadata=rep, timeout=10)
            assert again.customer.name == c.name, "a retried conversion answers with the same customer"
            state["customer"] = c

        def follow_ups():
            add = cs("CreateFollowUp", svc.CreateFollowUpRequest, svc.FollowUp)
            for i, ch in enumerate([evs.FOLLOW_UP_CHANNEL_PHONE, evs.FOLLOW_UP_CHANNEL_WECHAT,
                                    evs.FOLLOW_UP_CHANNEL_PHONE]):
                add(svc.CreateFollowUpRequest(parent=state["customer"].name, request_id=f"fu-{i}",
                                              follow_up=svc.FollowUp(channel=ch, summary=f"第{i + 1}次沟通报价")),
                    metadata=rep, timeout=10)
            listed = cs("ListFollowUps", svc.ListFollowUpsRequest, svc.ListFollowUpsResponse)(
                svc.ListFollowUpsRequest(parent=state["customer"].name), metadata=rep, timeout=10)
            assert [f.summary for f in listed.follow_ups] == ["第3次沟通报价", "第2次沟通报价", "第1次沟通报价"]

        def preview_then_rule_tags():
            preview = cs("PreviewTagRule", svc.PreviewTagRuleRequest, svc.PreviewTagRuleResponse)(
                svc.PreviewTagRuleRequest(rule=rule, days=30), metadata=admin, timeout=10)
            assert preview.total_hits == 1 and preview.hits[0].customer == state["customer"].name, preview
            assert preview.hits[0].measure == 2 and not preview.hits[0].already_tagged
            try:
                cs("SetTagRules", svc.SetTagRulesRequest, svc.ListTagRulesResponse)(
                    svc.SetTagRulesRequest(rules=[rule]), metadata=rep, timeout=10)
                raise AssertionError("a rep set tag rules")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.code()
            cs("SetTagRules", svc.SetTagRulesRequest, svc.ListTagRulesResponse)(
                svc.SetTagRulesRequest(rules=[rule]), metadata=admin, timeout=10)
            get = cs("GetCustomer", svc.GetCustomerRequest, svc.Customer)
            deadline = time.time() + 20
            while time.time() < deadline:  # the scheduler runs every second
                c = get(svc.GetCustomerRequest(name=state["customer"].name), metadata=rep, timeout=10)
                if any(t.tag == "高活跃意向客户" for t in c.rule_tags):
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("the rule did not tag the customer")
            listed = cs("ListCustomers", svc.ListCustomersRequest, svc.ListCustomersResponse)(
                svc.ListCustomersRequest(filter='tags:"高活跃意向客户"'), metadata=rep, timeout=10)
            assert [x.name for x in listed.customers] == [state["customer"].name]

        def dedupe_finds_it():
            r = cs("FindDuplicates", svc.FindDuplicatesRequest, svc.FindDuplicatesResponse)(
                svc.FindDuplicatesRequest(display_name="杭州 云帆贸易（有限责任公司）", phone="13900002222"),
                metadata=rep, timeout=10)
            assert len(r.matches) == 1 and r.matches[0].customer.name == state["customer"].name, r
            assert list(r.matches[0].matched_on) == ["phone", "company_name"]

        def history_is_the_audit_trail():
            h = cs("ListCustomerEvents", svc.ListCustomerEventsRequest, svc.ListCustomerEventsResponse)(
                svc.ListCustomerEventsRequest(parent=state["customer"].name, page_size=100), metadata=rep, timeout=10)
            kinds = [(e.event_type.rsplit(".", 1)[1], e.actor.user_id) for e in h.events]
            assert kinds[0] == ("CustomerCreated", "u1") and ("ContactAdded", "u1") in kinds, kinds
            assert kinds.count(("FollowUpRecorded", "u1")) == 3, kinds
            assert kinds[-1] == ("CustomerRuleTagged", "scheduler"), kinds

        def bad_input_names_the_field():
            try:
                ls("DisqualifyLead", svc.DisqualifyLeadRequest, svc.Lead)(
                    svc.DisqualifyLeadRequest(name="leads/nope"), metadata=rep, timeout=10)
                raise AssertionError("accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
                bad = m.details.BadRequest()
                assert any(d.Unpack(bad) for d in status_details(e, m.status).details if d.Is(bad.DESCRIPTOR))
                assert bad.field_violations[0].field == "name", bad

        def refused(fn):
            """(code, first field named or "") of the RpcError `fn` raises."""
            code = code_of(fn)
            return code, fields_of(fn, m)[0] if code == grpc.StatusCode.INVALID_ARGUMENT else ""

        def tag_rules_are_listed_to_every_role():
            for who in (rep, manager, admin):
                listed = cs("ListTagRules", svc.ListTagRulesRequest, svc.ListTagRulesResponse)(
                    svc.ListTagRulesRequest(), metadata=who, timeout=10)
                assert [r.id for r in listed.rules] == ["phone-active"], listed
                assert listed.rules[0].threshold == 2 and listed.rules[0].enabled, listed.rules[0]

        def leads_updated_assigned_and_released():
            lead = ls("CreateLead", svc.CreateLeadRequest, svc.Lead)(svc.CreateLeadRequest(lead=svc.Lead(
                contact_name="李雷", company="苏州工业园区精密制造", phone="13900003333")), metadata=rep, timeout=10)
            update = ls("UpdateLead", svc.UpdateLeadRequest, svc.Lead)
            up = svc.UpdateLeadRequest(lead=svc.Lead(name=lead.name, need="数控机床 20 台"), update_mask={"paths": ["need"]},
                                       request_id="up-1")
            assert refused(lambda: update(up, metadata=rep2, timeout=10))[0] == grpc.StatusCode.PERMISSION_DENIED
            u = update(up, metadata=rep, timeout=10)
            assert u.need == "数控机床 20 台" and u.company == "苏州工业园区精密制造" and u.etag == "2", u
            assert update(up, metadata=rep, timeout=10).etag == "2", "a retried update applies once"
            assert refused(lambda: update(svc.UpdateLeadRequest(lead=svc.Lead(name=lead.name, email="nope"),
                                                                update_mask={"paths": ["email"]}),
                                          metadata=rep, timeout=10)) == (grpc.StatusCode.INVALID_ARGUMENT, "lead.email")
            assert refused(lambda: update(svc.UpdateLeadRequest(lead=svc.Lead(name=lead.name, owner_id="u2"),
                                                                update_mask={"paths": ["owner_id"]}),
                                          metadata=rep, timeout=10)) == (grpc.StatusCode.INVALID_ARGUMENT, "update_mask")
            assert refused(lambda: update(svc.UpdateLeadRequest(
                lead=svc.Lead(name="leads/0190a0a0-0000-7000-8000-000000000000", need="x"),
                update_mask={"paths": ["need"]}), metadata=rep, timeout=10))[0] == grpc.StatusCode.NOT_FOUND

            assign = ls("AssignLead", svc.AssignLeadRequest, svc.Lead)
            # Reps are not in AssignLead's row of docs/permissions.md
            assert refused(lambda: assign(svc.AssignLeadRequest(name=lead.name, owner_id="u2"), metadata=rep,
                                          timeout=10))[0] == grpc.StatusCode.PERMISSION_DENIED
            assert refused(lambda: assign(svc.AssignLeadRequest(name=lead.name), metadata=manager, timeout=10)) \
                == (grpc.StatusCode.INVALID_ARGUMENT, "owner_id")
            a = assign(svc.AssignLeadRequest(name=lead.name, owner_id="u2"), metadata=manager, timeout=10)
            assert a.owner_id == "u2" and a.team_id == "east" and a.etag == "3", a

            release = ls("ReleaseLead", svc.ReleaseLeadRequest, svc.Lead)
            assert refused(lambda: release(svc.ReleaseLeadRequest(name=lead.name, reason="联系不上"), metadata=rep,
                                           timeout=10))[0] == grpc.StatusCode.PERMISSION_DENIED
            r = release(svc.ReleaseLeadRequest(name=lead.name, reason="联系不上"), metadata=rep2, timeout=10)
            assert r.in_pool and r.owner_id == "" and r.etag == "4", r
            assert refused(lambda: release(svc.ReleaseLeadRequest(name=lead.name), metadata=rep2, timeout=10))[0] \
                == grpc.StatusCode.FAILED_PRECONDITION
            pool = ls("ListLeads", svc.ListLeadsRequest, svc.ListLeadsResponse)(
                svc.ListLeadsRequest(filter="in_pool = true"), metadata=rep, timeout=10)
            assert [x.name for x in pool.leads] == [lead.name], pool

        check("a lead is qualified and converted into a customer with a contact", lead_to_customer)
        check("follow-ups are recorded and listed newest first", follow_ups)
        check("a previewed behaviour rule tags the customer through the scheduler", preview_then_rule_tags)
        check("ListTagRules shows the rules in force to reps, managers and admins", tag_rules_are_listed_to_every_role)
        check("UpdateLead, AssignLead (not by reps) and ReleaseLead over gRPC; each write one version",
              leads_updated_assigned_and_released)
        check("查重 finds the customer by phone and normalised company name", dedupe_finds_it)
        check("the history shows every change with its actor", history_is_the_audit_trail)
        check("bad input is INVALID_ARGUMENT naming the field", bad_input_names_the_field)
        crmd.send_signal(signal.SIGTERM)
        check("crmd exits 0 on SIGTERM", lambda: crmd.wait(timeout=20) == 0 or (_ for _ in ()).throw(
            AssertionError(f"exit {crmd.returncode}")))
    finally:
        if crmd.poll() is None:
            crmd.kill()
        if RESULTS["failed"]:
            print("--- crmd.log\n" + open(os.path.join(work, "crmd.log")).read()[-4000:])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
