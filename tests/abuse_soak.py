#!/usr/bin/python3
"""A long abuse run: crmd serves a mixed CRM day (crm-bench --workload day, the victim) while
hostile clients attack it for minutes, then every write the day journalled as acknowledged is
checked (crm-bench --workload day-check), the log is verified (crmctl verify) and every
projection compared with a fresh rebuild (crmctl verify --projections).

The attackers, each in a loop of its own:
  - reads with consistency tokens the log never issued, and tokens of 100k positions;
  - calls to made-up methods, and undecodable bytes to real ones;
  - connection floods (hundreds of raw TCP connections, held, dropped);
  - stalled bulk imports from several users;
  - slowloris on the dashboard;
  - bad input: names with control characters, far-future times, overflowing amounts.

Prints the victim's throughput and latency alone and under attack (medians of its own runs are
not taken: one run of each, in the same session). `make soak` runs it for 5 minutes. Exits
non-zero when an acknowledged write is lost or duplicated, a check fails, or crmd dies.
"""
import base64
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crm_testlib as t  # noqa: E402


import grpc  # noqa: E402


def main():
    ap = t.crmd_bench_parser(__doc__)
    for flag in ("--protoc", "--proto-root", "--google-protos"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--minutes", type=float, default=5, help="length of the attacked day")
    ap.add_argument("--baseline-seconds", type=float, default=30, help="length of the quiet day before it")
    ap.add_argument("--clients", type=int, default=16, help="the victim's clients")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="crm-abuse-soak-")
    m = t.generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    key = "abuse-soak-key-0123456789abcdefghijklmnop"
    env = dict(os.environ, CRM_SIGNING_KEY=key)
    data = os.path.join(work, "data")
    port, dash_port = t.free_port(), t.free_port()
    addr = f"127.0.0.1:{port}"
    log_path = os.path.join(work, "crmd.log")
    crmd = subprocess.Popen([args.crmd, "--data-dir", data, "--listen", addr, "--metrics-listen", "",
                             "--dashboard-listen", f"127.0.0.1:{dash_port}", "--stream-idle-timeout", "5"],
                            env=env, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)
    t.wait_healthy(addr, seconds=60, proc=crmd, log_path=log_path).close()
    token = t.mint_token(key, "victim", "admin")

    def day(seconds, journal, first_customer):
        out = t.run_checked([args.bench, "--workload", "day", "--target", addr, "--token", token, "--clients",
                             str(args.clients), "--seconds", str(seconds), "--warmup", "0", "--journal", journal,
                             "--first-customer", str(first_customer), "--json"], env, "the victim's day",
                            timeout=seconds + 600).stdout
        line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
        import json
        return json.loads(line)

    stop = threading.Event()
    counts = {}
    lock = threading.Lock()

    def count(kind, n=1):
        with lock:
            counts[kind] = counts.get(kind, 0) + n

    def attacker(name, fn):
        def loop():
            rng = random.Random(name)
            while not stop.is_set():
                try:
                    fn(rng)
                except Exception as e:  # noqa: BLE001 - an attack that errors is still an attack
                    count(f"{name}: {type(e).__name__}")
            return
        th = threading.Thread(target=loop, name=name, daemon=True)
        th.start()
        return th

    channel = grpc.insecure_channel(addr)
    admin = [("authorization", "Bearer " + t.mint_token(key, "attacker", "admin"))]
    get = t.unary(channel, "crm.customers.v1.CustomerService", "GetCustomer", m.svc.GetCustomerRequest,
                  m.svc.Customer)
    create = t.unary(channel, "crm.customers.v1.CustomerService", "CreateCustomer", m.svc.CreateCustomerRequest,
                     m.svc.Customer)

    def token_of(positions):
        tok = m.env.ConsistencyToken()
        for topic, partition, offset in positions:
            tok.positions.add(topic=topic, partition=partition, offset=offset)
        return base64.urlsafe_b64encode(tok.SerializeToString()).decode().rstrip("=")

    far = token_of([("crm.customers.events.v1", 0, 10**12)])
    huge = token_of([("crm.customers.events.v1", 0, 0)] * 100_000)

    def bogus_tokens(rng):
        tok = huge if rng.random() < 0.05 else far
        futures = [get.future(m.svc.GetCustomerRequest(name="customers/x", min_consistency_token=tok),
                              metadata=admin, timeout=30) for _ in range(50)]
        for f in futures:
            try:
                f.result()
            except grpc.RpcError as e:
                count(f"token: {e.code().name}")

    def made_up(rng):
        n = rng.randrange(10**9)
        for path in (f"/x{n}.S/M{n}", "/crm.customers.v1.CustomerService/CreateCustomer"):
            call = channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            try:
                call(bytes(rng.randrange(256) for _ in range(64)), metadata=admin, timeout=5)
            except grpc.RpcError as e:
                count(f"bytes: {e.code().name}")
        time.sleep(0.01)

    def flood(rng):
        socks = []
        for _ in range(rng.randint(100, 400)):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                break
            socks.append(s)
        count("flood: connections", len(socks))
        time.sleep(rng.uniform(0.5, 3))
        for s in socks:
            s.close()
        time.sleep(rng.uniform(0.5, 2))

    def stalled_import(rng):
        user = f"importer{rng.randrange(4)}"
        ch = grpc.insecure_channel(addr)
        call = ch.stream_stream("/crm.customers.v1.CustomerService/ImportCustomers",
                                request_serializer=m.svc.ImportCustomersRequest.SerializeToString,
                                response_deserializer=m.svc.ImportCustomersResponse.FromString)
        quit_ = threading.Event()

        def reqs():
            yield m.svc.ImportCustomersRequest(options=m.svc.ImportOptions(columns=["display_name"]))
            quit_.wait(30)

        try:
            for _ in call(reqs(), metadata=[("authorization", "Bearer " + t.mint_token(key, user, "admin"))],
                          timeout=60):
                pass
        except grpc.RpcError as e:
            count(f"import: {e.code().name}")
        quit_.set()
        ch.close()

    def slowloris(rng):
        held = []
        for _ in range(8):
            try:
                s = socket.create_connection(("127.0.0.1", dash_port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            except OSError:
                count("slowloris: refused")
        time.sleep(rng.uniform(1, 7))
        for s in held:
            s.close()

    def bad_input(rng):
        bad = [m.svc.Customer(display_name="a\u202eb"), m.svc.Customer(display_name="x\x00y"),
               m.svc.Customer(display_name="ok", phone="1" * 200)]
        for c in bad:
            try:
                create(m.svc.CreateCustomerRequest(customer=c), metadata=admin, timeout=5)
                count("bad input: ACCEPTED")
            except grpc.RpcError as e:
                count(f"bad input: {e.code().name}")
        time.sleep(0.02)

    failed_checks = []
    try:
        print(f"abuse soak: victim {args.clients} clients; quiet {args.baseline_seconds:.0f} s, "
              f"then {args.minutes:g} min under attack (work folder {work})", flush=True)
        quiet = day(args.baseline_seconds, os.path.join(work, "journal-quiet"), 0)
        threads = [attacker(n, f) for n, f in (("tokens", bogus_tokens), ("methods", made_up), ("flood", flood),
                                               ("imports", stalled_import), ("imports2", stalled_import),
                                               ("slowloris", slowloris), ("input", bad_input))]
        attacked = day(args.minutes * 60, os.path.join(work, "journal-attacked"), 10_000_000)
        stop.set()
        for th in threads:
            th.join(timeout=90)
        assert crmd.poll() is None, "crmd died under attack"
        for name, r in (("quiet", quiet), ("attacked", attacked)):
            print(f"victim {name:8s}: {r['ops']} ops, {r['throughput']:.0f} ops/s, p50 {r['p50_ms']:.1f} ms, "
                  f"p99 {r['p99_ms']:.1f} ms, p99.9 {r['p999_ms']:.1f} ms, errors {r['errors']}", flush=True)
        print("attacks: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())), flush=True)
        if counts.get("bad input: ACCEPTED"):
            failed_checks.append("bad input was accepted")
        if quiet["errors"] or attacked["errors"]:
            failed_checks.append(f"the victim's day had errors: {quiet['errors']} quiet, {attacked['errors']} attacked")
        summary, resent = t.day_check(args.bench, ["--target", addr, "--token", token],
                                      [os.path.join(work, "journal-quiet"), os.path.join(work, "journal-attacked")],
                                      env, "day-check")
        acknowledged = sum(t.acknowledged_writes(os.path.join(work, j)) for j in ("journal-quiet", "journal-attacked"))
        print(f"day-check: {summary} ({acknowledged} acknowledged writes)", flush=True)
        assert acknowledged > 0, "the victim had nothing acknowledged"
        t.run_checked([args.crmctl, "verify", "--data-dir", data], env, "crmctl verify")
        crmd.send_signal(signal.SIGTERM)
        crmd.wait(timeout=60)
        t.run_checked([args.crmctl, "verify", "--projections", "--data-dir", data], env,
                      "crmctl verify --projections", timeout=900)
        print("verify: log and every projection match a fresh rebuild", flush=True)
    except Exception as e:  # noqa: BLE001
        failed_checks.append(f"{type(e).__name__}: {e}")
    finally:
        stop.set()
        if crmd.poll() is None:
            crmd.kill()
    if failed_checks:
        print("FAILED: " + "; ".join(failed_checks), flush=True)
        print(f"(work folder kept in {work})")
        return 1
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print("abuse soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
