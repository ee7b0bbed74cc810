"""Logs written by an older commit still open and rebuild to that commit's projection checksums.

The fixture (tests/compat/fixture-<commit>.dump.gz, made by tests/compat/make_fixture.py) holds
every record of a log the old crmd wrote under a mixed day and one of every kind of write; the
checksums file holds the projection checksums the old crmctl verify computed from it. Today's
code replays the records into a fresh embedded log (each must land at its old partition and
offset), the dump of the replayed log must equal the fixture byte for byte (record timestamps
aside: the log stamps its own), today's crmctl rebuild builds every service's projections, and
today's crmctl verify --projections must find nothing wrong and report, for each service, the old
checksum for the live copy and for its own rebuild.

Each service's checksum is also recorded per key prefix (a/, h/, r/ ...), computed from the old
crmd's own projection rows. A failure names the prefixes whose rows differ. A change that alters
some rows on purpose (a new prefix, a re-encoded row) lists them in the checksums file under
"changed_by_design": {"<service>": {"<prefix>": "<why>"}}; those prefixes are then not compared
and the service is compared prefix by prefix only. Since 8702e91: the opportunity settings (r/, s/).
"""
import argparse
import base64
import gzip
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import check, run_checked, summary, work_dir  # noqa: E402


def without_timestamps(dump):
    """The dump's lines with the record timestamp (the fifth field of R lines) blanked."""
    out = []
    for line in dump.split(b"\n"):
        f = line.split(b" ")
        if f[0] == b"R" and len(f) > 4:
            f[4] = b"-"
        out.append(b" ".join(f))
    return out


def prefix_checksums(compat_log, db):
    """crm-compat-log checksums of the projection database `db`: {prefix: "rows:hex"}."""
    r = subprocess.run([compat_log, "checksums", db], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"crm-compat-log checksums {db}: {r.stderr}"
    out = {}
    for line in r.stdout.splitlines():
        prefix, digest = line.split(" ")
        out[base64.b64decode(prefix).decode("utf-8", "backslashreplace")] = digest
    return out


def combined(prefix_sums):
    """The whole-database checksum the per-prefix ones add up to (XOR of digests, sum of rows)."""
    rows, acc = 0, 0
    for digest in prefix_sums.values():
        n, h = digest.split(":")
        rows, acc = rows + int(n), acc ^ int(h, 16)
    return f"{rows}:{acc:064x}"


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--crmctl", "--compat-log", "--fixture", "--checksums"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    work = work_dir("crm-compat-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    with gzip.open(args.fixture, "rb") as f:
        dump = f.read()
    with open(args.checksums) as f:
        recorded = json.load(f)
    topics = [ln.split(b" ")[1].decode() for ln in dump.split(b"\n") if ln.startswith(b"T ")]
    env = dict(os.environ)

    def the_fixture_is_what_it_claims():
        records = sum(1 for ln in dump.split(b"\n") if ln.startswith(b"R "))
        assert records == recorded["records"] > 1000, (records, recorded["records"])
        assert set(recorded["checksums"]) == {"customers", "opportunities", "tasks", "tickets", "analytics"}

    def replayed_at_the_same_offsets_with_the_same_bytes():
        r = subprocess.run([args.compat_log, "load", os.path.join(data, "log")], input=dump, capture_output=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        again = run_checked([args.compat_log, "dump", os.path.join(data, "log"), *topics], env,
                            "dump of the replayed log", timeout=60).stdout.encode()
        a, b = without_timestamps(dump), without_timestamps(again)
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        assert first is None and len(a) == len(b), \
            f"the replayed log differs at dump line {first}: {len(a)} lines before, {len(b)} after"

    def rebuilds_to_the_old_checksums():
        run_checked([args.crmctl, "rebuild", "--data-dir", data], env, "crmctl rebuild", timeout=60)
        r = run_checked([args.crmctl, "-o", "json", "verify", "--data-dir", data, "--projections"], env,
                        "crmctl verify --projections", ok=(0, 4), timeout=60)
        report = json.loads(r.stdout)
        assert r.returncode == 0 and report["problems"] == 0, f"crmctl verify: exit {r.returncode}: {r.stdout}"
        got = {p["projection"]: p for p in report["projections"]}
        by_design = recorded.get("changed_by_design", {})
        wrong = []
        for name, want in sorted(recorded["checksums"].items()):
            live, rebuilt = got.get(name, {}).get("live"), got.get(name, {}).get("rebuilt")
            if live != rebuilt:
                wrong.append(f"{name}: today's live copy {live} differs from today's rebuild {rebuilt}")
            now = prefix_checksums(args.compat_log, os.path.join(data, name))
            assert combined(now) == live, (name, combined(now), live)
            old = recorded["prefixes"][name]
            skip = by_design.get(name, {})
            if not skip and live != want:
                wrong.append(f"{name}: 8702e91 {want}, today {live}")
            for prefix in sorted(set(old) | set(now)):
                if prefix not in skip and old.get(prefix) != now.get(prefix):
                    wrong.append(f"{name} rows {prefix!r}: 8702e91 {old.get(prefix)}, today {now.get(prefix)}")
        assert not wrong, "projections differ from the old commit's:\n" + "\n".join(wrong)

    check("the fixture is what it claims", the_fixture_is_what_it_claims)
    check("replayed at the same offsets with the same bytes", replayed_at_the_same_offsets_with_the_same_bytes)
    check("rebuilds to the old checksums", rebuilds_to_the_old_checksums)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
