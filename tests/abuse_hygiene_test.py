#!/usr/bin/python3
"""Hostile input and hygiene against crmd (issue 25), with crmd and crmctl started under the
usual umask 022:

- crmd's data folder, including one an older version left at 0755/0644, ends up 0700 with
  every file 0600 (log, projections, signing key); crmctl's export is 0600 too.
- Bearer tokens: a huge exp (2^62, 2^64-1), a lifetime past the 24 h default, an iat or nbf in
  the future beyond the clock skew and a token without exp are refused with UNAUTHENTICATED;
  `crmctl token` will not mint past the maximum unless told the servers' maximum; crmd refuses
  a bad --max-token-lifetime with one JSON line and exit code 2.
- Requests that are no protobuf of the method's type (garbage bytes, a proto3 string with
  invalid UTF-8) get INVALID_ARGUMENT naming the request type, and crmd serves on.
- Every line crmd writes to stdout and to stderr is a JSON object (protobuf's complaint about
  the invalid UTF-8 included).

Run with /usr/bin/python3. Prints "N passed, N failed" and exits non-zero on failure.
"""
import hashlib
import hmac
import json
import os
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import (b64url, check, crmd_test_args, free_port, generate_protos, summary,  # noqa: E402
                         wait_healthy, work_dir)

GET = "/crm.customers.v1.CustomerService/GetCustomer"
CREATE = "/crm.customers.v1.CustomerService/CreateCustomer"


def signed(key, claims):
    """A token with exactly `claims`, signed as our servers sign (HS256)."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    sig = hmac.new(key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def usual_umask():
    os.umask(0o022)


def main():
    args = crmd_test_args()
    work = work_dir("crm-abuse-hygiene-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc

    data = os.path.join(work, "data")
    out_path, err_path = os.path.join(work, "crmd.out"), os.path.join(work, "crmd.err")
    # The data folder as an older version left it: world-readable folder and file.
    os.makedirs(os.path.join(data, "customers"))
    os.chmod(data, 0o755)
    os.chmod(os.path.join(data, "customers"), 0o755)
    with open(os.path.join(data, "notes.txt"), "w") as f:
        f.write("written by an older version\n")
    os.chmod(os.path.join(data, "notes.txt"), 0o644)

    env = {k: v for k, v in os.environ.items() if k != "CRM_SIGNING_KEY"}
    port = free_port()
    addr = f"127.0.0.1:{port}"
    crmd = subprocess.Popen([args.crmd, "--data-dir", data, "--create-key", "--listen", addr, "--metrics-listen", "",
                             "--dashboard-listen", "", "--scheduler-interval", "0"],
                            env=env, stdout=open(out_path, "w"), stderr=open(err_path, "w"), preexec_fn=usual_umask)
    state = {}
    try:
        channel = wait_healthy(addr, proc=crmd, log_path=out_path)
        with open(os.path.join(data, "signing.key")) as f:
            key = f.read().strip()
        now = int(time.time())
        good = [("authorization", "Bearer " + signed(key, {"sub": "u1", "role": "admin", "iat": now,
                                                           "exp": now + 3600}))]
        svc = m.svc
        list_customers = channel.unary_unary("/crm.customers.v1.CustomerService/ListCustomers",
                                             request_serializer=svc.ListCustomersRequest.SerializeToString,
                                             response_deserializer=svc.ListCustomersResponse.FromString)
        raw = {path: channel.unary_unary(path) for path in (GET, CREATE)}

        def code_and_details(fn):
            try:
                fn()
            except grpc.RpcError as e:
                return e.code(), e.details()
            return grpc.StatusCode.OK, ""

        def data_folder_is_private():
            modes = {}
            for root, dirs, files in os.walk(data):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    st = os.lstat(path)
                    if not stat.S_ISLNK(st.st_mode):
                        modes[os.path.relpath(path, data)] = stat.S_IMODE(st.st_mode)
            modes["."] = stat.S_IMODE(os.lstat(data).st_mode)
            assert any(p.startswith("log" + os.sep) for p in modes), sorted(modes)
            loose = {p: oct(mo) for p, mo in modes.items() if mo & 0o077}
            assert not loose, f"group/other permissions left: {loose}"
            for p in (".", "customers", "log"):
                assert modes[p] == 0o700, (p, oct(modes[p]))
            for p in ("signing.key", "notes.txt"):
                assert modes[p] == 0o600, (p, oct(modes[p]))
            print(f"    {len(modes)} folders and files, none readable by group or others")

        def crmctl_export_is_private():
            out = os.path.join(work, "export.csv")
            r = subprocess.run([args.crmctl, "--addr", addr, "--token", good[0][1][len("Bearer "):], "customers",
                                "export", "-f", out], env=env, capture_output=True, text=True, timeout=30,
                               preexec_fn=usual_umask)
            assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
            assert stat.S_IMODE(os.stat(out).st_mode) == 0o600, oct(os.stat(out).st_mode)

        def call_with(claims):
            md = [("authorization", "Bearer " + signed(key, claims))]
            return code_and_details(lambda: list_customers(svc.ListCustomersRequest(), metadata=md, timeout=10))

        def tokens_past_their_limits_are_refused():
            t = int(time.time())
            base = {"sub": "u1", "role": "admin"}
            assert call_with({**base, "iat": t, "exp": t + 3600})[0] == grpc.StatusCode.OK
            assert call_with({**base, "nbf": t + 20, "exp": t + 3600})[0] == grpc.StatusCode.OK  # within the skew
            refused = {
                "exp 2^62": {**base, "exp": 2 ** 62},
                "exp 2^64-1": {**base, "exp": 2 ** 64 - 1},
                "exp in 48 h, no iat": {**base, "exp": t + 48 * 3600},
                "iat an hour ago, exp 25 h after it": {**base, "iat": t - 3600, "exp": t + 24 * 3600},
                "iat in 10 min": {**base, "iat": t + 600, "exp": t + 3600},
                "nbf in 10 min": {**base, "nbf": t + 600, "exp": t + 3600},
                "no exp": {**base, "iat": t},
                "exp a float": {**base, "exp": t + 3600.5},
            }
            for what, claims in refused.items():
                code, details = call_with(claims)
                assert code == grpc.StatusCode.UNAUTHENTICATED, (what, code, details)
            code, details = call_with(refused["exp 2^62"])
            assert "lifetime exceeds the maximum of 24h" in details, details
            assert "nbf" in call_with(refused["nbf in 10 min"])[1]

        def crmctl_token_stays_within_the_maximum():
            def token(*extra):
                return subprocess.run([args.crmctl, "token", "--key-file", os.path.join(data, "signing.key"),
                                       "--sub", "u1", "--role", "admin", *extra],
                                      env=env, capture_output=True, text=True, timeout=30)
            r = token()
            assert r.returncode == 0, r.stderr
            md = [("authorization", "Bearer " + r.stdout.strip())]
            list_customers(svc.ListCustomersRequest(), metadata=md, timeout=10)
            r = token("--ttl", "48h")
            assert r.returncode == 2 and "--max-lifetime" in r.stderr and r.stdout == "", (r.returncode, r.stderr)
            r = token("--ttl", "48h", "--max-lifetime", "72h")
            assert r.returncode == 0, r.stderr
            md = [("authorization", "Bearer " + r.stdout.strip())]
            code, _ = code_and_details(lambda: list_customers(svc.ListCustomersRequest(), metadata=md, timeout=10))
            assert code == grpc.StatusCode.UNAUTHENTICATED, code  # crmd keeps its 24 h
            r = token("--max-lifetime", "forever")
            assert r.returncode == 2, r.returncode

        def crmd_refuses_a_bad_maximum_lifetime():
            for bad in ("0", "-1h", "forever", "9000h"):
                r = subprocess.run([args.crmd, "--data-dir", os.path.join(work, "unused"), "--listen", "127.0.0.1:0",
                                    "--max-token-lifetime", bad], env=env, capture_output=True, text=True, timeout=30)
                assert r.returncode == 2, (bad, r.returncode, r.stderr)
                lines = r.stderr.splitlines()
                assert len(lines) == 1, (bad, r.stderr)
                line = json.loads(lines[0])
                assert line["level"] == "error" and "--max-token-lifetime" in line["msg"], line
            assert not os.path.exists(os.path.join(work, "unused")), "it made a data folder before refusing"

        def undecodable_requests_get_invalid_argument():
            req = svc.CreateCustomerRequest(customer=svc.Customer(display_name="ZZZZ", owner_id="u1"))
            bad_utf8_create = req.SerializeToString().replace(b"ZZZZ", b"\xff\xfe\xfd\xfc")
            cases = [(GET, b"\x0a\x02\xff\xfe", "GetCustomerRequest"),        # name: not UTF-8
                     (GET, b"\x0a\x64abc", "GetCustomerRequest"),             # a field longer than the message
                     (GET, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "GetCustomerRequest"),  # a bad tag
                     (CREATE, bad_utf8_create, "CreateCustomerRequest")]
            state["garbage_sent"] = True
            for path, body, type_name in cases:
                code, details = code_and_details(lambda: raw[path](body, metadata=good, timeout=10))
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (path, body, code, details)
                assert f"not a valid crm.customers.v1.{type_name} message" in details, details
            # Nothing was written, and crmd serves on.
            assert len(list_customers(svc.ListCustomersRequest(), metadata=good, timeout=10).customers) == 0

        def every_output_line_is_json():
            crmd.send_signal(signal.SIGTERM)
            assert crmd.wait(timeout=30) == 0, crmd.returncode
            levels = []
            for path in (out_path, err_path):
                with open(path, "rb") as f:
                    for n, line in enumerate(f.read().decode("utf-8").splitlines(), 1):
                        try:
                            obj = json.loads(line)
                        except ValueError:
                            raise AssertionError(f"{os.path.basename(path)}:{n} is not JSON: {line[:200]!r}")
                        assert isinstance(obj, dict) and {"time", "level", "msg"} <= obj.keys(), line
                        levels.append((obj["level"], obj["msg"]))
            if state.get("garbage_sent"):
                assert any(lv == "error" and msg.startswith("protobuf:") and "invalid UTF-8" in msg
                           for lv, msg in levels), "protobuf's complaint is missing from the JSON log"
            print(f"    {len(levels)} lines, each a JSON object")

        check("crmd's data folder is private, an older version's loose modes tightened", data_folder_is_private)
        check("crmctl's export is private", crmctl_export_is_private)
        check("tokens with a huge exp, a long lifetime, a future iat/nbf or no exp are refused",
              tokens_past_their_limits_are_refused)
        check("crmctl token mints no token past the maximum unless told the servers' maximum",
              crmctl_token_stays_within_the_maximum)
        check("crmd refuses a bad --max-token-lifetime with one JSON line", crmd_refuses_a_bad_maximum_lifetime)
        check("garbage bytes and invalid UTF-8 get INVALID_ARGUMENT naming the request type",
              undecodable_requests_get_invalid_argument)
        check("every line on crmd's stdout and stderr is JSON", every_output_line_is_json)
    finally:
        if crmd.poll() is None:
            crmd.kill()
            crmd.wait(timeout=10)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
