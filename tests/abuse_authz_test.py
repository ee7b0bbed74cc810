#!/usr/bin/python3
"""Authorization under hostile or careless tokens, against crmd on the embedded log. Each check
is what an outside tester found against an earlier build, and what the server must do instead:

  - the permission matrix, read from the compiled descriptors' `(crm.common.v1.access)` option:
    every method of every service, called with a token of each role, answers PERMISSION_DENIED
    (ErrorInfo ROLE_NOT_ADMITTED) exactly where the matrix has no mark, and never that where it
    has one;
  - the `service` role created ticket types, SLA policies, calendars and automation rules and
    migrated tickets, though only admins may: refused, and nothing written;
  - a manager's token without a team saw every team's analytics (gRPC and the dashboard), and
    tokens without a team matched everything of no team in the other services: each service is
    called with such a token and fails closed;
  - `import_id` was shared across users: another user's import with the same id skipped its rows
    and showed the first user's customer ids.
"""
import datetime
import json
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crm_testlib as t  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

args = t.crmd_test_args()
work = t.work_dir("crm-abuse-authz-")
m = t.generate_protos(work, args.protoc, args.proto_root, args.google_protos)
access_pb2 = __import__("crm.common.v1.access_pb2", fromlist=["access_pb2"])
KEY = "abuse-authz-key-0123456789abcdef0123456789"
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "tickets")

crmd = t.Crmd(args.crmd, os.path.join(work, "data"), KEY, os.path.join(work, "crmd.log"))
crmd.start_until_exit()

ROLES = ["rep", "manager", "admin", "service"]
USERS = {"rep": ("u1", "rep", "east"), "manager": ("m1", "manager", "east"), "admin": ("admin1", "admin", ""),
         "service": ("svc1", "service", ""), "teamless_manager": ("m9", "manager", ""),
         "teamless_rep": ("u9", "rep", ""), "rep2": ("u2", "rep", "east")}
TOKENS = {k: t.mint_token(KEY, *v) for k, v in USERS.items()}
MD = {k: [("authorization", "Bearer " + v)] for k, v in TOKENS.items()}
MODULES = [m.svc, m.opp, m.tasks, m.tickets, m.analytics]


def call(service, method, req, resp_cls, who):
    return t.unary(crmd.channel, service, method, type(req), resp_cls)(req, metadata=MD[who], timeout=10)


def denial(fn):
    """(code, ErrorInfo reason or "") of the RpcError `fn` raises; (OK, "") when it succeeds."""
    try:
        fn()
    except grpc.RpcError as e:
        reason = ""
        st = t.status_details(e, m.status)
        if st is not None:
            info = m.details.ErrorInfo()
            for d in st.details:
                if d.Is(info.DESCRIPTOR) and d.Unpack(info):
                    reason = info.reason
        return e.code(), reason
    return grpc.StatusCode.OK, ""


def gate_denied(fn):
    code, reason = denial(fn)
    return code == grpc.StatusCode.PERMISSION_DENIED and reason == "ROLE_NOT_ADMITTED"


def methods():
    """(service full name, method descriptor, request class, admitted role names) for every rpc."""
    spelling = {v.number: v.name[len("ROLE_"):].lower() for v in access_pb2.Role.DESCRIPTOR.values if v.number}
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                opts = method.GetOptions()
                assert opts.HasExtension(access_pb2.access), f"{method.full_name} has no access option"
                admitted = {spelling[r] for r in opts.Extensions[access_pb2.access].roles}
                yield service.full_name, method, getattr(module, method.input_type.name), admitted


def invoke(service, method, req_cls, who):
    """Calls `method` with an empty request as `who`, whatever its streaming shape."""
    path = f"/{service}/{method.name}"
    ser, de = req_cls.SerializeToString, (lambda b: b)
    md = MD[who]
    if method.client_streaming and method.server_streaming:
        return lambda: list(crmd.channel.stream_stream(path, ser, de)(iter([]), metadata=md, timeout=10))
    if method.server_streaming:
        return lambda: list(crmd.channel.unary_stream(path, ser, de)(req_cls(), metadata=md, timeout=10))
    return lambda: crmd.channel.unary_unary(path, ser, de)(req_cls(), metadata=md, timeout=10)


def every_method_answers_each_role_as_the_matrix_says():
    seen, wrong = 0, []
    for service, method, req_cls, admitted in methods():
        seen += 1
        assert admitted, f"{method.full_name} admits nobody"
        for role in ROLES:
            denied = gate_denied(invoke(service, method, req_cls, role))
            if denied == (role in admitted):
                wrong.append(f"{method.full_name} as {role}: {'refused' if denied else 'let through'}")
    assert seen >= 116, seen
    assert not wrong, "\n".join(wrong)


def service_role_defines_no_schema():
    tk, kt, kev = m.tasks, m.tickets, m.ticket_evs
    with open(os.path.join(EXAMPLES, "repair.json")) as f:
        definition = json_format.ParseDict(json.load(f), kev.TicketTypeDefinition())
    with open(os.path.join(EXAMPLES, "office-hours.json")) as f:
        calendar = json_format.ParseDict(json.load(f), kev.BusinessCalendar())
    TT, SLA = "crm.tickets.v1.TicketTypeService", "crm.tickets.v1.SlaService"
    attempts = [
        (TT, "CreateTicketType", kt.CreateTicketTypeRequest(ticket_type_id="svc_type", definition=definition),
         kt.TicketType),
        (SLA, "SetCalendar", kt.SetCalendarRequest(calendar=kt.Calendar(name="calendars/svc_cal", display_name="接口日历",
                                                                       calendar=calendar)), kt.Calendar),
        (SLA, "SetSlaPolicy", kt.SetSlaPolicyRequest(policy=kev.SlaPolicy(type_id="repair", resolution_minutes=1)),
         kt.SlaPolicyResource),
        (TT, "MigrateTickets", kt.MigrateTicketsRequest(name="ticketTypes/repair", from_version=1),
         kt.MigrateTicketsResponse),
        (TT, "ArchiveTicketType", kt.ArchiveTicketTypeRequest(name="ticketTypes/repair", reason="接口下线"), kt.TicketType),
    ]
    rules = call("crm.tasks.v1.AutomationService", "ListRules", tk.ListRulesRequest(page_size=100), tk.ListRulesResponse,
                 "admin").rules
    assert rules, "no default rules to copy"
    attempts.append(("crm.tasks.v1.AutomationService", "CreateRule",
                     tk.CreateRuleRequest(rule=tk.Rule(definition=rules[0].definition)), tk.Rule))
    for service, method, req, resp in attempts:
        assert gate_denied(lambda: call(service, method, req, resp, "service")), f"service may {method}"
    # The same requests are good ones: an admin's go through.
    call(TT, "CreateTicketType", attempts[0][2], kt.TicketType, "admin")
    call(SLA, "SetCalendar", attempts[1][2], kt.Calendar, "admin")
    types = call(TT, "ListTicketTypes", kt.ListTicketTypesRequest(), kt.ListTicketTypesResponse, "admin").ticket_types
    assert [x.name for x in types] == ["ticketTypes/svc_type"], types
    after = call("crm.tasks.v1.AutomationService", "ListRules", tk.ListRulesRequest(page_size=100),
                 tk.ListRulesResponse, "admin").rules
    assert len(after) == len(rules), (len(after), len(rules))


# ---- tokens without a team, service by service ----

CS, LS = "crm.customers.v1.CustomerService", "crm.customers.v1.LeadService"
KS, TS, TKS = "crm.opportunities.v1.ContractService", "crm.tasks.v1.TaskService", "crm.tickets.v1.TicketService"
NS = "crm.analytics.v1.AnalyticsService"
state = {}


def customer(owner, who="admin", name="无团队客户"):
    return call(CS, "CreateCustomer", m.svc.CreateCustomerRequest(customer=m.svc.Customer(
        display_name=name, owner_id=owner)), m.svc.Customer, who)


def customers_fail_closed():
    c = customer("u9")
    assert c.team_id == "" and c.owner_id == "u9", c
    state["customer"] = c
    assert denial(lambda: call(CS, "GetCustomer", m.svc.GetCustomerRequest(name=c.name), m.svc.Customer,
                               "teamless_manager"))[0] == grpc.StatusCode.PERMISSION_DENIED
    listed = call(CS, "ListCustomers", m.svc.ListCustomersRequest(), m.svc.ListCustomersResponse, "teamless_manager")
    assert not listed.customers, listed
    # A customer of no team handed to someone else by a manager of no team.
    assert denial(lambda: customer("u9", "teamless_manager"))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert call(CS, "GetCustomer", m.svc.GetCustomerRequest(name=c.name), m.svc.Customer, "teamless_rep").name == c.name


def leads_fail_closed():
    lead = m.svc.Lead(contact_name="王经理", company="深圳云帆贸易有限公司", phone="13911112222", need="收银系统")
    assert denial(lambda: call(LS, "CreateLead", m.svc.CreateLeadRequest(lead=lead), m.svc.Lead,
                               "teamless_manager"))[0] == grpc.StatusCode.PERMISSION_DENIED
    made = call(LS, "CreateLead", m.svc.CreateLeadRequest(lead=lead), m.svc.Lead, "admin")
    assert made.in_pool and made.team_id == "", made
    assert denial(lambda: call(LS, "GetLead", m.svc.GetLeadRequest(name=made.name), m.svc.Lead,
                               "teamless_manager"))[0] == grpc.StatusCode.PERMISSION_DENIED


def contracts_fail_closed():
    opp, oevs = m.opp, m.opp_evs
    c = state["customer"]
    k = call(KS, "CreateContract", opp.CreateContractRequest(contract=opp.Contract(
        customer=c.name, title="年度服务合同", amount=oevs.Money(amount_minor=1200000), start_date="2026-01-01",
        end_date="2026-12-31"), min_consistency_token=c.consistency_token), opp.Contract, "teamless_rep")
    k = call(KS, "SubmitContract", opp.SubmitContractRequest(name=k.name), opp.Contract, "teamless_rep")
    assert k.status == oevs.CONTRACT_STATUS_PENDING_APPROVAL and k.team_id == "", k
    approve = opp.ApproveContractRequest(name=k.name, comment="同意")
    assert denial(lambda: call(KS, "ApproveContract", approve, opp.Contract, "teamless_manager"))[0] == \
        grpc.StatusCode.PERMISSION_DENIED
    assert call(KS, "ApproveContract", approve, opp.Contract, "admin").status == oevs.CONTRACT_STATUS_ACTIVE


def next_hour():
    now = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return now + datetime.timedelta(hours=2)


def task(who, **fields):
    tk = m.tasks
    x = tk.Task(title="回访", **fields)
    x.due_time.FromDatetime(next_hour())
    return call(TS, "CreateTask", tk.CreateTaskRequest(task=x), tk.Task, who)


def tasks_fail_closed():
    tk = m.tasks
    mine = task("admin", assignee_id="m9")
    assert mine.team_id == "", mine
    assert denial(lambda: call(TS, "GetTask", tk.GetTaskRequest(name=mine.name), tk.Task, "teamless_manager"))[0] == \
        grpc.StatusCode.PERMISSION_DENIED
    queued = task("admin", assignee_role="rep")
    assert denial(lambda: call(TS, "GetTask", tk.GetTaskRequest(name=queued.name), tk.Task, "teamless_rep"))[0] == \
        grpc.StatusCode.PERMISSION_DENIED
    assert denial(lambda: call(TS, "CompleteTask", tk.CompleteTaskRequest(name=queued.name), tk.Task,
                               "teamless_rep"))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert denial(lambda: task("teamless_manager", assignee_id="u9"))[0] == grpc.StatusCode.PERMISSION_DENIED
    # The rep of a team still takes their team's queue.
    east = task("admin", assignee_role="rep", team_id="east")
    assert call(TS, "CompleteTask", tk.CompleteTaskRequest(name=east.name), tk.Task, "rep").status == \
        m.task_evs.TASK_STATUS_DONE


def tickets_fail_closed():
    kt, kev = m.tickets, m.ticket_evs
    with open(os.path.join(EXAMPLES, "repair.json")) as f:
        definition = json_format.ParseDict(json.load(f), kev.TicketTypeDefinition())
    call("crm.tickets.v1.TicketTypeService", "CreateTicketType",
         kt.CreateTicketTypeRequest(ticket_type_id="repair", definition=definition), kt.TicketType, "admin")

    def ticket(who, assignee=""):
        x = kt.Ticket(ticket_type="ticketTypes/repair", title="笔记本无法开机", assignee_id=assignee)
        for k, v in {"serial": kev.FieldValue(text="AB123456"), "description": kev.FieldValue(text="屏幕不亮，无法开机"),
                     "kind": kev.FieldValue(choice="hardware")}.items():
            x.values[k].CopyFrom(v)
        return call(TKS, "CreateTicket", kt.CreateTicketRequest(ticket=x), kt.Ticket, who)
    theirs = ticket("admin", "m9")
    assert theirs.team_id == "", theirs
    assert denial(lambda: call(TKS, "GetTicket", kt.GetTicketRequest(name=theirs.name), kt.Ticket,
                               "teamless_manager"))[0] == grpc.StatusCode.PERMISSION_DENIED
    listed = call(TKS, "ListTickets", kt.ListTicketsRequest(), kt.ListTicketsResponse, "teamless_manager")
    assert not listed.tickets, listed
    assert denial(lambda: ticket("teamless_manager"))[0] == grpc.StatusCode.PERMISSION_DENIED


def analytics_fail_closed():
    an = m.analytics
    req = an.GetFunnelReportRequest()
    req.start_time.FromDatetime(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
    req.end_time.FromDatetime(datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))
    for scope in (an.REPORT_SCOPE_UNSPECIFIED, an.REPORT_SCOPE_TEAM, an.REPORT_SCOPE_OWN):
        req.scope = scope
        assert denial(lambda: call(NS, "GetFunnelReport", req, an.FunnelReport, "teamless_manager"))[0] == \
            grpc.StatusCode.PERMISSION_DENIED, scope
    req.scope = an.REPORT_SCOPE_UNSPECIFIED
    call(NS, "GetFunnelReport", req, an.FunnelReport, "manager")
    call(NS, "GetFunnelReport", req, an.FunnelReport, "teamless_rep")  # their own figures

    def http(who, report="funnel"):
        url = f"http://127.0.0.1:{crmd.dashboard_port}/api/v1/reports/{report}?from=2020-01-01&to=2030-01-01"
        request = urllib.request.Request(url, headers={"Authorization": "Bearer " + TOKENS[who]})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
    for report in ("funnel", "team", "receivables"):
        status, body = http("teamless_manager", report)
        assert status == 403, (report, status, body)
        assert http("manager", report)[0] == 200, report


def import_ids_belong_to_one_user():
    svc = m.svc

    def run(who, rows):
        reqs = [svc.ImportCustomersRequest(options=svc.ImportOptions(columns=["客户名称", "手机"], import_id="weekly"))]
        reqs.append(svc.ImportCustomersRequest(rows=[svc.ImportRow(row_number=i + 2, cells=r) for i, r in enumerate(rows)]))
        stream = crmd.channel.stream_stream(f"/{CS}/ImportCustomers", svc.ImportCustomersRequest.SerializeToString,
                                            svc.ImportCustomersResponse.FromString)
        return [r for resp in stream(iter(reqs), metadata=MD[who], timeout=20) for r in resp.results]
    first = run("rep", [["甲公司", "13800000001"], ["乙公司", "13800000002"]])
    assert [r.outcome for r in first] == [svc.IMPORT_OUTCOME_CREATED] * 2, first
    other = run("rep2", [["丙公司", "13800000003"], ["丁公司", "13800000004"]])
    assert [r.outcome for r in other] == [svc.IMPORT_OUTCOME_CREATED] * 2, other
    assert not {r.customer for r in other} & {r.customer for r in first}, (first, other)
    again = run("rep", [["甲公司", "13800000001"], ["乙公司", "13800000002"]])
    assert [r.customer for r in again] == [r.customer for r in first], again
    assert all(r.message == "already imported under this import_id" for r in again), again


t.check("every method answers each role as the matrix says", every_method_answers_each_role_as_the_matrix_says)
t.check("the service role defines no schema", service_role_defines_no_schema)
t.check("customers fail closed for tokens without a team", customers_fail_closed)
t.check("leads fail closed for tokens without a team", leads_fail_closed)
t.check("contracts fail closed for tokens without a team", contracts_fail_closed)
t.check("tasks fail closed for tokens without a team", tasks_fail_closed)
t.check("tickets fail closed for tokens without a team", tickets_fail_closed)
t.check("analytics fail closed for tokens without a team (gRPC and dashboard)", analytics_fail_closed)
t.check("an import_id belongs to one user", import_ids_belong_to_one_user)
sys.exit(t.summary())
