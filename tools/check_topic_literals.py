#!/usr/bin/python3
"""Fails when a part of a topic's contract is spelled outside libs/topics.

Topic names, the aggregate types envelopes carry and event types are part of the wire contract
and are named once, in libs/topics (crm::topics): topic names in topics.h, aggregate types in
contracts.h, event types by their message (topics::EventType<M>(), eventlog::Is<M>(envelope)).
Any other C++ source that spells one as a string literal is reported with its file and line:

  topic        "crm.customers.events.v1", "crm.inbound.v1.dlq", "crm.tickets.events.v1:8", ...
  event type   a whole literal "crm.customers.v1.CustomerCreated" (or its type URL)
  aggregate    a literal that is one of contracts.h's types ("customer", "ticket_type", ...) on
               a line about aggregates (aggregate_type(), set_aggregate_type, AggregateHead,
               kXxxAggregate, ...) or compared with == / != (except with a request field's
               name: `t.field == "customer"` is the filter field, not the aggregate)

The same words are request field names ("customer" in InvalidFieldError("customer", ...)), so
an aggregate type elsewhere is not reported. Comments are not read. Unit tests (*_test.cc) may
spell any of them, they check the wire names themselves; the tests/ folder may spell event and
aggregate types.

Usage: check_topic_literals.py REPO_ROOT     exit 0 clean, 1 with a list of offenders
       check_topic_literals.py --self-test   shows that an offender of each kind is found
"""
import os
import re
import sys
import tempfile

TOPIC = re.compile(r'"crm\.[a-z0-9_.]*\.v1(\.dlq)?(:\d+)?"')
EVENT_TYPE = re.compile(r'(type\.googleapis\.com/)?crm\.[a-z_]+\.v1\.[A-Z][A-Za-z0-9]*')
LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
AGGREGATE_LINE = re.compile(r'aggregate', re.IGNORECASE)
COMPARED_BEFORE = re.compile(r'([\w.()\[\]>-]+)\s*[!=]=\s*$')
COMPARED_AFTER = re.compile(r'^\s*[!=]=\s*([\w.()\[\]>-]+)')
CONTRACT_TYPE = re.compile(r'AggregateContract\s+k\w+\s*\{\s*"([a-z_]+)"')

ROOTS = ("libs", "services", "tools", "fuzz", "tests")
HOME = os.path.join("libs", "topics") + os.sep
CONTRACTS = os.path.join("libs", "topics", "contracts.h")


def code_of(line, in_block):
    """`line` without its comments, and whether a /* comment continues on the next line."""
    out = []
    i, n = 0, len(line)
    while i < n:
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            i, in_block = end + 2, False
            continue
        c = line[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            out.append(line[i:j + 1])
            i = j + 1
        elif line.startswith("//", i):
            break
        elif line.startswith("/*", i):
            in_block, i = True, i + 2
        else:
            out.append(c)
            i += 1
    return "".join(out), in_block


def aggregate_use(code, match):
    """Whether the aggregate-type literal `match` in `code` is used as an aggregate type."""
    if AGGREGATE_LINE.search(code):
        return True
    for compared in (COMPARED_BEFORE.search(code[:match.start()]), COMPARED_AFTER.search(code[match.end():])):
        if compared and not compared.group(1).endswith("field"):
            return True
    return False


def findings(code, types, contract_rules):
    if TOPIC.search(code):
        yield "topic name"
    if not contract_rules:
        return
    for m in LITERAL.finditer(code):
        if EVENT_TYPE.fullmatch(m.group(1)):
            yield "event type"
        elif m.group(1) in types and aggregate_use(code, m):
            yield "aggregate type"


def aggregate_types(repo):
    with open(os.path.join(repo, CONTRACTS), encoding="utf-8") as f:
        return set(CONTRACT_TYPE.findall(f.read()))


def offenders(repo):
    types = aggregate_types(repo)
    if not types:
        return [f"{CONTRACTS}: no AggregateContract found: the check cannot know the aggregate types"]
    found = []
    for root in ROOTS:
        for folder, _, files in os.walk(os.path.join(repo, root)):
            for name in sorted(files):
                if not name.endswith((".h", ".cc")) or name.endswith("_test.cc"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, repo)
                if rel.startswith(HOME):
                    continue
                unix = rel.replace(os.sep, "/")
                contract_rules = not unix.startswith("tests/")
                in_block = False
                with open(path, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        code, in_block = code_of(line, in_block)
                        for kind in dict.fromkeys(findings(code, types, contract_rules)):
                            found.append(f"{rel}:{number}: {kind}: {line.strip()}")
    return found


def self_test():
    files = {
        CONTRACTS: 'inline constexpr AggregateContract kWidget{"widget", "widgets", true};\n',
        os.path.join("libs", "topics", "topics.h"): 'inline constexpr char kX[] = "crm.x.events.v1";\n',
        os.path.join("services", "x", "ok_test.cc"):
            'auto t = "crm.x.events.v1";\nif (e.aggregate_type() == "widget") {}\nauto e = "crm.x.v1.WidgetMade";\n',
        os.path.join("tests", "x", "harness.cc"): 'if (e.aggregate_type() == "widget") {}\n',
        os.path.join("services", "x", "engine.h"): (
            '// crm.x.events.v1 in a comment is fine\n'
            'std::string t = "crm.x.events.v1:8";\n'
            'return InvalidFieldError("widget", "is required");  // the aggregate of "widget"\n'
            'if (t.field == "widget") {}\n'
            'if (e.aggregate_type() != "widget") return;\n'
            'bool known = type == "widget" || "widget" != kind;\n'
            'if (e.event_type() == "crm.x.v1.WidgetMade") {}\n'
            'Error(StrCat("e.g. crm.x.v1.WidgetMade"));\n'
            '/* "crm.x.v1.WidgetMade" */ f("type.googleapis.com/crm.x.v1.WidgetMade");\n'),
        os.path.join("tools", "bench_new.cc"): 'env.set_aggregate_type("widget");\n',
    }
    want = [
        'services/x/engine.h:2: topic name: std::string t = "crm.x.events.v1:8";',
        'services/x/engine.h:5: aggregate type: if (e.aggregate_type() != "widget") return;',
        'services/x/engine.h:6: aggregate type: bool known = type == "widget" || "widget" != kind;',
        'services/x/engine.h:7: event type: if (e.event_type() == "crm.x.v1.WidgetMade") {}',
        'services/x/engine.h:9: event type: /* "crm.x.v1.WidgetMade" */ f("type.googleapis.com/crm.x.v1.WidgetMade");',
        'tools/bench_new.cc:1: aggregate type: env.set_aggregate_type("widget");',
    ]
    with tempfile.TemporaryDirectory() as repo:
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(repo, rel)), exist_ok=True)
            with open(os.path.join(repo, rel), "w") as f:
                f.write(text)
        got = sorted(offenders(repo))
        if got != want:
            print("self-test: expected exactly these offenders:\n  " + "\n  ".join(want) +
                  "\ngot:\n  " + "\n  ".join(got))
            return 1
    print("self-test: topic names, event types and aggregate types are found; libs/topics, "
          "tests, field names and comments are not")
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
        print(f"{len(found)} contract literals spelled outside {HOME}: use crm::topics "
              "(topics.h, contracts.h, EventType<M>() / eventlog::Is<M>)")
        return 1
    print(f"topic names, event types and aggregate types are spelled only in {HOME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
