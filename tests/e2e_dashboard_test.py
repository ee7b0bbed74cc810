"""The analytics reports and the web dashboard end to end against crmd on the embedded log: a
seeded sale (channel cost, a lead converted, follow-ups, a deal won and one lost, a contract
with a plan and a payment, a churned customer) written over gRPC; every report read back with
min_consistency_token (read-your-writes); the dashboard opened in Debian's headless Chromium,
its numbers checked against the API's, a screenshot saved; the JSON/CSV HTTP API's errors.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf).
"""
import argparse
import datetime
import html.parser
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import Crmd, check, code_of, generate_protos, mint_token, summary, unary, work_dir  # noqa: E402

CST = datetime.timezone(datetime.timedelta(hours=8))


def money(minor):
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    a = abs(minor)
    return f"{sign}¥{a // 100:,}.{a % 100:02d}"


def pct(x):
    return f"{x:.1f}%"


class Kpis(html.parser.HTMLParser):
    """The data-kpi elements of a page and their text; the body's data-state; table cells."""

    def __init__(self):
        super().__init__()
        self.kpi, self.state, self.cells, self._at, self._cell = {}, None, [], None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.state = a.get("data-state")
        if "data-kpi" in a:
            self._at = a["data-kpi"]
            self.kpi[self._at] = ""
        self._cell = tag == "td"

    def handle_endtag(self, tag):
        self._at = None
        self._cell = False

    def handle_data(self, data):
        if self._at:
            self.kpi[self._at] += data
        if self._cell:
            self.cells.append(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crmd", required=True)
    ap.add_argument("--crmctl", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--google-protos", required=True)
    ap.add_argument("--artifacts", required=True, help="where the screenshot goes")
    args = ap.parse_args()
    work = work_dir("crm-e2e-dashboard-")
    os.makedirs(args.artifacts, exist_ok=True)
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc  # noqa: E402
    svc, evs, opp, oevs, an = m.svc, m.evs, m.opp, m.opp_evs, m.analytics

    key = "d" * 48
    crmd = Crmd(args.crmd, os.path.join(work, "data"), key, os.path.join(work, "crmd.log"))
    tokens = {"rep": mint_token(key, "u1", "rep", "east"), "rep2": mint_token(key, "u2", "rep", "east"),
              "manager": mint_token(key, "m1", "manager", "east"), "admin": mint_token(key, "boss", "admin")}
    md = {k: [("authorization", "Bearer " + v)] for k, v in tokens.items()}

    def call(service, method, req, resp_cls, who="rep"):
        return unary(crmd.channel, service, method, type(req), resp_cls)(req, metadata=md[who], timeout=20)

    def report(method, req, resp_cls, who="admin"):
        return call("crm.analytics.v1.AnalyticsService", method, req, resp_cls, who)

    now = datetime.datetime.now(CST)
    first = (now - datetime.timedelta(days=40)).strftime("%Y-%m-%d")
    last = (now + datetime.timedelta(days=2)).strftime("%Y-%m-%d")
    start = datetime.datetime.strptime(first, "%Y-%m-%d").replace(tzinfo=CST)
    end = datetime.datetime.strptime(last, "%Y-%m-%d").replace(tzinfo=CST)
    state = {}

    def ranged(cls, **kw):
        req = cls(**kw)
        req.start_time.FromDatetime(start.astimezone(datetime.timezone.utc))
        req.end_time.FromDatetime(end.astimezone(datetime.timezone.utc))
        return req

    with crmd:
        def a_month_of_sales_is_written_over_grpc():
            cs = lambda meth, req, resp, who="rep": call("crm.customers.v1.CustomerService", meth, req, resp, who)  # noqa
            ls = lambda meth, req, resp, who="rep": call("crm.customers.v1.LeadService", meth, req, resp, who)  # noqa
            os_ = lambda meth, req, resp, who="rep": call("crm.opportunities.v1.OpportunityService", meth, req, resp, who)  # noqa
            ks = lambda meth, req, resp, who="rep": call("crm.opportunities.v1.ContractService", meth, req, resp, who)  # noqa
            cs("SetChannelCost", svc.SetChannelCostRequest(cost=evs.ChannelCost(
                source_channel=evs.SOURCE_CHANNEL_WEBSITE, month=now.strftime("%Y-%m"), amount_minor=90000)),
               evs.ChannelCost, "admin")
            # The exhibition's cost through crmctl, as an operator records it.
            ctl = [args.crmctl, "--addr", crmd.addr]
            out = subprocess.run(ctl + ["--token", tokens["admin"], "channel-costs", "set", "--channel", "exhibition",
                                        "--month", now.strftime("%Y-%m"), "--amount", "500.00", "--note", "广交会展位"],
                                 capture_output=True, text=True)
            assert out.returncode == 0, out
            out = subprocess.run(ctl + ["--token", tokens["rep"], "channel-costs", "set", "--channel", "exhibition",
                                        "--month", now.strftime("%Y-%m"), "--amount", "1.00"], capture_output=True, text=True)
            assert out.returncode == 1 and "PERMISSION_DENIED" in out.stderr, out
            out = subprocess.run(ctl + ["--token", tokens["admin"], "channel-costs", "set", "--channel", "exhibition",
                                        "--month", "2026-3", "--amount", "1.00"], capture_output=True, text=True)
            assert out.returncode == 1 and "cost.month" in out.stderr, out
            out = subprocess.run(ctl + ["--token", tokens["manager"], "-o", "json", "channel-costs", "list"],
                                 capture_output=True, text=True)
            assert out.returncode == 0 and len(json.loads(out.stdout)["costs"]) == 2, out
            lead = ls("CreateLead", svc.CreateLeadRequest(lead=svc.Lead(
                contact_name="王经理", company="深圳智造科技", phone="13800001111", region="广东/深圳",
                source_channel=evs.SOURCE_CHANNEL_WEBSITE)), svc.Lead)
            ls("CreateLead", svc.CreateLeadRequest(lead=svc.Lead(
                contact_name="李总", company="展会线索公司", phone="13800002222",
                source_channel=evs.SOURCE_CHANNEL_EXHIBITION)), svc.Lead)
            c1 = ls("ConvertLead", svc.ConvertLeadRequest(name=lead.name), svc.ConvertLeadResponse).customer
            c2 = cs("CreateCustomer", svc.CreateCustomerRequest(customer=svc.Customer(
                display_name="上海申城贸易有限公司", phone="13900003333", region="上海",
                source_channel=evs.SOURCE_CHANNEL_REFERRAL)), svc.Customer, "rep2")
            cs("CreateFollowUp", svc.CreateFollowUpRequest(parent=c1.name, follow_up=svc.FollowUp(
                summary="电话沟通需求", channel=evs.FOLLOW_UP_CHANNEL_PHONE)), svc.FollowUp)
            o1 = os_("CreateOpportunity", opp.CreateOpportunityRequest(opportunity=opp.Opportunity(
                customer=c1.name, title="智能仓储", amount=oevs.Money(amount_minor=100000)),
                min_consistency_token=c1.consistency_token), opp.Opportunity)
            os_("WinOpportunity", opp.WinOpportunityRequest(name=o1.name, reason="方案最优"), opp.Opportunity)
            o2 = os_("CreateOpportunity", opp.CreateOpportunityRequest(opportunity=opp.Opportunity(
                customer=c2.name, title="年度采购", amount=oevs.Money(amount_minor=50000)),
                min_consistency_token=c2.consistency_token), opp.Opportunity, "rep2")
            os_("LoseOpportunity", opp.LoseOpportunityRequest(name=o2.name, reason="价格"), opp.Opportunity, "rep2")
            k = ks("CreateContract", opp.CreateContractRequest(contract=opp.Contract(
                customer=c1.name, title="年度服务合同", amount=oevs.Money(amount_minor=100000),
                start_date=now.strftime("%Y-%m-%d"), end_date=(now + datetime.timedelta(days=365)).strftime("%Y-%m-%d"))),
                opp.Contract)
            k = ks("SubmitContract", opp.SubmitContractRequest(name=k.name), opp.Contract)
            if k.status == oevs.CONTRACT_STATUS_PENDING_APPROVAL:
                ks("ApproveContract", opp.ApproveContractRequest(name=k.name, comment="同意"), opp.Contract, "manager")
            ks("SetPaymentPlan", opp.SetPaymentPlanRequest(name=k.name, instalments=[
                oevs.Instalment(due_date=now.strftime("%Y-%m-%d"), amount_minor=60000),
                oevs.Instalment(due_date=(now + datetime.timedelta(days=60)).strftime("%Y-%m-%d"),
                                amount_minor=40000)]), opp.Contract)
            pay = oevs.PaymentRecorded(amount_minor=30000, method="银行转账")
            pay.paid_at.FromDatetime(datetime.datetime.now(datetime.timezone.utc))
            k = ks("RecordPayment", opp.RecordPaymentRequest(name=k.name, payment=pay), opp.Contract)
            state["sales_token"] = k.consistency_token
            lost = cs("UpdateCustomer", svc.UpdateCustomerRequest(customer=svc.Customer(
                name=c2.name, lifecycle_status=evs.LIFECYCLE_STATUS_LOST, churn_reason="价格太高"),
                update_mask={"paths": ["lifecycle_status", "churn_reason"]}), svc.Customer, "rep2")
            state["customers_token"] = lost.consistency_token

        def every_report_reads_its_writes_with_min_consistency_token():
            # Asked at once after the writes: the token makes analytics wait for them.
            r = report("GetReceivablesReport", ranged(an.GetReceivablesReportRequest, group_by=an.GROUP_BY_MONTH,
                       min_consistency_token=state["sales_token"]), an.ReceivablesReport)
            assert r.collected_minor == 30000 and r.payments == 1, r
            assert r.planned_minor == 60000, r  # the second instalment is due after the range
            c = report("GetChurnReport", ranged(an.GetChurnReportRequest, min_consistency_token=state["customers_token"]),
                       an.ChurnReport)
            assert c.churned == 1 and c.by_reason[0].reason == "价格太高" and c.new_customers == 2, c
            bad = ranged(an.GetChurnReportRequest, min_consistency_token="not-a-token")
            assert code_of(lambda: report("GetChurnReport", bad, an.ChurnReport)) == grpc.StatusCode.INVALID_ARGUMENT
            reports = {}
            for name, method, req_cls, resp_cls in (
                    ("funnel", "GetFunnelReport", an.GetFunnelReportRequest, an.FunnelReport),
                    ("channels", "GetChannelsReport", an.GetChannelsReportRequest, an.ChannelsReport),
                    ("team", "GetTeamReport", an.GetTeamReportRequest, an.TeamReport),
                    ("value", "GetCustomerValueReport", an.GetCustomerValueReportRequest, an.CustomerValueReport),
                    ("churn", "GetChurnReport", an.GetChurnReportRequest, an.ChurnReport),
                    ("tickets", "GetTicketsReport", an.GetTicketsReportRequest, an.TicketsReport),
                    ("receivables", "GetReceivablesReport", an.GetReceivablesReportRequest, an.ReceivablesReport)):
                reports[name] = report(method, ranged(req_cls, group_by=an.GROUP_BY_WEEK), resp_cls)
            state["reports"] = reports
            ch = {x.channel: x for x in reports["channels"].channels}
            assert ch["WEBSITE"].leads == 1 and ch["WEBSITE"].leads_converted == 1, ch
            assert ch["WEBSITE"].customers == 1 and ch["WEBSITE"].customers_won == 1, ch
            assert ch["WEBSITE"].cost_minor == 90000 and ch["WEBSITE"].cost_per_customer_minor == 90000, ch
            assert ch["EXHIBITION"].leads == 1 and ch["REFERRAL"].customers == 1, ch
            assert ch["EXHIBITION"].cost_minor == 50000 and ch["EXHIBITION"].cost_per_lead_minor == 50000, ch
            # Spend is what ListChannelCosts lists, which reps may not call: their report has no cost.
            rep_ch = report("GetChannelsReport", ranged(an.GetChannelsReportRequest), an.ChannelsReport, who="rep")
            assert rep_ch.channels and all(x.cost_minor == 0 and x.cost_per_lead_minor == 0 and
                                           x.cost_per_customer_minor == 0 for x in rep_ch.channels), rep_ch
            t = reports["team"]
            reps = {x.owner_id: x for x in t.reps}
            assert reps["u1"].deals_won == 1 and reps["u1"].follow_ups == 1 and reps["u1"].collected_minor == 30000, reps
            assert reps["u2"].deals_lost == 1 and t.total.win_rate_percent == 50, t
            v = reports["value"]
            assert v.customers == 2 and v.paying_customers == 1 and v.high_value[0].monetary_minor == 30000, v
            assert v.high_value[0].segment == "重要价值客户", v.high_value[0]
            f = reports["funnel"]
            assert f.opportunities == 2 and f.won == 1 and f.lost == 1, f

        def scope_follows_the_role():
            req = ranged(an.GetTeamReportRequest)
            own = report("GetTeamReport", req, an.TeamReport, "rep2")
            assert [x.owner_id for x in own.reps] == ["u2"] and own.scope == an.REPORT_SCOPE_OWN, own
            req.scope = an.REPORT_SCOPE_ALL
            assert code_of(lambda: report("GetTeamReport", req, an.TeamReport, "rep")) == \
                grpc.StatusCode.PERMISSION_DENIED

        dash = f"http://127.0.0.1:{crmd.dashboard_port}"

        def chromium(url, *flags):
            out = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                  "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=20000",
                                  "--window-size=1400,2600", *flags, url],
                                 capture_output=True, timeout=120)
            assert out.returncode == 0, out.stderr.decode()[-2000:]
            return out.stdout.decode("utf-8")

        def view(who):
            return (f"{dash}/#token={tokens[who]}&from={first}&to={last}&group_by=week")

        def the_dashboard_in_chromium_shows_the_apis_numbers():
            page = Kpis()
            page.feed(chromium(view("admin"), "--dump-dom"))
            assert page.state == "ready", (page.state, page.kpi)
            r = state["reports"]
            f, ch, t, v, c, tk, rc = (r["funnel"], r["channels"], r["team"], r["value"], r["churn"], r["tickets"],
                                      r["receivables"])
            want = {
                "funnel.opportunities": str(f.opportunities), "funnel.won": str(f.won), "funnel.lost": str(f.lost),
                "funnel.win_rate": pct(f.win_rate_percent),
                "channels.leads": str(sum(x.leads for x in ch.channels)),
                "channels.customers": str(sum(x.customers for x in ch.channels)),
                "channels.deals_won": str(sum(x.deals_won for x in ch.channels)),
                "channels.cost": money(sum(x.cost_minor for x in ch.channels)),
                "team.follow_ups": str(t.total.follow_ups), "team.tasks_done": str(t.total.tasks_done),
                "team.deals_won": str(t.total.deals_won), "team.win_rate": pct(t.total.win_rate_percent),
                "team.collected": money(t.total.collected_minor),
                "value.customers": str(v.customers), "value.paying_customers": str(v.paying_customers),
                "value.collected": money(v.collected_minor),
                "churn.churned": str(c.churned), "churn.new_customers": str(c.new_customers),
                "tickets.opened": str(tk.opened), "tickets.closed": str(tk.closed),
                "tickets.compliance": pct(tk.resolution_compliance_percent),
                "receivables.planned": money(rc.planned_minor), "receivables.collected": money(rc.collected_minor),
                "receivables.collection": pct(rc.collection_percent),
            }
            for k, w in want.items():
                assert page.kpi.get(k) == w, (k, page.kpi.get(k), w)
            # Spot values of the seeded month, as a reader sees them.
            assert page.kpi["team.collected"] == "¥300.00" and page.kpi["channels.cost"] == "¥1,400.00", page.kpi
            assert "上海申城贸易有限公司" not in page.cells and "深圳智造科技" in "".join(page.cells), page.cells
            assert "价格太高" in page.cells and "重要价值客户" in page.cells, page.cells

        def a_rep_sees_only_their_own_figures():
            page = Kpis()
            page.feed(chromium(view("rep2"), "--dump-dom"))
            assert page.state == "ready", page.kpi
            assert page.kpi["team.deals_won"] == "0" and page.kpi["funnel.lost"] == "1", page.kpi
            assert page.kpi["receivables.collected"] == "¥0.00", page.kpi

        def a_screenshot_is_saved():
            shot = os.path.join(args.artifacts, "dashboard.png")
            if os.path.exists(shot):
                os.remove(shot)
            chromium(view("admin"), f"--screenshot={shot}")
            with open(shot, "rb") as fh:
                png = fh.read()
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50000, len(png)
            print(f"  screenshot: {shot} ({len(png)} bytes)")

        def the_http_api_names_its_errors():
            def get(path, who="admin"):
                req = urllib.request.Request(dash + path)
                if who:
                    req.add_header("Authorization", "Bearer " + tokens[who])
                try:
                    with urllib.request.urlopen(req, timeout=20) as r:
                        return r.status, r.headers, r.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.headers, e.read()
            q = f"from={first}&to={last}"
            status, _, body = get(f"/api/v1/reports/team?{q}", who=None)
            assert status == 401 and json.loads(body)["code"] == "UNAUTHENTICATED", body
            status, _, body = get("/api/v1/reports/team?from=2026-13-01&to=" + last)
            assert status == 400 and json.loads(body)["field"] == "from", body
            status, _, body = get(f"/api/v1/reports/team?{q}&scope=all", who="rep")
            assert status == 403, body
            status, _, body = get(f"/api/v1/reports/nope?{q}")
            assert status == 404, body
            status, headers, body = get(f"/api/v1/reports/team.csv?{q}&table=reps")
            assert status == 200 and headers["Content-Type"].startswith("text/csv"), headers
            text = body.decode("utf-8")
            assert text.startswith("\ufeffowner_id,team_id,follow_ups"), text
            assert "u1,east,1,0,0,1,0,100.00,1000.00,300.00\r\n" in text, text
            status, _, body = get(f"/api/v1/reports/team?{q}&consistency_token=" + state["sales_token"])
            assert status == 200 and json.loads(body)["total"]["collected_minor"] == "30000", body

        check("a month of sales is written over gRPC", a_month_of_sales_is_written_over_grpc)
        check("every report reads its writes with min_consistency_token",
              every_report_reads_its_writes_with_min_consistency_token)
        check("scope follows the role", scope_follows_the_role)
        check("the dashboard in Chromium shows the API's numbers", the_dashboard_in_chromium_shows_the_apis_numbers)
        check("a rep sees only their own figures", a_rep_sees_only_their_own_figures)
        check("a screenshot is saved", a_screenshot_is_saved)
        check("the HTTP API names its errors", the_http_api_names_its_errors)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
