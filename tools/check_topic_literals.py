#!/usr/bin/python3
"""Fails when a topic name is spelled outside libs/topics/topics.h.

The log's topic names are part of the wire contract and are named once, in
libs/topics/topics.h (crm::topics). Any other C++ source that spells one as a string literal
("crm.customers.events.v1", "crm.inbound.v1.dlq", "crm.tickets.events.v1:8", ...) is
reported with its file and line. Unit tests (*_test.cc) and the Python tests under tests/ may
spell them: they check the wire names themselves.

Usage: check_topic_literals.py REPO_ROOT     exit 0 clean, 1 with a list of offenders
       check_topic_literals.py --self-test   shows that an offender is found
"""
import os
import re
import sys
import tempfile

TOPIC = re.compile(r'"crm\.[a-z0-9_.]*\.v1(\.dlq)?(:\d+)?"')
ROOTS = ("libs", "services", "tools", "fuzz", "tests")
HOME = os.path.join("libs", "topics", "topics.h")


def offenders(repo):
    found = []
    for root in ROOTS:
        for folder, _, files in os.walk(os.path.join(repo, root)):
            for name in sorted(files):
                if not name.endswith((".h", ".cc")) or name.endswith("_test.cc"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, repo)
                if rel == HOME:
                    continue
                with open(path, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        if TOPIC.search(line):
                            found.append(f"{rel}:{number}: {line.strip()}")
    return found


def self_test():
    with tempfile.TemporaryDirectory() as repo:
        os.makedirs(os.path.join(repo, "libs", "topics"))
        os.makedirs(os.path.join(repo, "services", "x"))
        with open(os.path.join(repo, HOME), "w") as f:
            f.write('inline constexpr char kX[] = "crm.x.events.v1";\n')
        with open(os.path.join(repo, "services", "x", "ok_test.cc"), "w") as f:
            f.write('auto t = "crm.x.events.v1";\n')
        with open(os.path.join(repo, "services", "x", "engine.h"), "w") as f:
            f.write('// crm.x.events.v1 in a comment is fine\nstd::string t = "crm.x.events.v1:8";\n')
        got = offenders(repo)
        if got != ['services/x/engine.h:2: std::string t = "crm.x.events.v1:8";']:
            print(f"self-test: expected exactly the one offender, got {got}")
            return 1
    print("self-test: an offender is found, topics.h and tests are not")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    found = offenders(sys.argv[1])
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} topic names spelled outside {HOME}: use crm::topics")
        return 1
    print(f"topic names are spelled only in {HOME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
