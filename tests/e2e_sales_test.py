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

        def customer_calls(method, req, resp, who=rep):
            return cs(method, type(req), resp)(req, metadata=who, timeout=10)

        def trail(name):
            h = customer_calls("ListCustomerEvents", svc.ListCustomerEventsRequest(parent=name, page_size=100),
                               svc.ListCustomerEventsResponse, admin)
            return [e.event_type.rsplit(".", 1)[1] for e in h.events]

        def contacts_pool_policy_and_industries():
            c = customer_calls("CreateCustomer", svc.CreateCustomerRequest(customer=svc.Customer(
                display_name="宁波港通物流有限公司", phone="13600001111")), svc.Customer)
            # Contacts (联系人)
            added = customer_calls("AddContact", svc.AddContactRequest(parent=c.name, contact=evs.Contact(
                name="赵敏", title="采购经理", phone="13600002222", primary=True)), svc.Customer)
            assert len(added.contacts) == 1 and added.contacts[0].name == "赵敏", added.contacts
            cid = added.contacts[0].id
            assert refused(lambda: customer_calls("AddContact", svc.AddContactRequest(
                parent=c.name, contact=evs.Contact(name="x", email="not-an-email")), svc.Customer))[0] == \
                grpc.StatusCode.INVALID_ARGUMENT
            assert refused(lambda: customer_calls("AddContact", svc.AddContactRequest(
                parent=c.name, contact=evs.Contact(name="钱七")), svc.Customer, rep2))[0] == \
                grpc.StatusCode.PERMISSION_DENIED
            up = customer_calls("UpdateContact", svc.UpdateContactRequest(parent=c.name, contact=evs.Contact(
                id=cid, title="采购总监"), update_mask={"paths": ["title"]}), svc.Customer)
            assert up.contacts[0].title == "采购总监" and up.contacts[0].name == "赵敏", up.contacts
            assert refused(lambda: customer_calls("UpdateContact", svc.UpdateContactRequest(
                parent=c.name, contact=evs.Contact(id="nope", title="x"), update_mask={"paths": ["title"]}),
                svc.Customer))[0] == grpc.StatusCode.NOT_FOUND
            rm = customer_calls("RemoveContact", svc.RemoveContactRequest(parent=c.name, contact_id=cid), svc.Customer)
            assert list(rm.contacts) == [], rm.contacts
            # The public pool (公海): released by its owner, claimed by another rep of the team
            pol = customer_calls("GetPoolPolicy", svc.GetPoolPolicyRequest(), evs.PoolPolicy)
            assert refused(lambda: customer_calls("UpdatePoolPolicy", svc.UpdatePoolPolicyRequest(policy=pol),
                                                  evs.PoolPolicy, manager))[0] == grpc.StatusCode.PERMISSION_DENIED
            pol.daily_claim_limit = 1
            assert customer_calls("UpdatePoolPolicy", svc.UpdatePoolPolicyRequest(policy=pol), evs.PoolPolicy,
                                  admin).daily_claim_limit == 1
            assert customer_calls("GetPoolPolicy", svc.GetPoolPolicyRequest(), evs.PoolPolicy, rep).daily_claim_limit == 1
            released = customer_calls("ReleaseCustomer", svc.ReleaseCustomerRequest(name=c.name, reason="无意向"),
                                      svc.Customer)
            assert released.in_pool and released.owner_id == "", released
            claimed = customer_calls("ClaimCustomer", svc.ClaimCustomerRequest(name=c.name), svc.Customer, rep2)
            assert claimed.owner_id == "u2" and not claimed.in_pool, claimed
            assert refused(lambda: customer_calls("ClaimCustomer", svc.ClaimCustomerRequest(name=c.name), svc.Customer,
                                                  rep))[0] == grpc.StatusCode.FAILED_PRECONDITION
            kinds = trail(c.name)
            assert kinds[:4] == ["CustomerCreated", "ContactAdded", "ContactUpdated", "ContactRemoved"], kinds
            assert "CustomerReturnedToPool" in kinds and kinds[-1] == "CustomerClaimed", kinds
            # Industries: admins set the list everyone reads
            codes = [i.code for i in customer_calls("ListIndustries", svc.ListIndustriesRequest(),
                                                    svc.ListIndustriesResponse).industries]
            assert refused(lambda: customer_calls("SetIndustries", svc.SetIndustriesRequest(
                industries=[evs.Industry(code="x", name="x")]), svc.ListIndustriesResponse, manager))[0] == \
                grpc.StatusCode.PERMISSION_DENIED
            mine = [evs.Industry(code="logistics", name="物流"), evs.Industry(code="retail", name="零售")]
            customer_calls("SetIndustries", svc.SetIndustriesRequest(industries=mine), svc.ListIndustriesResponse, admin)
            after = customer_calls("ListIndustries", svc.ListIndustriesRequest(), svc.ListIndustriesResponse, rep)
            assert [i.code for i in after.industries] == ["logistics", "retail"], (codes, after)

        def a_pool_lead_is_claimed_and_a_merge_undone():
            lead = ls("CreateLead", svc.CreateLeadRequest, svc.Lead)(svc.CreateLeadRequest(lead=svc.Lead(
                contact_name="孙丽", company="温州鞋业", phone="13900004444")), metadata=admin, timeout=10)
            assert lead.in_pool, lead
            claim = ls("ClaimLead", svc.ClaimLeadRequest, svc.Lead)
            got = claim(svc.ClaimLeadRequest(name=lead.name), metadata=rep, timeout=10)
            assert got.owner_id == "u1" and not got.in_pool, got
            assert refused(lambda: claim(svc.ClaimLeadRequest(name=lead.name), metadata=rep2, timeout=10))[0] == \
                grpc.StatusCode.FAILED_PRECONDITION
            a = customer_calls("CreateCustomer", svc.CreateCustomerRequest(customer=svc.Customer(
                display_name="厦门鹭岛贸易", phone="13700007777")), svc.Customer)
            b = customer_calls("CreateCustomer", svc.CreateCustomerRequest(customer=svc.Customer(
                display_name="鹭岛贸易（厦门）", phone="13700008888")), svc.Customer)
            customer_calls("MergeCustomers", svc.MergeCustomersRequest(survivor=a.name, merged=b.name),
                           svc.MergeCustomersResponse, manager)
            assert refused(lambda: customer_calls("UnmergeCustomers", svc.UnmergeCustomersRequest(
                survivor=a.name, merged="customers/x"), svc.MergeCustomersResponse, manager)) == \
                (grpc.StatusCode.INVALID_ARGUMENT, "merged")
            un = customer_calls("UnmergeCustomers", svc.UnmergeCustomersRequest(survivor=a.name, merged=b.name),
                                svc.MergeCustomersResponse, manager)
            assert un.merged.name == b.name and un.survivor.name == a.name, un
            live = customer_calls("GetCustomer", svc.GetCustomerRequest(name=b.name), svc.Customer)
            assert live.display_name == "鹭岛贸易（厦门）", live
            assert trail(b.name)[-1] == "CustomerUnmerged", trail(b.name)

        check("a lead is qualified and converted into a customer with a contact", lead_to_customer)
        check("follow-ups are recorded and listed newest first", follow_ups)
        check("a previewed behaviour rule tags the customer through the scheduler", preview_then_rule_tags)
        check("ListTagRules shows the rules in force to reps, managers and admins", tag_rules_are_listed_to_every_role)
        check("UpdateLead, AssignLead (not by reps) and ReleaseLead over gRPC; each write one version",
              leads_updated_assigned_and_released)
        check("查重 finds the customer by phone and normalised company name", dedupe_finds_it)
        check("the history shows every change with its actor", history_is_the_audit_trail)
        check("bad input is INVALID_ARGUMENT naming the field", bad_input_names_the_field)
        check("contacts, the public pool and its policy, and industries over gRPC", contacts_pool_policy_and_industries)
        check("a pool lead is claimed once; an unmerge brings the merged customer back",
              a_pool_lead_is_claimed_and_a_merge_undone)
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
