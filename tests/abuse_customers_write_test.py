"""The customers write path under hostile or buggy callers, against crmd on the embedded log
through gRPC from Python: concurrent first attempts of one request, one phone taken by many at
once, a request id reused for another resource. Every answer is the first result or a refusal
naming why, and the log holds each change once.

- 16 concurrent CreateCustomer / CreateLead with one request_id: one record; every other answer
  is that record or ABORTED ("in progress", retryable);
- 16 concurrent CreateCustomer of one phone under different request ids: one customer, the rest
  ALREADY_EXISTS with ErrorInfo DUPLICATE_PHONE naming it and field customer.phone;
- an UpdateCustomer whose request_id created another customer: INVALID_ARGUMENT on
  request_id, nothing written.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf); under 60 s.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import (Crmd, caller, check, crmd_test_args, generate_protos, mint_token, status_details,  # noqa: E402
                         summary, work_dir)

CONCURRENT = 16


def main():
    args = crmd_test_args()
    work = work_dir("crm-abuse-customers-write-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc  # noqa: E402
    svc = m.svc

    key = "a" * 48
    crmd = Crmd(args.crmd, os.path.join(work, "data"), key, os.path.join(work, "crmd.log"))
    rep = [("authorization", "Bearer " + mint_token(key, "u1", "rep", "east"))]
    call = caller(lambda: crmd.channel, rep)

    def race(fn, n=CONCURRENT):
        """Runs fn(i) on n threads released together; returns (result or grpc.RpcError) per thread."""
        out = [None] * n
        start = threading.Barrier(n)

        def run(i):
            start.wait()
            try:
                out[i] = fn(i)
            except grpc.RpcError as e:
                out[i] = e
        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return out

    def split(results):
        ok = [r for r in results if not isinstance(r, grpc.RpcError)]
        errors = [r for r in results if isinstance(r, grpc.RpcError)]
        return ok, errors

    def error_info(err):
        st = status_details(err, m.status)
        info = m.details.ErrorInfo()
        if st is not None and any(d.Unpack(info) for d in st.details if d.Is(info.DESCRIPTOR)):
            return info
        return None

    def customers_named(display_name):
        resp = call("customers", "ListCustomers", svc.ListCustomersRequest(page_size=100), svc.ListCustomersResponse)
        return [c for c in resp.customers if c.display_name == display_name]

    def one_request_id_one_customer():
        results = race(lambda i: call("customers", "CreateCustomer", svc.CreateCustomerRequest(
            request_id="create-race-1", customer=svc.Customer(display_name="并发客户", phone="13900000001")),
            svc.Customer))
        ok, errors = split(results)
        assert ok, [e.details() for e in errors]
        assert len({c.name for c in ok}) == 1, {c.name for c in ok}
        for e in errors:
            assert e.code() == grpc.StatusCode.ABORTED and "in progress" in e.details(), (e.code(), e.details())
        assert len(customers_named("并发客户")) == 1

    def one_request_id_one_lead():
        results = race(lambda i: call("leads", "CreateLead", svc.CreateLeadRequest(
            request_id="lead-race-1", lead=svc.Lead(contact_name="并发线索", company="并发公司", phone="13900000002")),
            svc.Lead))
        ok, errors = split(results)
        assert ok, [(e.code(), e.details()) for e in errors]
        assert len({lead.name for lead in ok}) == 1, {lead.name for lead in ok}
        for e in errors:
            assert e.code() == grpc.StatusCode.ABORTED and "in progress" in e.details(), (e.code(), e.details())
        leads = call("leads", "ListLeads", svc.ListLeadsRequest(page_size=100), svc.ListLeadsResponse).leads
        assert len([lead for lead in leads if lead.contact_name == "并发线索"]) == 1, leads

    def one_phone_one_customer():
        results = race(lambda i: call("customers", "CreateCustomer", svc.CreateCustomerRequest(
            request_id=f"phone-race-{i}", customer=svc.Customer(display_name="同号客户", phone="+86 139-0000-0003")),
            svc.Customer))
        ok, errors = split(results)
        assert len(ok) == 1, ([c.name for c in ok], [e.details() for e in errors])
        for e in errors:
            assert e.code() == grpc.StatusCode.ALREADY_EXISTS, (e.code(), e.details())
            info = error_info(e)
            assert info is not None and info.reason == "DUPLICATE_PHONE", info
            assert info.metadata["existing"] == ok[0].name and info.metadata["field"] == "customer.phone", info
            assert "/" not in e.details().replace(ok[0].name, ""), e.details()  # names the customer, no paths
        assert len(customers_named("同号客户")) == 1

    def request_id_of_another_customer_is_refused():
        a = call("customers", "CreateCustomer", svc.CreateCustomerRequest(
            request_id="reused-1", customer=svc.Customer(display_name="甲客户", phone="13900000004")), svc.Customer)
        b = call("customers", "CreateCustomer", svc.CreateCustomerRequest(
            customer=svc.Customer(display_name="乙客户", phone="13900000005")), svc.Customer)
        try:
            call("customers", "UpdateCustomer", svc.UpdateCustomerRequest(
                request_id="reused-1", customer=svc.Customer(name=b.name, notes="不应写入")), svc.Customer)
            raise AssertionError("accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in e.details(), (e.code(), e.details())
        after = call("customers", "GetCustomer", svc.GetCustomerRequest(name=b.name), svc.Customer)
        assert after.etag == b.etag and after.notes == "", after
        again = call("customers", "GetCustomer", svc.GetCustomerRequest(name=a.name), svc.Customer)
        assert again.etag == a.etag, again

    with crmd:
        check("concurrent first attempts of one create make one customer, the rest ABORTED in progress",
              one_request_id_one_customer)
        check("concurrent first attempts of one lead create make one lead, the rest ABORTED in progress",
              one_request_id_one_lead)
        check("one phone raced by many creates: one customer, the rest DUPLICATE_PHONE naming it",
              one_phone_one_customer)
        check("a request_id that created another customer is INVALID_ARGUMENT, nothing written",
              request_id_of_another_customer_is_refused)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
