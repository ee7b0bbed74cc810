#!/usr/bin/python3
"""Fails when an rpc of proto/crm/*/v1/*_service.proto has no test calling it, both through its
service's engine (C++) and over the wire (Python). The rpc_test_coverage test runs it.

An rpc `S.M` (service S of package crm.<svc>.v1) passes when both hold:

  - C++: a `*_test.cc` under services/ or tests/ that includes (directly or through repository
    headers) the header of the class serving M calls its method serving M: the last argument
    of M's `CRM_SERVE_*` line in services/<svc>/<svc>_service.cc, or M itself for the
    streaming rpcs served without one. The class is the engine (the type of the `engine_`
    member of S's class in services/<svc>/<svc>_service.h) for `CRM_SERVE_READ`/`WRITE`; the
    type of `queries_` for `CRM_SERVE_QUERY`; for `CRM_SERVE_READ_ON`/`WRITE_ON`, the member
    named or the class its accessor returns (`&engine_->leads()`: `LeadCommands`). A
    call is `E::method` followed by `,` or `)` (a member pointer handed to a helper such as
    `Sync(&TicketEngine::GetCalendar, ...)`) or `.method(` / `->method(`. Comments and string
    literals do not count. The streaming rpcs' handlers call the entry points in STREAMING;
    the check fails (exit 2) when the service source no longer calls them, so the table cannot go
    stale.
  - Python: a `tests/*.py` that spells S's full name (`crm.<svc>.v1.S`, e.g. in its call helper)
    contains a call expression (parsed with `ast`) whose callee is the attribute `M`
    (`stub.M(...)`) or which passes the string "M" as a positional argument
    (`call("crm.tickets.v1.SlaService", "M", ...)`, `sla("M", ...)`).

Limits, so that nobody reads more into a pass: a call is not an assertion about its result (the
reviewer checks that), and the Python rule cannot tell apart two services of one file that share
a method name (ListEvents); the C++ rule can, through the engine class.

  /usr/bin/python3 tools/check_rpc_tests.py [--root DIR] [--proto FILE ...] [--control]

`--proto` checks the given service protos instead of proto/crm/*/v1/*_service.proto. `--control`
(what the rpc_test_coverage test runs) first checks a copy of tasks_service.proto with one rpc
added that nothing calls, and fails unless exactly that rpc is reported, twice (C++ and Python):
a check that cannot fail proves nothing. Exit 0 when every rpc passes, 1 with one line per
missing test otherwise, 2 when the sources cannot be read as expected or the control fails.
"""
import argparse
import ast
import pathlib
import re
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Streaming rpcs (no CRM_SERVE_* line): the service member and its method their handler starts with.
STREAMING = {"ImportCustomers": ("engine_", "StartImport"), "ExportCustomers": ("queries_", "Export")}

COMMENT = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"', re.S)


def strip_cc(text):
    """C++ text without comments and string literals (each replaced by a space)."""
    return COMMENT.sub(" ", text)


def strip_proto(text):
    return re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)


def proto_services(path):
    """(package, {service: [rpc]}) of one *_service.proto."""
    text = strip_proto(path.read_text(encoding="utf-8"))
    pkg = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M)
    if not pkg:
        raise ValueError(f"{path}: no package")
    services = {}
    # Service bodies hold rpcs with `{ option ... }` blocks: cut at each `service` keyword.
    parts = re.split(r"\bservice\s+(\w+)\s*\{", text)
    for name, body in zip(parts[1::2], parts[2::2]):
        services[name] = re.findall(r"\brpc\s+(\w+)\s*\(", body)
    return pkg.group(1), services


def engine_bindings(root, svc_dir, package):
    """{service: {rpc: (class, its header, method)}} for one services/<svc>/: the class whose
    method serves each rpc (the engine, or a part of it such as a query side or a command
    handler); an rpc not listed is served by the engine's method of its own name."""
    header = root / "services" / svc_dir / f"{svc_dir}_service.h"
    source = root / "services" / svc_dir / f"{svc_dir}_service.cc"
    if not header.exists() or not source.exists():
        raise ValueError(f"{header} or {source} missing")
    h = strip_cc(header.read_text(encoding="utf-8"))
    cc = strip_cc(source.read_text(encoding="utf-8"))
    # class FooService final : public v1::CustomerService::CallbackService { ... Engine* engine_;
    classes = {}
    pieces = re.split(r"\bclass\s+(\w+)\s+final\s*:\s*public\s+v1::(\w+)::CallbackService", h)
    for cls, proto_svc, body in zip(pieces[1::3], pieces[2::3], pieces[3::3]):
        members = dict((m, t) for t, m in re.findall(r"(?:const\s+)?(\w+)\s*\*\s*(\w+_)\s*;", body))
        if "engine_" not in members:
            raise ValueError(f"{header}: {cls} has no engine_ member")
        classes[cls] = (proto_svc, members)

    def part(cls, receiver):
        """The class a CRM_SERVE_*_ON receiver (`engine_`, `queries_`, `&engine_->leads()`) is."""
        members = classes[cls][1]
        m = re.fullmatch(r"\s*&?\s*(\w+_)\s*(?:->\s*(\w+)\s*\(\s*\))?\s*", receiver)
        if not m or m.group(1) not in members:
            raise ValueError(f"{source}: {cls} serves through '{receiver}', which names no member")
        owner = members[m.group(1)]
        if not m.group(2):
            return owner
        owner_h = strip_cc((root / engine_header(root, svc_dir, owner)).read_text(encoding="utf-8"))
        a = re.search(rf"(\w+)\s*&\s*{m.group(2)}\s*\(\s*\)", owner_h)
        if not a:
            raise ValueError(f"{source}: {owner}::{m.group(2)}() returns no class by reference")
        return a.group(1)

    serve = {}
    for cls, rpc, method in re.findall(
            r"CRM_SERVE_(?:READ|WRITE)\(\s*(\w+)\s*,\s*(\w+)\s*,[^;]*?,\s*(\w+)\s*\)", cc):
        serve[(cls, rpc)] = ("engine_", method)
    for receiver, cls, rpc, method in re.findall(
            r"CRM_SERVE_(?:READ|WRITE)_ON\(\s*\(([^()]*(?:\(\s*\))?[^()]*)\)\s*,\s*(\w+)\s*,\s*(\w+)\s*,[^;]*?,\s*(\w+)\s*\)",
            cc):
        serve[(cls, rpc)] = (receiver, method)
    for cls, rpc, method in re.findall(
            r"CRM_SERVE_QUERY\(\s*(\w+)\s*,\s*(\w+)\s*,[^;]*?,\s*(\w+)\s*\)", cc):
        serve[(cls, rpc)] = ("queries_", method)
    for rpc, (member, method) in STREAMING.items():
        # The member itself, or a parameter named after it (`engine` for `engine_`).
        if f"::{rpc}(" in cc and not re.search(rf"\b{member.rstrip('_')}_?\s*(?:->|\.){method}\s*\(", cc):
            raise ValueError(f"{source}: {rpc} no longer calls {member}{method}(): update STREAMING")
    out = {}
    for cls, (proto_svc, members) in classes.items():
        engine = members["engine_"]
        served = {rpc: (part(cls, receiver), method) for (c, rpc), (receiver, method) in serve.items() if c == cls}
        served.update({rpc: (part(cls, member), method) for rpc, (member, method) in STREAMING.items()
                       if f"{cls}::{rpc}(" in cc})
        out[proto_svc] = (engine, {rpc: (k, engine_header(root, svc_dir, k), m) for rpc, (k, m) in served.items()})
    return out


def engine_header(root, svc_dir, engine):
    """Repository path of the header declaring `class engine`."""
    for h in sorted((root / "services" / svc_dir).glob("*.h")):
        if re.search(rf"\bclass\s+{engine}\b[^;]*\{{", strip_cc(h.read_text(encoding="utf-8"))):
            return h.relative_to(root).as_posix()
    raise ValueError(f"services/{svc_dir}: no header declares class {engine}")


def includes(root, raw):
    """The repository headers `raw` includes, directly or through other repository headers."""
    seen, todo = set(), re.findall(r'#include\s+"([^"]+)"', raw)
    while todo:
        h = todo.pop()
        if h in seen or not (root / h).is_file():
            continue
        seen.add(h)
        todo.extend(re.findall(r'#include\s+"([^"]+)"', (root / h).read_text(encoding="utf-8")))
    return seen


def cc_tests(root):
    files = sorted(root.glob("services/**/*_test.cc")) + sorted(root.glob("tests/**/*_test.cc"))
    out = []
    for f in files:
        raw = f.read_text(encoding="utf-8")
        out.append((f.relative_to(root).as_posix(), includes(root, raw), strip_cc(raw)))
    return out


def cc_calls(text, engine, method):
    return re.search(rf"\b{engine}::{method}\s*[,)]|(?:\.|->){method}\s*\(", text) is not None


def py_calls(root):
    """[(file, {rpc names the file calls})] for tests/*.py."""
    out = []
    for f in sorted((root / "tests").glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), filename=str(f))):
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Attribute):
                    names.add(node.func.attr)
                args = node.args
            elif isinstance(node, (ast.Tuple, ast.List)):
                args = node.elts
            else:
                continue
            for a in args:
                if isinstance(a, ast.JoinedStr) and a.values:
                    a = a.values[-1]
                if isinstance(a, ast.Constant) and isinstance(a.value, str):
                    names.add(a.value.rsplit("/", 1)[-1])
        out.append((f.relative_to(root).as_posix(), names))
    return out


def missing_tests(root, protos):
    """(rpcs checked, [one line per missing test]); ValueError etc. when sources do not parse."""
    cc = cc_tests(root)
    py = py_calls(root)
    missing, total = [], 0
    for proto in protos:
        package, services = proto_services(proto)
        svc_dir = package.split(".")[1]
        bindings = engine_bindings(root, svc_dir, package)
        for service, rpcs in services.items():
            if service not in bindings:
                raise ValueError(f"services/{svc_dir}/{svc_dir}_service.h: no class serves {service}")
            engine, served = bindings[service]
            full = f"{package}.{service}"
            for rpc in rpcs:
                total += 1
                cls, header, method = served.get(rpc, (engine, engine_header(root, svc_dir, engine), rpc))
                if not any(header in inc and cc_calls(text, cls, method) for _, inc, text in cc):
                    missing.append(f"{full}.{rpc}: no *_test.cc including {header} calls {cls}::{method}")
                if not any(rpc in names for _, names in py):
                    missing.append(f"{full}.{rpc}: no tests/*.py calls {rpc}")
    return total, missing


CONTROL_RPC = "NobodyTestsThisRpc"


def control(root):
    """The check on a copy of tasks_service.proto with CONTROL_RPC added: "" when it reports
    exactly that rpc, C++ and Python, else what went wrong."""
    src = (root / "proto/crm/tasks/v1/tasks_service.proto").read_text(encoding="utf-8")
    added = re.sub(r"(\bservice\s+AutomationService\s*\{)",
                   rf"\1\n  rpc {CONTROL_RPC}(GetRuleRequest) returns (Rule) {{}}", src, count=1)
    if added == src:
        return "tasks_service.proto has no AutomationService to add the control rpc to"
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "tasks_service.proto"
        copy.write_text(added, encoding="utf-8")
        _, missing = missing_tests(root, [copy])
    want = [f"crm.tasks.v1.AutomationService.{CONTROL_RPC}: no *_test.cc including services/tasks/task_engine.h "
            f"calls TaskEngine::{CONTROL_RPC}", f"crm.tasks.v1.AutomationService.{CONTROL_RPC}: no tests/*.py calls "
            f"{CONTROL_RPC}"]
    return "" if missing == want else f"expected only the control rpc reported, got {missing}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=pathlib.Path, default=ROOT)
    ap.add_argument("--proto", type=pathlib.Path, action="append",
                    help="a *_service.proto to check instead of the repository's (repeatable)")
    ap.add_argument("--control", action="store_true", help="first show the check failing on an untested rpc")
    args = ap.parse_args()
    root = args.root.resolve()
    protos = args.proto or sorted(root.glob("proto/crm/*/v1/*_service.proto"))
    if not protos:
        print(f"check_rpc_tests: no service protos under {root}/proto", file=sys.stderr)
        return 2
    try:
        if args.control:
            if problem := control(root):
                print(f"check_rpc_tests: control failed: {problem}", file=sys.stderr)
                return 2
            print(f"check_rpc_tests: control: an added {CONTROL_RPC} is reported (C++ and Python)", file=sys.stderr)
        total, missing = missing_tests(root, protos)
    except (OSError, ValueError, SyntaxError) as e:
        print(f"check_rpc_tests: {e}", file=sys.stderr)
        return 2
    for line in missing:
        print(line)
    print(f"check_rpc_tests: {total} rpcs, {len(missing)} missing tests", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
