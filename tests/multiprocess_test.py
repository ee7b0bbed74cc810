#!/usr/bin/python3
"""crm-customers and crm-devbroker as separate processes, checked by independent clients.

- Python grpcio (Debian's python3-grpcio) creates and reads customers with a bearer token
  minted here by an independent HS256 implementation (hmac + hashlib).
- kafka-python (Debian's python3-kafka, its own implementation of the Kafka protocol) reads
  the customers topic and checks the CloudEvents binary-mode headers, traceparent, and the
  SHA-256 hash chain of each envelope, recomputed in Python.

Run with /usr/bin/python3: Debian's Python packages live there, not under another python3
that may come first on PATH. Prints "N passed, N failed" and exits non-zero on failure.
"""
import argparse
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import RESULTS, check, free_port, generate_protos, mint_token, wait_healthy, status_details as details_of, work_dir  # noqa: E402,E501


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devbroker", required=True)
    ap.add_argument("--customers", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--google-protos", required=True)
    args = ap.parse_args()

    work = work_dir("crm-multiprocess-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc  # noqa: E402
    from kafka import KafkaConsumer, TopicPartition  # noqa: E402
    svc, evs, env_pb, status_pb, details_pb = m.svc, m.evs, m.env, m.status, m.details
    reflection_pb = m.reflection

    key = "k" * 48
    bootstrap_file = os.path.join(work, "bootstrap")
    procs = []
    broker = subprocess.Popen([args.devbroker, "--bootstrap-file", bootstrap_file],
                              stdout=open(os.path.join(work, "broker.log"), "w"), stderr=subprocess.STDOUT)
    procs.append(broker)
    try:
        deadline = time.time() + 20
        while not os.path.exists(bootstrap_file) and time.time() < deadline:
            time.sleep(0.05)
        bootstrap = open(bootstrap_file).read().strip()
        port, metrics_port = free_port(), free_port()
        env = dict(os.environ, CRM_SIGNING_KEY=key)
        customers = subprocess.Popen(
            [args.customers, "--bootstrap-servers", bootstrap, "--data-dir", os.path.join(work, "data"),
             "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics_port}"],
            env=env, stdout=open(os.path.join(work, "customers.log"), "w"), stderr=subprocess.STDOUT)
        procs.append(customers)

        addr = f"127.0.0.1:{port}"
        channel = wait_healthy(addr, proc=customers, log_path=os.path.join(work, "customers.log"))

        def rpc(method, req_cls, resp_cls):
            return channel.unary_unary(f"/crm.customers.v1.CustomerService/{method}",
                                       request_serializer=req_cls.SerializeToString,
                                       response_deserializer=resp_cls.FromString)

        create = rpc("CreateCustomer", svc.CreateCustomerRequest, svc.Customer)
        get = rpc("GetCustomer", svc.GetCustomerRequest, svc.Customer)
        auth = [("authorization", "Bearer " + mint_token(key, "u1", "rep", "east"))]
        created = {}

        def status_details(err):
            return details_of(err, status_pb)

        def create_and_read():
            req = svc.CreateCustomerRequest(request_id="py-1")
            req.customer.display_name = "杭州云帆贸易有限公司"
            req.customer.phone = "+86 139 0000 1111"
            req.customer.email = "Wang@Example.cn"
            c = create(req, metadata=auth, timeout=10)
            assert re.fullmatch(r"customers/[0-9a-f-]{36}", c.name), c.name
            assert c.customer_number.startswith("C") and len(c.customer_number) == 13, c.customer_number
            assert c.owner_id == "u1" and c.team_id == "east" and c.etag == "1"
            again = create(req, metadata=auth, timeout=10)  # same request_id: same customer
            assert again.name == c.name
            got = get(svc.GetCustomerRequest(name=c.name, min_consistency_token=c.consistency_token),
                      metadata=auth, timeout=10)
            assert got.display_name == "杭州云帆贸易有限公司" and got.phone == "+86 139 0000 1111"
            created["customer"] = c

        def duplicate_phone_names_existing():
            req = svc.CreateCustomerRequest()
            req.customer.display_name = "dup"
            req.customer.phone = "13900001111"
            try:
                create(req, metadata=auth, timeout=10)
                raise AssertionError("duplicate phone accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e.code()
                st = status_details(e)
                info = details_pb.ErrorInfo()
                assert st is not None and st.details[0].Unpack(info)
                assert info.reason == "DUPLICATE_PHONE" and info.metadata["existing"] == created["customer"].name

        def bad_input_names_field():
            req = svc.CreateCustomerRequest()
            req.customer.display_name = "x"
            req.customer.email = "not-an-email"
            try:
                create(req, metadata=auth, timeout=10)
                raise AssertionError("bad email accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
                bad = details_pb.BadRequest()
                assert any(d.Unpack(bad) for d in status_details(e).details if d.Is(bad.DESCRIPTOR))
                assert bad.field_violations[0].field == "customer.email"

        def no_token_is_unauthenticated():
            try:
                get(svc.GetCustomerRequest(name=created["customer"].name), timeout=10)
                raise AssertionError("call without token accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAUTHENTICATED

        def kafka_headers_and_hash_chain():
            c = created["customer"]
            cid = c.name.split("/", 1)[1]
            consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                                     consumer_timeout_ms=3000, api_version_auto_timeout_ms=10000)
            parts = consumer.partitions_for_topic("crm.customers.events.v1")
            assert parts and len(parts) == 8, parts
            tps = [TopicPartition("crm.customers.events.v1", p) for p in parts]
            consumer.assign(tps)
            consumer.seek_to_beginning()
            found = []
            deadline = time.time() + 20
            while not found and time.time() < deadline:
                for rec in consumer:
                    # kafka-python 2.0.2 hands out transaction markers as records: skip them.
                    headers = dict(rec.headers or [])
                    if "ce_id" not in headers:
                        continue
                    if rec.key == cid.encode():
                        found.append((rec, headers))
            consumer.close()
            assert found, "event not found on the topic"
            prev = b""
            for rec, h in found:
                e = env_pb.EventEnvelope()
                e.ParseFromString(rec.value)
                assert h["ce_specversion"] == b"1.0"
                assert h["ce_id"].decode() == e.event_id
                assert h["ce_type"].decode() == e.event_type == "crm.customers.v1.CustomerCreated"
                assert h["ce_source"] == b"/crm/customers"
                assert h["ce_subject"].decode() == c.name
                assert h["content-type"] == b"application/protobuf"
                assert re.fullmatch(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-01", h["traceparent"]), h["traceparent"]
                assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", h["ce_time"]), h["ce_time"]
                payload = evs.CustomerCreated()
                assert e.payload.Unpack(payload)
                assert payload.normalized_phone == "13900001111"
                assert payload.normalized_email == "wang@example.cn"
                # The hash chain, recomputed independently.
                assert e.prev_hash == prev
                copy = env_pb.EventEnvelope()
                copy.CopyFrom(e)
                copy.ClearField("hash")
                digest = hashlib.sha256(e.prev_hash + copy.SerializeToString(deterministic=True)).digest()
                assert digest == e.hash, "hash mismatch"
                prev = e.hash
            assert len(found) == 1, f"{len(found)} events for one create"

        def metrics_exposed():
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
            assert re.search(r'grpc_server_handled_total\{[^}]*grpc_code="OK"[^}]*grpc_method="CreateCustomer"', text), text[:2000]
            assert "grpc_server_handling_seconds_bucket" in text
            assert "crm_log_append_seconds_count" in text

        def reflection_lists_services():
            stream = channel.stream_stream(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb.ServerReflectionResponse.FromString)
            responses = list(stream(iter([reflection_pb.ServerReflectionRequest(list_services="")]), timeout=10))
            names = {s.name for s in responses[0].list_services_response.service}
            assert "crm.customers.v1.CustomerService" in names, names
            assert "grpc.health.v1.Health" in names, names

        check("reflection lists the services", reflection_lists_services)
        check("grpcio creates and reads a customer", create_and_read)
        check("duplicate phone is ALREADY_EXISTS naming the existing customer", duplicate_phone_names_existing)
        check("bad input is INVALID_ARGUMENT naming the field", bad_input_names_field)
        check("no token is UNAUTHENTICATED", no_token_is_unauthenticated)
        check("kafka-python sees CloudEvents headers and a valid hash chain", kafka_headers_and_hash_chain)
        check("metrics are exposed", metrics_exposed)

        customers.send_signal(signal.SIGTERM)
        check("crm-customers exits 0 on SIGTERM", lambda: customers.wait(timeout=20) == 0 or (_ for _ in ()).throw(
            AssertionError(f"exit {customers.returncode}")))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if RESULTS["failed"]:
            for name in ("broker.log", "customers.log"):
                path = os.path.join(work, name)
                if os.path.exists(path):
                    print(f"--- {name}\n" + open(path).read()[-4000:])
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] or RESULTS["passed"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
