#!/usr/bin/python3
"""crmctl, the user CLI, carries no service engine: it calls the servers through the generated
stubs, and the offline verbs that fold events with the engines' projections live in crm-ops,
which crmctl runs (issue 27). Fails when the binary's link line in build.ninja names one of the
--forbid libraries, or when the binary defines a function that one of them defines (their code
came in some other way, e.g. a source file compiled into crmctl's own library).

--control BINARY runs the same check on a binary that must fail it (crm-ops, which links the
engines): if the control passes either check (the link statement's, the symbols'), that check
is broken and this script fails too. A binary without a symbol table fails: it cannot be checked.
Every library built under BUILD_DIR/services must be named by --forbid or --allow, so that a new
service's library is not left out of the check unseen.

Run with /usr/bin/python3. Exit 0 when clean, 1 with one line per finding.
"""
import argparse
import os
import re
import subprocess
import sys


def built_libraries(build_dir):
    """The file names of the libraries build.ninja builds under services/."""
    out = set()
    with open(os.path.join(build_dir, "build.ninja"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"build (services/\S*?lib[^/\s:]+\.(?:a|so)):", line)
            if m:
                out.add(os.path.basename(m.group(1)))
    return out


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


def link_findings(binary, build_dir, forbidden):
    """One line per --forbid library that the binary's link statement names."""
    inputs = {os.path.basename(t) for t in link_inputs(build_dir, binary)}
    return [f"{os.path.basename(binary)} links {os.path.basename(lib)}"
            for lib in forbidden if os.path.basename(lib) in inputs]


def engine_functions(binary, forbidden):
    """The mangled engine functions the binary defines, or None when it lists no symbol at all
    (stripped): then nothing would be found, whatever it holds."""
    defined = strong_functions(binary, archive=False)
    if not defined:
        return None
    engine = set()
    for lib in forbidden:
        engine |= strong_functions(lib, archive=True)
    return sorted(defined & engine)


def symbol_findings(binary, forbidden):
    """One line per engine function the binary defines (at most ten, then a count)."""
    shared = engine_functions(binary, forbidden)
    if shared is None:
        return [f"{os.path.basename(binary)} has no symbol table (stripped?): its functions cannot be checked"]
    problems = [f"{os.path.basename(binary)} defines the engine function {name}" for name in demangle(shared[:10])]
    if len(shared) > 10:
        problems.append(f"... and {len(shared) - 10} more engine functions")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", required=True, help="the linked crmctl")
    p.add_argument("--build-dir", required=True, help="the CMake build folder holding build.ninja")
    p.add_argument("--forbid", nargs="+", required=True, help="the service libraries (.a) crmctl must not hold")
    p.add_argument("--control", help="a binary that links the --forbid libraries: the check must report it")
    p.add_argument("--allow", nargs="*", default=[],
                   help="the libraries built under services/ that crmctl may link (no engine in them)")
    a = p.parse_args()
    # A library added under services/ later (a new service) is forbidden only once listed: until
    # someone says which it is, this fails rather than let crmctl link it unseen.
    named = {os.path.basename(lib) for lib in a.forbid + a.allow}
    services = os.path.join(a.build_dir, "services")
    # The libraries the build makes now, from build.ninja: a stale archive an earlier build left
    # behind (a library since moved or deleted) is no library of this tree.
    built = built_libraries(a.build_dir)
    unclassified = sorted(f for f in built if f not in named)
    if not any(os.path.basename(lib) in built for lib in a.forbid):
        print(f"check_crmctl_deps: no --forbid library under {services}: the scan for unlisted ones sees nothing")
        return 1
    if unclassified:
        for f in unclassified:
            print(f"check_crmctl_deps: {f} under {services} is neither --forbid nor --allow: "
                  "list it in tests/CMakeLists.txt (crmctl_links_no_engine)")
        return 1
    if a.control:
        # Each check on its own must see the engines in the control: one gone blind (build.ninja
        # written another way, a stripped binary) would otherwise hide behind the other.
        for what, found in (("link statement", link_findings(a.control, a.build_dir, a.forbid)),
                            ("symbol", engine_functions(a.control, a.forbid))):
            if not found:
                print(f"check_crmctl_deps: the control {a.control} passed the {what} check: that check finds nothing")
                return 1
    problems = link_findings(a.binary, a.build_dir, a.forbid) + symbol_findings(a.binary, a.forbid)
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
