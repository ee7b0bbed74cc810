#!/usr/bin/python3
"""ListCustomers and ListLeads page latency against a running crmd: for each query (order,
filter, role), the first page and the page after it, `--calls` times each; prints the median
and p90 in milliseconds with the page's size, total_size and whether a next page was offered.
With --create-leads N it first creates N leads over gRPC (rep0-rep49 own four in five, the
rest go to the lead pool).

Not a ctest: a measurement for docs/benchmarks.md, run against a large store, e.g.

  crm-bench --workload rebuild --events 1000000 --log-dir /var/tmp/r1m
  CRM_SIGNING_KEY=... crmd --data-dir /var/tmp/r1m --listen 127.0.0.1:50777 &
  CRM_SIGNING_KEY=... tests/list_latency.py --addr 127.0.0.1:50777
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import generate_protos, mint_token, unary, wait_healthy  # noqa: E402

LEAD_QUERIES = [  # label, role, user, team, filter
    ("leads: admin", "admin", "a1", "", ""),
    ("leads: admin, in_pool = true", "admin", "a1", "", "in_pool = true"),
    ("leads: admin, owner_id = rep7", "admin", "a1", "", 'owner_id = "rep7"'),
    ("leads: admin, status = LEAD_STATUS_OPEN (all)", "admin", "a1", "", "status = LEAD_STATUS_OPEN"),
    ("leads: admin, status = LEAD_STATUS_CONVERTED (none)", "admin", "a1", "", "status = LEAD_STATUS_CONVERTED"),
    ("leads: rep7 (team2)", "rep", "rep7", "team2", ""),
]

QUERIES = [  # label, role, user, team, order_by, filter
    ("admin, create_time", "admin", "a1", "", "", ""),
    ("admin, display_name desc", "admin", "a1", "", "display_name desc", ""),
    ("admin, customer_number", "admin", "a1", "", "customer_number", ""),
    ("admin, update_time desc", "admin", "a1", "", "update_time desc", ""),
    ("admin, owner_id = rep7", "admin", "a1", "", "", 'owner_id = "rep7"'),
    ("admin, team_id = team3", "admin", "a1", "", "display_name", 'team_id = "team3"'),
    ("admin, lifecycle_status (every customer)", "admin", "a1", "", "",
     "lifecycle_status = LIFECYCLE_STATUS_POTENTIAL"),
    ("admin, tags:vip (no customer)", "admin", "a1", "", "", 'tags:"vip"'),
    ("manager of team3", "manager", "m1", "team3", "", ""),
    ("rep7 (team2)", "rep", "rep7", "team2", "update_time desc", ""),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--protoc", default="/usr/bin/protoc")
    ap.add_argument("--proto-root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto"))
    ap.add_argument("--google-protos", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                            "third_party", "google-proto-files", "node_modules",
                                                            "google-proto-files"))
    ap.add_argument("--calls", type=int, default=21)
    ap.add_argument("--page-size", type=int, default=20)
    ap.add_argument("--create-leads", type=int, default=0, help="create this many leads first")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="crm-list-latency-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    channel = wait_healthy(args.addr, 30)
    list_customers = unary(channel, "crm.customers.v1.CustomerService", "ListCustomers",
                           m.svc.ListCustomersRequest, m.svc.ListCustomersResponse)
    key = os.environ.get("CRM_SIGNING_KEY")
    if not key:
        sys.exit("list_latency.py: set CRM_SIGNING_KEY to crmd's signing key")
    if args.create_leads:
        create_leads(m, channel, key, args.create_leads)
    list_leads = unary(channel, "crm.customers.v1.LeadService", "ListLeads",
                       m.svc.ListLeadsRequest, m.svc.ListLeadsResponse)
    print(f"{'query':52} {'page':>5} {'p50 ms':>8} {'p90 ms':>8} {'rows':>5} {'total':>8} next")
    for label, role, user, team, order_by, filt in QUERIES:
        time_pages(label, key, role, user, team, args, list_customers, "customers",
                   lambda tok: m.svc.ListCustomersRequest(page_size=args.page_size, order_by=order_by, filter=filt,
                                                          page_token=tok))
    for label, role, user, team, filt in LEAD_QUERIES:
        time_pages(label, key, role, user, team, args, list_leads, "leads",
                   lambda tok: m.svc.ListLeadsRequest(page_size=args.page_size, filter=filt, page_token=tok))


def time_pages(label, key, role, user, team, args, rpc, field, make):
    md = [("authorization", "Bearer " + mint_token(key, user, role, team))]
    page_token = ""
    for page in (1, 2):
        req = make(page_token)
        times = []
        resp = None
        for _ in range(args.calls):
            t0 = time.perf_counter()
            resp = rpc(req, metadata=md, timeout=60)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        print(f"{label:52} {page:>5} {statistics.median(times):8.2f} {p90:8.2f} {len(getattr(resp, field)):>5} "
              f"{resp.total_size:>8} {'yes' if resp.next_page_token else 'no'}")
        if not resp.next_page_token:
            break
        page_token = resp.next_page_token


def create_leads(m, channel, key, n):
    create = unary(channel, "crm.customers.v1.LeadService", "CreateLead", m.svc.CreateLeadRequest, m.svc.Lead)
    base = int(time.time()) % 100000 * 10000
    futures, t0 = [], time.perf_counter()
    for i in range(n):
        owner = i % 5 != 4
        user, role, team = (f"rep{i % 50}", "rep", f"team{i % 5}") if owner else ("market", "service", "")
        md = [("authorization", "Bearer " + mint_token(key, user, role, team))]
        lead = m.svc.Lead(contact_name=f"联系人 {i}", company=f"线索公司 {i}", phone=f"15{(base + i) % 10**9:09d}",
                          source_channel="SOURCE_CHANNEL_WEBSITE")
        futures.append(create.future(m.svc.CreateLeadRequest(lead=lead), metadata=md, timeout=60))
        if len(futures) >= 64:
            for f in futures:
                f.result()
            futures = []
    for f in futures:
        f.result()
    print(f"created {n} leads in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
