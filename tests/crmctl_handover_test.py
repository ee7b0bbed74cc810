#!/usr/bin/python3
"""crmctl's hand-over of rebuild, tail, lag and verify to crm-ops, attacked from outside: the
command line reaches crm-ops whole (global flags before the verb, `--`, unicode, a long
argument), as the same process (its exit code and signals), and only for those verbs; a crm-ops
beside crmctl that cannot run is refused rather than replaced by another one on PATH; PATH's
empty, relative and spaced entries; /proc hidden; --help; and that the checks guarding the split
(tools/check_crmctl_deps.py, tests/deploy_test.mjs) cannot pass blind.

A stand-in crm-ops (a python script printing its argv, pid and what it inherited) sits beside a
copy of crmctl, so no server or log is needed.

Run with /usr/bin/python3. Prints "N passed, N failed" and exits non-zero on failure.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

STAND_IN = """#!/usr/bin/python3
import json, os, sys, time
if os.environ.get("STAND_IN_SLEEP"):
    print("ready", flush=True)
    time.sleep(60)
print(json.dumps({"argv": sys.argv, "pid": os.getpid()}))
sys.exit(int(os.environ.get("STAND_IN_RC", "0")))
"""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--crmctl", required=True)
    p.add_argument("--crm-ops", required=True)
    p.add_argument("--build-dir", required=True)
    p.add_argument("--source-dir", required=True)
    p.add_argument("--node-modules", required=True, help="the deploy_recipes test's MODULES_DIR")
    p.add_argument("--deps-args", nargs=argparse.REMAINDER, required=True,
                   help="the rest: crmctl_links_no_engine's --forbid and --allow")
    args = p.parse_args()
    passed, failed = 0, 0
    work = tempfile.mkdtemp(prefix="crmctl-handover-")

    def place(folder, ops=True):
        """A copy of crmctl in `folder`, with the stand-in crm-ops beside it when `ops`."""
        os.makedirs(folder, exist_ok=True)
        shutil.copy2(args.crmctl, os.path.join(folder, "crmctl"))
        if ops:
            stand_in(folder)
        return os.path.join(folder, "crmctl")

    def stand_in(folder):
        path = os.path.join(folder, "crm-ops")
        with open(path, "w") as f:
            f.write(STAND_IN)
        os.chmod(path, 0o755)
        return path

    def run(argv, path="/usr/bin:/bin", cwd=None, **env):
        e = {"PATH": path, **env}
        return subprocess.run(argv, env=e, cwd=cwd, capture_output=True, text=True, timeout=30)

    def ran(r):
        """The stand-in's report, or None when it did not run."""
        line = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else []
        try:
            return json.loads(line[0]) if line else None
        except ValueError:
            return None

    def check(name, fn):
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print(f"ok   {name}")
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            failed += 1
            print(f"FAIL {name}: {e!r}")

    home = os.path.join(work, "home")
    ctl = place(home)
    other = os.path.join(work, "other")
    os.makedirs(other)
    stand_in(other)

    def argv_reaches_crm_ops_whole():
        long_arg = "x" * 100_000
        lines = [
            ["verify"],
            ["-o", "json", "verify", "--data-dir", "d"],
            ["--addr", "x:1", "rebuild"],
            ["--addr=x:1", "--timeout", "3", "--token", "verify", "lag"],
            ["--output=json", "tail", "-fn5", "crm.customers.events.v1"],
            ["tail", "--", "crm.customers.events.v1"],   # `--` right after the verb
            ["verify", "--"],
            ["lag", "--", "-o"],
            ["tail", "--data-dir", "é日本 ü", "crm.顧客.events.v1", ""],
            ["verify", "--seal-key", long_arg],
            ["tail", "customers", "list"],
        ]
        for line in lines:
            r = run([ctl] + line)
            got = ran(r)
            assert r.returncode == 0 and got is not None, (line[:6], r.returncode, r.stderr[:300])
            # (argv[0] does not reach a script: help_is_current checks it with the real crm-ops.)
            assert got["argv"][1:] == line, (line[:6], [a[:40] for a in got["argv"]])

    def same_process_exit_code_and_signals():
        r = run([ctl, "lag"], STAND_IN_RC="7")
        assert r.returncode == 7, (r.returncode, r.stderr)
        proc = subprocess.Popen([ctl, "tail", "-f", "t"], env={"PATH": "/usr/bin:/bin", "STAND_IN_SLEEP": "1"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                assert f.read().split(b"\0")[1].endswith(b"crm-ops"), "pid is not crm-ops (no exec)"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == -signal.SIGTERM, proc.returncode
        finally:
            proc.kill()
            proc.wait()

    def user_verbs_never_reach_crm_ops():
        for line in (["customers", "verify"], ["customers", "list", "verify"], ["token", "--sub", "verify"],
                     ["-o", "json", "customers", "get", "lag"], ["tickets", "tail"], ["VERIFY"], ["verif"],
                     ["--help", "verify"], ["customers", "list", "--", "verify"], ["token", "--sub", "x", "--", "lag"],
                     ["customers", "--", "rebuild"]):
            r = run([ctl] + line, CRM_TOKEN="t", CRM_ADDR="127.0.0.1:1")
            assert ran(r) is None, (line, r.stdout[:200])

    def unusable_crm_ops_beside_is_refused_not_replaced():
        cases = {
            "no execute permission": lambda p: (open(p, "w").write(STAND_IN), os.chmod(p, 0o644)),
            "a folder": lambda p: os.makedirs(p),
            "a symlink loop": lambda p: os.symlink("crm-ops", p),
            "a dangling symlink": lambda p: os.symlink("/nonexistent/crm-ops", p),
        }
        for i, (what, make) in enumerate(cases.items()):
            folder = os.path.join(work, f"broken{i}")
            lone = place(folder, ops=False)
            make(os.path.join(folder, "crm-ops"))
            r = run([lone, "lag"], path=other + ":/usr/bin:/bin")
            assert ran(r) is None, (what, "ran the crm-ops on PATH instead", r.stdout[:200])
            assert r.returncode == 2 and r.stdout == "", (what, r.returncode, r.stdout[:200])
            assert os.path.join(folder, "crm-ops") in r.stderr and "not an executable file" in r.stderr, (what, r.stderr)

    def not_executable_format_exits_2():
        folder = os.path.join(work, "garbage")
        lone = place(folder, ops=False)
        with open(os.path.join(folder, "crm-ops"), "w") as f:
            f.write("not a program\n")
        os.chmod(os.path.join(folder, "crm-ops"), 0o755)
        r = run([lone, "verify"])
        assert r.returncode == 2 and "cannot run" in r.stderr and r.stdout == "", (r.returncode, r.stderr)

    def missing_crm_ops_and_path_entries():
        alone = os.path.join(work, "alone")
        lone = place(alone, ops=False)
        r = run([lone, "rebuild"], path="")
        assert r.returncode == 2 and "rebuild runs crm-ops" in r.stderr and "nor on PATH" in r.stderr, r.stderr
        # Empty and relative entries are skipped: a crm-ops in the current folder does not run.
        for path in ("", ":", ".", "other", "./other", "::.:"):
            r = run([lone, "lag"], path=path, cwd=work)
            assert ran(r) is None and r.returncode == 2, (path, r.stdout[:200], r.stderr)
        spaced = os.path.join(work, "with space")
        os.makedirs(spaced)
        stand_in(spaced)
        r = run([lone, "lag"], path=f"::.:{spaced}:")
        got = ran(r)
        assert got is not None and got["argv"][1:] == ["lag"], (r.stdout, r.stderr)

    def proc_hidden_falls_back_to_path():
        if shutil.which("unshare") is None or subprocess.run(
                ["unshare", "-m", "true"], capture_output=True).returncode != 0:
            print("     (skipped: no mount namespace here)")
            return
        script = 'mount -t tmpfs none /proc && exec "$@"'
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", ctl, "lag"],
                           env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "this program's folder is unknown" in r.stderr, (r.returncode, r.stderr)
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", ctl, "lag"],
                           env={"PATH": other + ":/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
        assert ran(r) is not None, (r.returncode, r.stderr)

    def help_is_current():
        real = os.path.join(work, "real")
        lone = place(real, ops=False)
        shutil.copy2(args.crm_ops, os.path.join(real, "crm-ops"))
        top = run([lone, "--help"]).stdout
        for verb in ("rebuild", "tail", "lag", "verify"):
            assert any(ln.split()[:1] == [verb] and "(runs crm-ops)" in ln for ln in top.splitlines()), top
        r = run([lone, "verify", "--help"])
        assert r.returncode == 0 and "--projections" in r.stdout, (r.returncode, r.stdout[:300])
        usage = [ln for ln in r.stdout.splitlines() if ln.startswith("Usage:")]
        assert usage == [f"Usage: {lone} verify [OPTIONS]"], usage
        r = run([lone, "tail", "--help"])
        assert "topic TEXT REQUIRED" in r.stdout, r.stdout[:300]
        ops = run([args.crm_ops, "--help"]).stdout
        for verb in ("rebuild", "tail", "lag", "verify"):
            assert any(ln.split()[:1] == [verb] for ln in ops.splitlines()), ops

    def deps_check_cannot_pass_blind():
        check_py = os.path.join(args.source_dir, "tools", "check_crmctl_deps.py")

        def deps(build, crmctl, crm_ops):
            return subprocess.run([sys.executable, check_py, "--binary", crmctl, "--control", crm_ops,
                                   "--build-dir", build, *args.deps_args],
                                  capture_output=True, text=True, timeout=60)

        def fake_build(name):
            """A build folder of links to the real one's libraries under services/."""
            folder = os.path.join(work, name)
            os.makedirs(os.path.join(folder, "tools"))
            for d, _, files in os.walk(os.path.join(args.build_dir, "services")):
                for f in files:
                    if f.startswith("lib") and f.endswith(".a"):
                        rel = os.path.relpath(os.path.join(d, f), args.build_dir)
                        os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
                        os.symlink(os.path.join(d, f), os.path.join(folder, rel))
            return folder

        r = deps(args.build_dir, args.crmctl, args.crm_ops)
        assert r.returncode == 0, r.stdout
        # A new service's library nobody listed: the check cannot know it is an engine.
        # A stale archive an earlier build left (no build statement makes it any more) is no
        # library of this tree: an incremental build after a library moved must still pass.
        stale = fake_build("stale-build")
        shutil.copy(os.path.join(args.build_dir, "build.ninja"), stale)
        os.makedirs(os.path.join(stale, "services", "invoices"))
        shutil.copy(os.path.join(stale, "services", "tasks", "libcrm_tasks.a"),
                    os.path.join(stale, "services", "invoices", "libcrm_invoices.a"))
        for name, src in (("crmctl", args.crmctl), ("crm-ops", args.crm_ops)):
            os.symlink(src, os.path.join(stale, "tools", name))
        r = deps(stale, os.path.join(stale, "tools", "crmctl"), os.path.join(stale, "tools", "crm-ops"))
        assert r.returncode == 0, ("a stale archive failed the check", r.stdout, r.stderr[-300:])
        extra = fake_build("unlisted-build")
        shutil.copy(os.path.join(args.build_dir, "build.ninja"), extra)
        with open(os.path.join(extra, "build.ninja"), "a", encoding="utf-8") as out:
            out.write("build services/invoices/libcrm_invoices.a: CXX_STATIC_LIBRARY_LINKER__crm_invoices x.o\n")
        for name, src in (("crmctl", args.crmctl), ("crm-ops", args.crm_ops)):
            os.symlink(src, os.path.join(extra, "tools", name))
        r = deps(extra, os.path.join(extra, "tools", "crmctl"), os.path.join(extra, "tools", "crm-ops"))
        assert r.returncode != 0 and "libcrm_invoices.a" in r.stdout, ("an unlisted library passed", r.stdout,
                                                                      r.stderr[-300:])
        # build.ninja written another way: the link statement names no library any more.
        fake = fake_build("fake-build")
        with open(os.path.join(args.build_dir, "build.ninja"), encoding="utf-8") as f, \
                open(os.path.join(fake, "build.ninja"), "w", encoding="utf-8") as out:
            for ln in f:
                if ln.startswith("  LINK_LIBRARIES"):
                    continue
                out.write(ln.split(" | ")[0] + "\n" if ln.startswith("build ") and " | " in ln else ln)
        for name, src in (("crmctl", args.crmctl), ("crm-ops", args.crm_ops)):
            os.symlink(src, os.path.join(fake, "tools", name))
        r = deps(fake, os.path.join(fake, "tools", "crmctl"), os.path.join(fake, "tools", "crm-ops"))
        assert r.returncode != 0 and "link statement check" in r.stdout, ("blind link check passed", r.stdout)
        # Stripped binaries list no symbol: the symbol check would see nothing.
        for which in ("crmctl", "crm-ops"):
            folder = fake_build(f"stripped-{which}")
            shutil.copy(os.path.join(args.build_dir, "build.ninja"), folder)
            for name, src in (("crmctl", args.crmctl), ("crm-ops", args.crm_ops)):
                dst = os.path.join(folder, "tools", name)
                if name == which:
                    subprocess.run(["strip", "-o", dst, src], check=True)
                else:
                    shutil.copy2(src, dst)
            r = deps(folder, os.path.join(folder, "tools", "crmctl"), os.path.join(folder, "tools", "crm-ops"))
            want = "no symbol table" if which == "crmctl" else "symbol check"
            assert r.returncode != 0 and want in r.stdout, (f"a stripped {which} passed", r.stdout, r.stderr[-300:])

    def deploy_check_sees_every_copy():
        # deploy_test.mjs against a copy of the sources with the crmctl stage broken.
        src = os.path.join(work, "src")
        shutil.copytree(os.path.join(args.source_dir, "deploy"), os.path.join(src, "deploy"))
        wanted = [os.path.join("libs", "topics", "topics.h")]
        for top in ("services", "tools"):
            for d, _, names in os.walk(os.path.join(args.source_dir, top)):
                if "CMakeLists.txt" in names:
                    wanted.append(os.path.relpath(os.path.join(d, "CMakeLists.txt"), args.source_dir))
        for rel in wanted:
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            shutil.copy(os.path.join(args.source_dir, rel), os.path.join(src, rel))
        dockerfile = os.path.join(src, "deploy", "Dockerfile")
        with open(dockerfile) as f:
            text = f.read()
        good = "COPY --from=build /src/build/tools/crm-ops /usr/local/bin/crm-ops\nCOPY --from=build /src/build/tools/crmctl "
        assert good + "/usr/local/bin/crmctl\n" in text, "the crmctl stage changed: update this test"
        for bad, expected in (
                # crm-ops's copy names a file the build does not make (the stage's last copy is right)
                (good.replace("tools/crm-ops", "tools/crm-opz"), "build/tools/crm-opz"),
                # crmctl installed under another name: the ENTRYPOINT runs nothing, crm-ops is beside nothing
                (good + "/usr/local/bin/ctl\n#", "ENTRYPOINT runs /usr/local/bin/crmctl")):
            with open(dockerfile, "w") as f:
                f.write(text.replace(good, bad))
            r = subprocess.run(["node", os.path.join(args.source_dir, "tests", "deploy_test.mjs"), src, args.build_dir,
                                args.node_modules], capture_output=True, text=True, timeout=120)
            assert r.returncode != 0 and expected in (r.stdout + r.stderr), (expected, r.returncode, r.stdout[-500:])

    check("the command line reaches crm-ops whole: flags before the verb, `--` after it, unicode, 100 kB",
          argv_reaches_crm_ops_whole)
    check("crm-ops replaces crmctl: its exit code, its pid, SIGTERM to crmctl's pid ends it",
          same_process_exit_code_and_signals)
    check("no user verb, misspelling or help line runs crm-ops", user_verbs_never_reach_crm_ops)
    check("a crm-ops beside crmctl that cannot run is refused (exit 2, named), not replaced by PATH's",
          unusable_crm_ops_beside_is_refused_not_replaced)
    check("a crm-ops execv refuses is exit 2 with the reason, no shell", not_executable_format_exits_2)
    check("none anywhere is exit 2; PATH's empty and relative entries are skipped, spaced ones work",
          missing_crm_ops_and_path_entries)
    check("/proc hidden: crmctl's folder is unknown, PATH still works", proc_hidden_falls_back_to_path)
    check("crmctl --help lists the verbs; crmctl VERB --help is crm-ops's, naming crmctl", help_is_current)
    check("check_crmctl_deps fails when its link or symbol check is blind, or a services/ library is unlisted",
          deps_check_cannot_pass_blind)
    check("deploy_recipes checks every file a stage copies, not only the last, and what ENTRYPOINT runs",
          deploy_check_sees_every_copy)

    shutil.rmtree(work, ignore_errors=True)  # each check's folder lies under it
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
