#!/usr/bin/python3
"""Admission under hostile or careless clients, against crmd on the embedded log (issue 28,
"Admission"): a call whose deadline cannot be met is refused with RESOURCE_EXHAUSTED before it is
decided, and a refusal writes nothing and holds nothing.

  - a flood of creates whose deadlines are far too short: those refused at admission are counted
    under crm_admission_refused_total{reason="deadline"}, none of them was written (each refused
    phone can be created afterwards), and once the flood is over every slot is free again;
  - the refusal counter keeps its three reasons whatever the load.
"""
import os
import re
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crm_testlib as t  # noqa: E402

import grpc  # noqa: E402

args = t.crmd_test_args()
work = t.work_dir("crm-abuse-admission-")
m = t.generate_protos(work, args.protoc, args.proto_root, args.google_protos)
KEY = "abuse-admission-key-0123456789abcdef0123"
MAX_INFLIGHT = 32
metrics_port = t.free_port()
crmd = t.Crmd(args.crmd, os.path.join(work, "data"), KEY, os.path.join(work, "crmd.log"),
              metrics_listen=f"127.0.0.1:{metrics_port}", extra_args=["--max-inflight", str(MAX_INFLIGHT)])
crmd.start_until_exit()
admin = [("authorization", "Bearer " + t.mint_token(KEY, "admin1", "admin"))]
CS = "crm.customers.v1.CustomerService"
create = t.unary(crmd.channel, CS, "CreateCustomer", m.svc.CreateCustomerRequest, m.svc.Customer)
get = t.unary(crmd.channel, CS, "GetCustomer", m.svc.GetCustomerRequest, m.svc.Customer)


def refused_by_reason():
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    return {r: float(v) for r, v in re.findall(r'^crm_admission_refused_total\{reason="([^"]*)"\} (\S+)$', body, re.M)}


def phone(i):
    return f"+86139{i:08d}"


def new_customer(i):
    return m.svc.CreateCustomerRequest(customer=m.svc.Customer(display_name=f"洪水客户 {i}", phone=phone(i)))


def short_deadline_flood():
    # Teach CreateCustomer's time first: a few creates with time enough.
    for i in range(20):
        create(new_customer(i), metadata=admin, timeout=10)
    before = refused_by_reason().get("deadline", 0)
    codes, refused = {}, []
    # 3,000 creates, 200 at a time, each with 2 ms to live: most cannot be decided, written and
    # answered in that time once a few are in flight.
    for start in range(1000, 4000, 200):
        futures = [(i, create.future(new_customer(i), metadata=admin, timeout=0.002))
                   for i in range(start, start + 200)]
        for i, f in futures:
            try:
                f.result()
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
                if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    refused.append(i)
                    assert "retry" in e.details(), e.details()
            codes[code] = codes.get(code, 0) + 1
    after = refused_by_reason()
    assert after.get("deadline", 0) > before, (codes, after)
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}, codes
    assert refused, codes
    # A refusal writes nothing: each refused phone is still free (a sample, to stay quick).
    sample = refused[:: max(1, len(refused) // 40)]
    for i in sample:
        create(new_customer(i), metadata=admin, timeout=10)
    # Every slot is free again: MAX_INFLIGHT reads at once are all served.
    req = m.svc.GetCustomerRequest(name="customers/0190f1c4-0000-7000-8000-000000000000")
    deadline = time.time() + 10
    while True:
        with ThreadPoolExecutor(MAX_INFLIGHT) as pool:
            got = list(pool.map(lambda _: t.code_of(lambda: get(req, metadata=admin, timeout=5)), range(MAX_INFLIGHT)))
        if all(c == grpc.StatusCode.NOT_FOUND for c in got) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert all(c == grpc.StatusCode.NOT_FOUND for c in got), got
    print(f"  flood: {codes}; {len(sample)} refused phones created afterwards", flush=True)


def bounded_reasons():
    assert set(refused_by_reason()) == {"inflight", "deadline", "shutting_down"}, refused_by_reason()


t.check("creates whose deadline cannot be met are refused, write nothing and hold nothing", short_deadline_flood)
t.check("refusals are counted under three reasons only", bounded_reasons)
sys.exit(t.summary())
