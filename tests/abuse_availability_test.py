#!/usr/bin/python3
"""Availability under hostile clients, against crmd on the embedded log (issue: "one bad client,
one bad byte or one slow socket must not break the backbone"). Each check is an attack an outside
tester made against an earlier build, and what the server must do instead:

  - reads whose consistency token names offsets the log never reached: refused at once, no slot
    held (a burst of ~520 once held every slot for good);
  - made-up method names: one "unknown" metrics series (20k once grew RSS by 196 MiB);
  - a flood of raw connections past the descriptor limit: the server keeps serving its existing
    channels and accepts new ones once the flood is gone (gRPC's own listener died for good);
  - stalled bulk imports: held per user, cancelled when idle (two once blocked everyone);
  - slowloris on the dashboard: /healthz still answers (four connections once held it ~25 s);
  - SIGTERM with calls stuck: crmd exits within its drain limit.
"""
import base64
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crm_testlib as t  # noqa: E402


import grpc  # noqa: E402

args = t.crmd_test_args()
work = t.work_dir("crm-abuse-avail-")
m = t.generate_protos(work, args.protoc, args.proto_root, args.google_protos)
KEY = "abuse-availability-key-0123456789abcdef"
FD_LIMIT = 1024
DRAIN_S = 3
IDLE_S = 2


class Server(t.Crmd):
    """crmd with a low descriptor limit and short drain and idle limits."""

    def start(self):
        def limit_fds():
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

        self.p = subprocess.Popen(
            [self.binary, "--data-dir", self.data, "--listen", self.addr, "--metrics-listen", self.metrics_listen,
             "--dashboard-listen", f"127.0.0.1:{self.dashboard_port}", "--scheduler-interval", "0",
             "--drain-timeout", str(DRAIN_S), "--stream-idle-timeout", str(IDLE_S)],
            env=dict(os.environ, CRM_SIGNING_KEY=KEY), preexec_fn=limit_fds,
            stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT)
        self.channel = t.wait_healthy(self.addr, proc=self.p, log_path=self.log_path)


metrics_port = t.free_port()
crmd = Server(args.crmd, os.path.join(work, "data"), KEY, os.path.join(work, "crmd.log"),
              metrics_listen=f"127.0.0.1:{metrics_port}")
crmd.start_until_exit()
admin = [("authorization", "Bearer " + t.mint_token(KEY, "admin1", "admin"))]
CS = "crm.customers.v1.CustomerService"


def stub(channel, method, req, resp):
    return t.unary(channel, CS, method, req, resp)


create = stub(crmd.channel, "CreateCustomer", m.svc.CreateCustomerRequest, m.svc.Customer)
get = stub(crmd.channel, "GetCustomer", m.svc.GetCustomerRequest, m.svc.Customer)
made = create(m.svc.CreateCustomerRequest(customer=m.svc.Customer(display_name="星辰科技")), metadata=admin, timeout=10)


def token(positions):
    tok = m.env.ConsistencyToken()
    for topic, partition, offset in positions:
        tok.positions.add(topic=topic, partition=partition, offset=offset)
    return base64.urlsafe_b64encode(tok.SerializeToString()).decode().rstrip("=")


def serving(channel):
    check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda _: b"",
                                response_deserializer=lambda b: b)
    try:
        return check(None, timeout=2) == b"\x08\x01"
    except grpc.RpcError:
        return False


def bogus_tokens():
    far = token([("crm.customers.events.v1", 0, 10**12)])
    req = m.svc.GetCustomerRequest(name=made.name, min_consistency_token=far)
    start = time.time()
    futures = [get.future(req, metadata=admin, timeout=30) for _ in range(600)]
    codes = {}
    for f in futures:
        try:
            f.result()
            codes["OK"] = codes.get("OK", 0) + 1
        except grpc.RpcError as e:
            codes[e.code().name] = codes.get(e.code().name, 0) + 1
    took = time.time() - start
    # All refused before any wait: no slot is held, nothing is RESOURCE_EXHAUSTED.
    assert codes == {"FAILED_PRECONDITION": 600}, codes
    assert took < 15, f"600 refusals took {took:.1f} s"
    assert serving(crmd.channel)
    create(m.svc.CreateCustomerRequest(customer=m.svc.Customer(display_name="after the burst")),
           metadata=admin, timeout=5)
    # 100,001 positions (3.6 MB) once slowed creates from 932/s to 6/s while they waited.
    huge = token([("crm.customers.events.v1", 0, 0)] * 100_001)
    started = time.time()
    assert t.code_of(lambda: get(m.svc.GetCustomerRequest(name=made.name, min_consistency_token=huge),
                                 metadata=admin, timeout=30)) == grpc.StatusCode.INVALID_ARGUMENT
    assert time.time() - started < 5
    other = token([("crm.not.followed.v1", 0, 0)])
    assert t.code_of(lambda: get(m.svc.GetCustomerRequest(name=made.name, min_consistency_token=other),
                                 metadata=admin, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
    # The dashboard's consistency_token parameter goes through the same check.
    url = f"http://127.0.0.1:{crmd.dashboard_port}/api/v1/reports/funnel?consistency_token={far}"
    request = urllib.request.Request(url, headers={"Authorization": admin[0][1]})
    started = time.time()
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("accepted")
    except urllib.error.HTTPError as e:
        body = json.loads(e.read())
        assert e.code == 400 and body["code"] == "FAILED_PRECONDITION", (e.code, body)
    assert time.time() - started < 5


def made_up_methods():
    for i in range(2000):
        call = crmd.channel.unary_unary(f"/x{i}.Svc/M{i}", request_serializer=lambda _: b"",
                                        response_deserializer=lambda b: b)
        try:
            call(None, timeout=5)
            raise AssertionError("a made-up method answered")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e.code()
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    assert "x1999" not in body and "M17" not in body, "a made-up name became a label value"
    assert 'grpc_method="unknown"' in body
    assert len(body) < 512 * 1024, f"/metrics is {len(body)} bytes"


def descriptor_flood():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    socks = []
    try:
        for _ in range(FD_LIMIT + 200):
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", crmd.port))
            socks.append(s)
        time.sleep(1)  # the listener takes what it may and sheds the rest
        # The server still works: its existing channel, its files, its log.
        create(m.svc.CreateCustomerRequest(customer=m.svc.Customer(display_name="during the flood")),
               metadata=admin, timeout=10)
    finally:
        for s in socks:
            s.close()
    # Once the flood is gone, new connections are served again.
    deadline = time.time() + 20
    while time.time() < deadline:
        # A channel of its own: python's grpc shares connections between channels to one
        # address, and the point is a new connection.
        fresh = grpc.insecure_channel(crmd.addr, options=[("grpc.use_local_subchannel_pool", 1)])
        ok = serving(fresh)
        fresh.close()
        if ok:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no new connection was served after the flood ended")
    assert crmd.running()


IMPORT = "/crm.customers.v1.CustomerService/ImportCustomers"


def open_import(user):
    """An import stream with only its options sent; returns (call, first response or code)."""
    channel = grpc.insecure_channel(crmd.addr)
    call = channel.stream_stream(IMPORT, request_serializer=m.svc.ImportCustomersRequest.SerializeToString,
                                 response_deserializer=m.svc.ImportCustomersResponse.FromString)
    sent = threading.Event()
    stop = threading.Event()

    def requests():
        yield m.svc.ImportCustomersRequest(options=m.svc.ImportOptions(columns=["display_name"]))
        sent.set()
        stop.wait(60)  # then nothing: a stalled client

    responses = call(requests(), metadata=[("authorization", "Bearer " + t.mint_token(KEY, user, "admin"))])
    try:
        first = next(responses)
        return responses, stop, first
    except grpc.RpcError as e:
        stop.set()
        return responses, stop, e.code()


def stalled_imports():
    held, held_stop, first = open_import("alice")
    assert not isinstance(first, grpc.StatusCode), first
    _, stop2, second = open_import("alice")
    assert second == grpc.StatusCode.RESOURCE_EXHAUSTED, second
    _, stop3, bob = open_import("bob")
    assert not isinstance(bob, grpc.StatusCode), f"another user's import was refused: {bob}"
    stop3.set()
    # Alice's stalled import is cancelled after the idle timeout, and her next one is served.
    start = time.time()
    try:
        for _ in held:
            pass
        raise AssertionError("the idle import ended without an error")
    except grpc.RpcError as e:
        assert e.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED), e.code()
    assert time.time() - start < IDLE_S + 5
    held_stop.set()
    stop2.set()
    for _ in range(50):
        _, stop4, again = open_import("alice")
        stop4.set()
        if not isinstance(again, grpc.StatusCode):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"alice's slot never came back: {again}")


def slowloris():
    held = []
    for _ in range(16):  # four times what once held the dashboard
        s = socket.create_connection(("127.0.0.1", crmd.dashboard_port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        held.append(s)
    time.sleep(0.5)
    start = time.time()
    body = urllib.request.urlopen(f"http://127.0.0.1:{crmd.dashboard_port}/healthz", timeout=10).read()
    assert body == b"ok\n" and time.time() - start < 2, (body, time.time() - start)
    # The half-sent requests are dropped once their time is up (5 s), not held.
    time.sleep(6.5)
    for s in held:
        s.settimeout(2)
        try:
            data = s.recv(4096)
        except (ConnectionResetError, socket.timeout) as e:
            data = e
        # Closed, reset, or answered 4xx and closed: either way no longer held.
        answered_4xx = isinstance(data, bytes) and re.match(rb"HTTP/1\.[01] 4\d\d ", data) is not None
        assert data == b"" or isinstance(data, ConnectionResetError) or answered_4xx, data
        s.close()


def sigterm_with_stuck_calls():
    stalled, stop, first = open_import("carol")
    assert not isinstance(first, grpc.StatusCode), first
    start = time.time()
    crmd.p.send_signal(signal.SIGTERM)
    rc = crmd.p.wait(timeout=DRAIN_S + 30)
    took = time.time() - start
    stop.set()
    assert rc == 0, rc
    assert took < DRAIN_S + 5, f"crmd took {took:.1f} s to stop (drain limit {DRAIN_S} s)"


t.check("tokens naming offsets the log never reached are refused at once", bogus_tokens)
t.check("made-up method names share one metrics series", made_up_methods)
t.check("a descriptor flood is shed and the listener survives it", descriptor_flood)
t.check("stalled imports are limited per user and cancelled when idle", stalled_imports)
t.check("slowloris does not hold the dashboard", slowloris)
t.check("SIGTERM ends crmd within its drain limit with a stalled stream", sigterm_with_stuck_calls)
sys.exit(t.summary())
