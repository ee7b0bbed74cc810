#!/usr/bin/python3
"""crmctl, the user CLI, carries no service engine: it calls the servers through the generated
stubs, and the offline verbs that fold events with the engines' projections live in crm-ops,
which crmctl runs (issue 27). Fails when the binary's link line in build.ninja names one of the
--forbid libraries, or when the binary defines a function that one of them defines (their code
came in some other way, e.g. a source file compiled into crmctl's own library).

--control BINARY runs the same check on a binary that must fail it (crm-ops, which links the
engines): if the control passes, the check is broken and this script fails too.

Run with /usr/bin/python3. Exit 0 when clean, 1 with one line per finding.
"""
import argparse
import os
import subprocess
import sys


def link_inputs(build_dir, binary):
    """The files build.ninja's link statement of `binary` names (build-relative paths)."""
    target = os.path.relpath(binary, build_dir)
    block, inside = [], False
    with open(os.path.join(build_dir, "build.ninja"), encoding="utf-8") as f:
        for line in f:
            if line.startswith(f"build {target}:"):
                inside = True
            elif inside and not line.startswith(" "):
                break
            if inside:
                block.append(line)
    if not block:
        sys.exit(f"check_crmctl_deps: no link statement for {target} in {build_dir}/build.ninja")
    return {tok for ln in block for tok in ln.split()}


def strong_functions(path, archive):
    """The mangled names of the global functions `path` defines (weak inline copies left out)."""
    args = ["nm", "--defined-only"] + (["--extern-only"] if archive else []) + [path]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    names = set()
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) == 3 and parts[1] == "T":
            names.add(parts[2])
    return names


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def findings(binary, build_dir, forbidden):
    problems = []
    inputs = {os.path.basename(t) for t in link_inputs(build_dir, binary)}
    for lib in forbidden:
        if os.path.basename(lib) in inputs:
            problems.append(f"{os.path.basename(binary)} links {os.path.basename(lib)}")
    engine = set()
    for lib in forbidden:
        engine |= strong_functions(lib, archive=True)
    shared = sorted(strong_functions(binary, archive=False) & engine)
    for name in demangle(shared[:10]):
        problems.append(f"{os.path.basename(binary)} defines the engine function {name}")
    if len(shared) > 10:
        problems.append(f"... and {len(shared) - 10} more engine functions")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", required=True, help="the linked crmctl")
    p.add_argument("--build-dir", required=True, help="the CMake build folder holding build.ninja")
    p.add_argument("--forbid", nargs="+", required=True, help="the service libraries (.a) crmctl must not hold")
    p.add_argument("--control", help="a binary that links the --forbid libraries: the check must report it")
    a = p.parse_args()
    if a.control and not findings(a.control, a.build_dir, a.forbid):
        print(f"check_crmctl_deps: the control {a.control} passed: the check finds nothing")
        return 1
    problems = findings(a.binary, a.build_dir, a.forbid)
    for line in problems:
        print(line)
    if problems:
        print("crmctl must not depend on the service engines: move the verb that needs them to crm-ops "
              "(tools/crm_ops.cc) and let crmctl run it")
        return 1
    print(f"{os.path.basename(a.binary)}: no service library linked, no engine function defined")
    return 0


if __name__ == "__main__":
    sys.exit(main())
