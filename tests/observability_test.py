"""Observability against a real Prometheus: crmd serves calls, Debian's prometheus scrapes its
/metrics every second, and the key series are there with their labels; `promtool check
metrics` accepts the exposition; every query of the Grafana dashboard
(deploy/grafana/crm-backbone.json) is valid PromQL that Prometheus evaluates, over series
that exist.

Run with Debian's /usr/bin/python3.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import Crmd, check, free_port, generate_protos, mint_token, summary, unary, work_dir  # noqa: E402

DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "grafana", "crm-backbone.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crmd", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--google-protos", required=True)
    args = ap.parse_args()
    work = work_dir("crm-observability-")
    m = generate_protos(work, args.protoc, args.proto_root, args.google_protos)
    import grpc  # noqa: E402

    key = "o" * 48
    metrics_port, prom_port = free_port(), free_port()
    crmd = Crmd(args.crmd, os.path.join(work, "data"), key, os.path.join(work, "crmd.log"),
                metrics_listen=f"127.0.0.1:{metrics_port}")
    md = [("authorization", "Bearer " + mint_token(key, "u1", "rep", "east"))]
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: crmd
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]
""")
    prom = None

    def query(expr):
        """Prometheus's answer; {} while it is still starting (no listener, or 503 with text)."""
        url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return json.loads(body)
            except ValueError:
                return {}
        except (urllib.error.URLError, ConnectionError):
            return {}

    def eventually(fn, what, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if fn():
                return
            time.sleep(0.5)
        raise AssertionError(what)

    with crmd:
        try:
            prom = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work}/tsdb",
                                     f"--web.listen-address=127.0.0.1:{prom_port}"],
                                    stdout=open(os.path.join(work, "prometheus.log"), "w"), stderr=subprocess.STDOUT)

            def calls_are_served():
                create = unary(crmd.channel, "crm.customers.v1.CustomerService", "CreateCustomer",
                               m.svc.CreateCustomerRequest, m.svc.Customer)
                for i in range(5):
                    create(m.svc.CreateCustomerRequest(customer=m.svc.Customer(
                        display_name=f"观测公司{i}", phone=f"1381111000{i}")), metadata=md, timeout=10)
                get = unary(crmd.channel, "crm.customers.v1.CustomerService", "GetCustomer", m.svc.GetCustomerRequest,
                            m.svc.Customer)
                try:
                    get(m.svc.GetCustomerRequest(name="customers/nope"), metadata=md, timeout=10)
                except grpc.RpcError as e:
                    assert e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), e.code()

            def promtool_accepts_the_exposition():
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
                    text = r.read()
                out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
                assert out.returncode == 0, (out.stdout, out.stderr)

            def prometheus_scrapes_the_key_series():
                def result(expr):
                    return query(expr).get("data", {}).get("result")
                eventually(lambda: (result('up{job="crmd"}') or [{"value": [0, "0"]}])[0]["value"][1] == "1",
                           "prometheus never scraped crmd", seconds=60)
                eventually(lambda: result('grpc_server_handled_total{grpc_method="CreateCustomer",grpc_code="OK"}'),
                           "no CreateCustomer series")
                r = query('grpc_server_handled_total{grpc_method="CreateCustomer",grpc_code="OK"}')["data"]["result"][0]
                assert r["metric"]["grpc_service"] == "crm.customers.v1.CustomerService" and float(r["value"][1]) >= 5, r
                assert query('grpc_server_handled_total{grpc_method="GetCustomer",grpc_code!="OK"}')["data"]["result"]
                assert query("grpc_server_handling_seconds_bucket")["data"]["result"]
                appends = query('crm_log_append_seconds_count{topic="crm.customers.events.v1"}')["data"]["result"]
                assert appends and float(appends[0]["value"][1]) >= 5, appends
                lags = {x["metric"]["projection"] for x in query("crm_projection_lag_records")["data"]["result"]}
                for p in ("customers", "opportunities", "tasks", "tickets"):
                    assert any(x.startswith(p) or p in x for x in lags), (p, lags)
                assert query("crm_automation_pending_actions")["data"]["result"]
                kernel = query('crm_kernel_appends_total{service="customers"}')["data"]["result"]
                assert kernel and float(kernel[0]["value"][1]) >= 5, kernel
                served = {x["metric"]["service"] for x in query("crm_kernel_state_reads_total")["data"]["result"]}
                assert served == {"customers", "opportunities", "tasks", "tickets"}, served

            def every_dashboard_query_evaluates_over_existing_series():
                with open(DASHBOARD) as f:
                    dash = json.load(f)
                exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
                assert len(exprs) >= 8, exprs
                names = set()
                for e in exprs:
                    concrete = e.replace("$job", ".*")
                    r = query(concrete)
                    assert r["status"] == "success", (e, r)
                    names.update(re.findall(r"\b((?:grpc_server|crm)_[a-z_]+)", e))
                for n in sorted(names):
                    series = query(f'count({{__name__="{n}"}})')["data"]["result"]
                    if n == "crm_sla_notices_total":
                        continue  # a counter with a series per kind, present only once a notice was recorded
                    assert series, f"the dashboard queries {n}, which crmd does not expose"

            check("calls are served", calls_are_served)
            check("promtool check metrics accepts the exposition", promtool_accepts_the_exposition)
            check("prometheus scrapes the key series with their labels", prometheus_scrapes_the_key_series)
            check("every dashboard query evaluates over series crmd exposes",
                  every_dashboard_query_evaluates_over_existing_series)
        finally:
            if prom is not None:
                prom.terminate()
                prom.wait(timeout=20)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
