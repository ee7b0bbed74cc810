"""Helpers shared by the Python cross-service tests (run them with /usr/bin/python3).

Independent of our C++ code: protos are compiled with protoc --python_out, tokens are minted
with hmac + hashlib, calls go through Debian's python3-grpcio.
"""
import atexit
import base64
import hashlib
import hmac
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

# Every check in these tests is an assert statement: under python -O (or PYTHONOPTIMIZE) they
# would all vanish and every test would pass. Refuse to run instead.
if sys.flags.optimize:
    sys.exit(f"{os.path.basename(sys.argv[0])}: run without -O and PYTHONOPTIMIZE: the checks are assert statements")

# The suites `make test` requires that a machine may be unable to run (no tmpfs mount, no
# clang++). Such a suite fails, so that it cannot vanish from a green CI run; a developer opts
# out of named ones with CRM_TEST_ALLOW_SKIP=disk_full,fuzz, and ctest lists them as skipped.
OPTIONAL_SUITES = ("disk_full", "fuzz")
SKIPPED = 77  # ctest's SKIP_RETURN_CODE for these suites


def suite_unavailable(suite, reason):
    """The exit code for `suite` (one of OPTIONAL_SUITES), which cannot run for `reason`:
    SKIPPED when CRM_TEST_ALLOW_SKIP names it, else 1, with a line saying which and how."""
    allowed = {s.strip() for s in os.environ.get("CRM_TEST_ALLOW_SKIP", "").split(",") if s.strip()}
    unknown = allowed - set(OPTIONAL_SUITES)
    if unknown:
        print(f"CRM_TEST_ALLOW_SKIP names {', '.join(sorted(unknown))}: only {', '.join(OPTIONAL_SUITES)} "
              "may be opted out", flush=True)
        return 1
    if suite in allowed:
        print(f"{suite}: SKIPPED, opted out by CRM_TEST_ALLOW_SKIP ({reason})", flush=True)
        return SKIPPED
    print(f"{suite}: FAILED: this suite cannot run here: {reason}. CI must run it; on a developer machine "
          f"opt out explicitly with CRM_TEST_ALLOW_SKIP={suite}", flush=True)
    return 1


RESULTS = {"passed": 0, "failed": 0}


def check(name, fn):
    """Runs one named check, reports it and goes on."""
    try:
        fn()
        RESULTS["passed"] += 1
        print(f"PASS {name}", flush=True)
    except Exception:  # noqa: BLE001 - report every failure and go on
        RESULTS["failed"] += 1
        print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)


def summary():
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] or RESULTS["passed"] == 0 else 0


def work_dir(prefix):
    """A fresh directory for one run: removed at exit if every check passed, kept and named if not."""
    path = tempfile.mkdtemp(prefix=prefix)

    def clean_up():
        if RESULTS["failed"] == 0 and RESULTS["passed"] > 0:
            shutil.rmtree(path, ignore_errors=True)
        else:
            print(f"(work directory kept in {path})", flush=True)
    atexit.register(clean_up)
    return path


_held_ports = []


def free_port():
    """A port no other test of this machine will hand out while this process lives.

    bind(0) hands out a port from the kernel's ephemeral range, which every outgoing
    connection draws from too: under `ctest -j`, a client of another test took the port
    before the server bound it ("Address already in use", CI of 77770bf). So ports come
    from below that range, and each is claimed with an flock on a file that the kernel
    releases when this process ends, however it ends."""
    import fcntl
    import random
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low, high = 10000, max(10001, min(ephemeral_low, 65536) - 1)
    claims = os.path.join(tempfile.gettempdir(), f"crm-test-ports-{os.getuid()}")
    os.makedirs(claims, mode=0o700, exist_ok=True)
    rng = random.SystemRandom()
    for _ in range(2000):
        port = rng.randrange(low, high)
        fd = os.open(os.path.join(claims, str(port)), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            os.close(fd)
            continue
        _held_ports.append(fd)
        return port
    raise RuntimeError(f"no free port in {low}..{high} after 2000 tries")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(key, sub, role, team=""):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": sub, "role": role, "team": team,
                                 "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def generate_protos(work, protoc, proto_root, google_protos):
    """Compiles our protos, google.rpc and the health/reflection protos into work/gen and puts
    it on sys.path. Returns a namespace of the modules."""
    gen = os.path.join(work, "gen")
    os.makedirs(gen, exist_ok=True)
    protos = ["crm/common/v1/access.proto", "crm/common/v1/envelope.proto", "crm/customers/v1/customers_events.proto",
              "crm/customers/v1/customers_service.proto", "crm/opportunities/v1/opportunities_events.proto",
              "crm/opportunities/v1/opportunities_service.proto", "crm/tasks/v1/tasks_events.proto",
              "crm/tasks/v1/tasks_service.proto", "crm/tickets/v1/tickets_events.proto",
              "crm/tickets/v1/tickets_service.proto", "crm/analytics/v1/analytics_service.proto"]
    subprocess.run([protoc, f"--python_out={gen}", f"-I{proto_root}", "-I/usr/include"] + protos, check=True)
    subprocess.run([protoc, f"--python_out={gen}", f"-I{google_protos}", "-I/usr/include",
                    "google/rpc/status.proto", "google/rpc/error_details.proto"], check=True)
    # health.proto lives under grpc/, which would shadow the grpc package: copy it aside.
    health_dir = os.path.join(work, "health_src", "crm_test_health")
    os.makedirs(health_dir, exist_ok=True)
    for src in ("/usr/share/grpc-proto/grpc/health/v1/health.proto",
                "/usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto"):
        with open(src) as s, open(os.path.join(health_dir, os.path.basename(src)), "w") as d:
            d.write(s.read())
    subprocess.run([protoc, f"--python_out={gen}", f"-I{os.path.join(work, 'health_src')}",
                    "crm_test_health/health.proto", "crm_test_health/reflection.proto"], check=True)
    sys.path.insert(0, gen)

    class Modules:
        svc = importlib.import_module("crm.customers.v1.customers_service_pb2")
        evs = importlib.import_module("crm.customers.v1.customers_events_pb2")
        env = importlib.import_module("crm.common.v1.envelope_pb2")
        opp = importlib.import_module("crm.opportunities.v1.opportunities_service_pb2")
        opp_evs = importlib.import_module("crm.opportunities.v1.opportunities_events_pb2")
        tasks = importlib.import_module("crm.tasks.v1.tasks_service_pb2")
        task_evs = importlib.import_module("crm.tasks.v1.tasks_events_pb2")
        tickets = importlib.import_module("crm.tickets.v1.tickets_service_pb2")
        ticket_evs = importlib.import_module("crm.tickets.v1.tickets_events_pb2")
        analytics = importlib.import_module("crm.analytics.v1.analytics_service_pb2")
        status = importlib.import_module("google.rpc.status_pb2")
        details = importlib.import_module("google.rpc.error_details_pb2")
        health = importlib.import_module("crm_test_health.health_pb2")
        reflection = importlib.import_module("crm_test_health.reflection_pb2")
    return Modules


def wait_healthy(addr, seconds=30, proc=None, log_path=None):
    """A channel to `addr` once grpc.health.v1 says SERVING. Needs no generated protos: the
    request is empty and SERVING is field 1 = 1. With `proc` (the server's Popen), stops as
    soon as the server exits and says how, with the end of `log_path` when given."""
    import grpc

    def log_tail():
        if log_path is None or not os.path.exists(log_path):
            return ""
        with open(log_path, errors="replace") as f:
            return "\n--- end of " + log_path + " ---\n" + "".join(f.readlines()[-15:])

    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{addr}: the server exited with {proc.returncode} before it served{log_tail()}")
        # A new channel each time: one channel's reconnect backoff would grow to seconds.
        channel = grpc.insecure_channel(addr)
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda _: b"",
                                    response_deserializer=lambda b: b)
        try:
            if check(None, timeout=0.5) == b"\x08\x01":
                return channel
        except grpc.RpcError:
            pass
        channel.close()
        time.sleep(0.05)
    raise RuntimeError(f"{addr} did not become healthy in {seconds} s{log_tail()}")


class LineReader:
    """Lines of a child's binary stdout pipe, each waited for with a deadline: a bare readline()
    blocks for ever when the child prints nothing (hung, or waiting on input itself)."""

    def __init__(self, stream, what):
        self.fd, self.what, self.buf = stream.fileno(), what, b""

    def line(self, seconds):
        """The next line (decoded, without its newline); AssertionError naming `what` and what
        arrived so far when none is complete within `seconds` or the stream ends first."""
        import select
        deadline = time.time() + seconds
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"{self.what}: no line within {seconds} s (so far: {self.buf[-500:]!r})")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise AssertionError(f"{self.what}: output ended before a line (so far: {self.buf[-500:]!r})")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def crmd_bench_parser(doc, crmd=True):
    """An argument parser with --crmd (unless `crmd` is false), --crmctl and --bench
    (crm-bench), for the scripts that load crmd or the services; `doc` (the script's
    docstring) is its description."""
    import argparse
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if crmd:
        ap.add_argument("--crmd", required=True)
    ap.add_argument("--crmctl", required=True)
    ap.add_argument("--bench", required=True, help="crm-bench")
    return ap


def run_checked(cmd, env, what, ok=(0,), timeout=600):
    """Runs `cmd` with its output captured; AssertionError naming `what`, with the tail of
    stdout and stderr, unless the exit code is in `ok`."""
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode not in ok:
        raise AssertionError(f"{what}: exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def day_check(bench, target_args, journals, env, what, extra=(), timeout=600):
    """crm-bench --workload day-check of `journals` against the services in `target_args`
    (--target, --token and the per-service targets). Returns its one-line summary and the
    number of unanswered creates it sent again."""
    cmd = [bench, "--workload", "day-check", *target_args, *extra]
    for j in journals:
        cmd += ["--journal", j]
    out = run_checked(cmd, env, what, timeout=timeout).stdout.strip()
    return out, int(out.split("(")[1].split()[0])


def acknowledged_writes(journal):
    """The writes a day's journal records as acknowledged (its V and F lines)."""
    with open(journal) as f:
        return sum(1 for ln in f if ln[:1] in "VF")


def wait_for_load(bench, journal, log_path, seconds=60):
    """Waits until crm-bench's day `bench` created its `journal` (it does so once its set-up is
    done and the load starts); AssertionError with the end of `log_path` when it exits first or
    `seconds` pass."""
    deadline = time.time() + seconds
    while not os.path.exists(journal) and bench.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    if not os.path.exists(journal):
        with open(log_path, errors="replace") as f:
            raise AssertionError(f"the day did not start within {seconds} s (exit {bench.poll()}): {f.read()[-2000:]}")


def kill_load(bench, log_path, what, alive):
    """Kills crm-bench's load `bench` (a Popen whose stderr goes to `log_path`) after a crash
    trial's kill. AssertionError when it was not running just before that kill (`alive` false:
    it stopped by itself) or when it wrote an error of its own ("error: ..."): calls failing
    because the server died are expected, crm-bench failing is not."""
    bench.kill()
    bench.wait()
    with open(log_path, errors="replace") as f:
        text = f.read()
    assert alive, f"{what}: crm-bench exited by itself ({bench.returncode}) before the kill:\n{text[-2000:]}"
    own = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert not own, f"{what}: crm-bench reported errors of its own: {own[:5]}"


def forged_journal_control(bench, target_args, journal, forged_path, env):
    """Proof that day-check catches a loss: a journal claiming a version past the one stored for
    a customer acknowledged in `journal`, and a customer created that never was, must both be
    reported (exit 4). AssertionError otherwise."""
    with open(journal) as f:
        name, version = next(ln.split()[1:3] for ln in f if ln.startswith("V customers/"))
    with open(forged_path, "w") as f:
        f.write(f"V {name} {int(version) + 1000}\nI 999999999 forged-request\n"
                "C customers/forged 999999999 forged-request\n")
    r = run_checked([bench, "--workload", "day-check", *target_args, "--journal", forged_path], env,
                    "day-check of a forged journal", ok=(4,))
    assert f"{name} acknowledged at version" in r.stderr and "customer 999999999" in r.stderr, r.stderr


def crmd_test_args():
    """The flags of a test against crmd: --crmd, --crmctl, --protoc, --proto-root, --google-protos."""
    import argparse
    ap = argparse.ArgumentParser()
    for flag in ("--crmd", "--crmctl", "--protoc", "--proto-root", "--google-protos"):
        ap.add_argument(flag, required=True)
    return ap.parse_args()


class Crmd:
    """crmd on 127.0.0.1:<port> with its data under `data`, signing key `key`, the scheduler every
    second, `extra_args` after the rest of its flags and its output appended to `log_path`.
    start() returns once it is healthy."""

    def __init__(self, binary, data, key, log_path, metrics_listen="", extra_args=()):
        self.binary, self.data, self.key, self.log_path = binary, data, key, log_path
        self.metrics_listen = metrics_listen
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.dashboard_port = free_port()  # the web dashboard, kept across restarts
        self.p = None
        self.channel = None

    def start(self):
        self.p = subprocess.Popen([self.binary, "--data-dir", self.data, "--listen", self.addr,
                                   "--metrics-listen", self.metrics_listen,
                                   "--dashboard-listen", f"127.0.0.1:{self.dashboard_port}", "--scheduler-interval", "1"]
                                  + self.extra_args,
                                  env=dict(os.environ, CRM_SIGNING_KEY=self.key),
                                  stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT)
        self.channel = wait_healthy(self.addr, proc=self.p, log_path=self.log_path)

    def stop(self, sig=signal.SIGTERM):
        self.p.send_signal(sig)
        self.p.wait(timeout=30)

    def running(self):
        return self.p is not None and self.p.poll() is None

    def close(self):
        """Stops crmd if it still runs (a check may have stopped, killed or restarted it); kills
        it when it does not stop in time, so no test leaves a crmd behind."""
        if not self.running():
            return
        try:
            self.stop()
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=30)
            raise

    def __enter__(self):
        """`with crmd:` starts it and stops it however the block ends, a failed start included."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start_until_exit(self):
        """start() for a test written as a module-level script: crmd is stopped when the
        interpreter exits, however the script ends (a failed setup or check included)."""
        atexit.register(self.close)
        self.start()


def unary(channel, service, method, req_cls, resp_cls):
    return channel.unary_unary(f"/{service}/{method}", request_serializer=req_cls.SerializeToString,
                               response_deserializer=resp_cls.FromString)


SERVICES = {
    "customers": "crm.customers.v1.CustomerService", "leads": "crm.customers.v1.LeadService",
    "opportunities": "crm.opportunities.v1.OpportunityService", "quotes": "crm.opportunities.v1.QuoteService",
    "contracts": "crm.opportunities.v1.ContractService", "tasks": "crm.tasks.v1.TaskService",
    "automation": "crm.tasks.v1.AutomationService",
    "ticket_types": "crm.tickets.v1.TicketTypeService",
    "tickets": "crm.tickets.v1.TicketService", "sla": "crm.tickets.v1.SlaService",
    "analytics": "crm.analytics.v1.AnalyticsService",
}


def caller(channel_of, default_md, timeout=10):
    """call(service, method, req, resp_cls, md=default_md): one unary call, `service` a key of
    SERVICES; `channel_of()` gives the channel, so calls after a restart reach the new server."""
    def call(service, method, req, resp_cls, md=None):
        return unary(channel_of(), SERVICES[service], method, type(req), resp_cls)(
            req, metadata=default_md if md is None else md, timeout=timeout)
    return call


def status_details(err, status_pb):
    for k, v in err.trailing_metadata() or ():
        if k == "grpc-status-details-bin":
            st = status_pb.Status()
            st.ParseFromString(v)
            return st
    return None


def code_of(fn):
    """The gRPC status code `fn` fails with; AssertionError when it succeeds."""
    import grpc
    try:
        fn()
    except grpc.RpcError as e:
        return e.code()
    raise AssertionError("accepted")


def fields_of(fn, modules):
    """The fields, in order, that the google.rpc.BadRequest of the INVALID_ARGUMENT `fn` fails with
    names; AssertionError when it succeeds or fails otherwise."""
    import grpc
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
        bad = modules.details.BadRequest()
        assert any(d.Unpack(bad) for d in status_details(e, modules.status).details if d.Is(bad.DESCRIPTOR))
        return [v.field for v in bad.field_violations]
    raise AssertionError("accepted")
