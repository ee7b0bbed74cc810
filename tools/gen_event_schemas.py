#!/usr/bin/python3
"""Writes docs/events/: a JSON Schema (draft 2020-12) for each event type as it appears on the
public topic crm.public.events.v1 (a structured-mode CloudEvent whose `data` is the event in
the proto3 JSON mapping with the proto field names), and an index README.

The event types are those the services' domains decide: the alternatives of every
`using <Name>Event = std::variant<…>` in services/<service>/*.h (the events protos also hold
parts of events and the services' stored states, which are not published).
Run it after changing an events proto; `--check` (the public_event_schemas test) fails when
docs/events/ differs from what it would write.

  /usr/bin/python3 tools/gen_event_schemas.py --protoc build/.../protoc [--check]
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2

F = descriptor_pb2.FieldDescriptorProto
ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA_BASE = "urn:crm-backbone:events:v1:"
PUBLIC_TOPIC = "crm.public.events.v1"

INT32 = {F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32, F.TYPE_UINT32, F.TYPE_FIXED32}
INT64 = {F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64, F.TYPE_UINT64, F.TYPE_FIXED64}
# Well-known types in the proto3 JSON mapping.
WELL_KNOWN = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    ".google.protobuf.FieldMask": {"type": "string"},
    ".google.protobuf.Struct": {"type": "object"},
    ".google.protobuf.Value": {},
    ".google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    ".google.protobuf.Any": {"type": "object", "required": ["@type"], "properties": {"@type": {"type": "string"}}},
    ".google.protobuf.StringValue": {"type": "string"},
    ".google.protobuf.BoolValue": {"type": "boolean"},
    ".google.protobuf.Int32Value": {"type": "integer"},
    ".google.protobuf.Int64Value": {"type": "string", "pattern": r"^-?[0-9]+$"},
    ".google.protobuf.DoubleValue": {"type": "number"},
}


def descriptor_set(protoc, proto_root, includes):
    files = sorted(str(p.relative_to(proto_root)) for p in proto_root.glob("crm/*/v1/*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        subprocess.run([protoc, f"-I{proto_root}", *[f"-I{i}" for i in includes], "--include_imports",
                        "--include_source_info", f"--descriptor_set_out={out}", *files], check=True)
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(pathlib.Path(out).read_bytes())
        return fds


class Index:
    """Every message and enum by full name ('.pkg.Name'), and the comments of each."""

    def __init__(self, fds):
        self.messages, self.enums, self.comments, self.files = {}, {}, {}, {}
        for f in fds.file:
            comments = {tuple(loc.path): loc.leading_comments.strip() for loc in f.source_code_info.location}
            self.files[f.name] = f
            for i, m in enumerate(f.message_type):
                self._message(f, f".{f.package}", m, (4, i), comments)
            for i, e in enumerate(f.enum_type):
                self.enums[f".{f.package}.{e.name}"] = e

    def _message(self, f, scope, m, path, comments):
        name = f"{scope}.{m.name}"
        self.messages[name] = m
        self.comments[name] = comments.get(path, "")
        for i, field in enumerate(m.field):
            self.comments[f"{name}#{field.name}"] = comments.get(path + (2, i), "")
        for i, nested in enumerate(m.nested_type):
            self._message(f, name, nested, path + (3, i), comments)
        for e in m.enum_type:
            self.enums[f"{name}.{e.name}"] = e


def field_schema(index, field, defs):
    if field.type == F.TYPE_MESSAGE:
        if field.type_name in WELL_KNOWN:
            s = dict(WELL_KNOWN[field.type_name])
        else:
            s = {"$ref": f"#/$defs/{field.type_name[1:]}"}
            message_def(index, field.type_name, defs)
    elif field.type == F.TYPE_ENUM:
        s = {"type": "string", "enum": [v.name for v in index.enums[field.type_name].value]}
    elif field.type in INT32:
        s = {"type": "integer"}
    elif field.type in INT64:
        s = {"type": "string", "pattern": r"^-?[0-9]+$"}
    elif field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        s = {"type": "number"}
    elif field.type == F.TYPE_BOOL:
        s = {"type": "boolean"}
    elif field.type == F.TYPE_BYTES:
        s = {"type": "string", "contentEncoding": "base64"}
    else:
        s = {"type": "string"}
    return s


def message_def(index, full, defs):
    key = full[1:]
    if key in defs:
        return
    defs[key] = {}  # placeholder against recursion
    m = index.messages[full]
    props = {}
    for field in m.field:
        if field.label == F.LABEL_REPEATED and field.type == F.TYPE_MESSAGE and \
                index.messages.get(field.type_name) and index.messages[field.type_name].options.map_entry:
            entry = index.messages[field.type_name]
            s = {"type": "object", "additionalProperties": field_schema(index, entry.field[1], defs)}
        else:
            s = field_schema(index, field, defs)
            if field.label == F.LABEL_REPEATED:
                s = {"type": "array", "items": s}
        doc = index.comments.get(f"{full}#{field.name}")
        if doc:
            s = {"description": doc, **s}
        props[field.name] = s
    d = {"type": "object", "properties": props, "additionalProperties": False}
    if index.comments.get(full):
        d = {"description": index.comments[full], **d}
    defs[key] = d


def event_schema(index, service, full):
    defs = {}
    message_def(index, full, defs)
    type_name = full[1:]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE + type_name,
        "title": type_name,
        "description": (index.comments.get(full) or type_name) +
                       f"\n\nA structured-mode CloudEvent on {PUBLIC_TOPIC}, keyed by the aggregate id.",
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype",
                     "dataschema", "data", "crmaggregatetype", "crmaggregateid", "crmaggregateversion",
                     "crmoccurredat", "crmposition"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "The event id (a UUID): the idempotency key."},
            "source": {"const": f"/crm/{service}"},
            "type": {"const": type_name},
            "subject": {"type": "string", "description": "The aggregate, e.g. customers/<id>."},
            "time": {"type": "string", "format": "date-time", "description": "When the service recorded it (log time)."},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"const": SCHEMA_BASE + type_name},
            "traceparent": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$"},
            "crmoccurredat": {"type": "string", "format": "date-time", "description": "Business time: when it happened."},
            "crmaggregatetype": {"type": "string"},
            "crmaggregateid": {"type": "string"},
            "crmaggregateversion": {"type": "integer", "minimum": 1, "description": "1, 2, 3 … without gaps per aggregate."},
            "crmactor": {"type": "string", "description": "The user id that made the change."},
            "crmactorrole": {"type": "string"},
            "crmactorsource": {"type": "string", "enum": ["api", "import", "automation", "integration", "system", "unspecified"]},
            "crmcorrelationid": {"type": "string"},
            "crmcausationid": {"type": "string"},
            "crmtenant": {"type": "string"},
            "crmposition": {"type": "string", "pattern": r"^crm\.[a-z]+\.events\.v1/[0-9]+/[0-9]+$",
                            "description": "topic/partition/offset of the protobuf original."},
            "data": {"$ref": f"#/$defs/{type_name}"},
        },
        "additionalProperties": False,
        "$defs": defs,
    }


def domain_event_types():
    """service -> the full names of the events its domain code decides."""
    found = {}
    for header in sorted((ROOT / "services").glob("*/*.h")):
        service = header.parent.name
        text = header.read_text()
        for m in re.finditer(r"using\s+\w*Event\s*=\s*std::variant<([^;]*)>;", text):
            for name in re.findall(r"v1::(\w+)", m.group(1)):
                found.setdefault(service, set()).add(f"crm.{service}.v1.{name}")
    return found


def render(protoc, includes):
    fds = descriptor_set(protoc, ROOT / "proto", includes)
    index = Index(fds)
    out = {}
    rows = []
    events = domain_event_types()
    for name, f in sorted(index.files.items()):
        if not (name.startswith("crm/") and name.endswith("_events.proto")):
            continue
        service = name.split("/")[1]
        for m in f.message_type:
            full = f".{f.package}.{m.name}"
            if full[1:] not in events.get(service, set()):
                continue
            schema = event_schema(index, service, full)
            out[f"schemas/{full[1:]}.json"] = json.dumps(schema, ensure_ascii=False, indent=2) + "\n"
            summary = (index.comments.get(full) or "").split("\n")[0]
            rows.append(f"| `{full[1:]}` | `/crm/{service}` | [schema](schemas/{full[1:]}.json) | {summary} |")
    documented = {r.split("`")[1] for r in rows}
    missing = sorted(set().union(*events.values()) - documented)
    if missing:
        raise SystemExit(f"event types with no message in an events proto: {', '.join(missing)}")
    out["README.md"] = "\n".join([
        "# Public events (`crm.public.events.v1`)",
        "",
        "GENERATED by `tools/gen_event_schemas.py` from the events protos: do not edit.",
        "",
        "Every event of the services' protobuf topics is republished by `crm-integration` on",
        f"`{PUBLIC_TOPIC}` as a CloudEvents 1.0 structured-mode JSON message (Kafka header",
        "`content-type: application/cloudevents+json; charset=UTF-8`), keyed by the aggregate id so",
        "that one aggregate's events stay in order. `data` is the event in the proto3 JSON mapping",
        "with the proto field names: 64-bit integers are strings, enums their names, timestamps",
        "RFC 3339, money `{\"currency_code\": …, \"amount_minor\": \"…\"}` as in the protos; fields at",
        "their default value are left out. `id` is the event id: consumers deduplicate on it.",
        "",
        "Each schema below describes the whole CloudEvent (`dataschema` names it). Consumers should",
        "ignore fields they do not know: new optional fields are added without a new version.",
        "",
        "| type | source | schema | what |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--include", action="append", default=["/usr/include"])
    ap.add_argument("--out", default=str(ROOT / "docs" / "events"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    files = render(args.protoc, args.include)
    out = pathlib.Path(args.out)
    if args.check:
        stale = [n for n, text in files.items() if not (out / n).exists() or (out / n).read_text() != text]
        extra = [str(p.relative_to(out)) for p in out.glob("schemas/*.json") if str(p.relative_to(out)) not in files]
        if stale or extra:
            print(f"docs/events is out of date (run tools/gen_event_schemas.py): {', '.join(stale + extra)}",
                  file=sys.stderr)
            return 1
        print(f"docs/events: {len(files) - 1} event schemas up to date")
        return 0
    (out / "schemas").mkdir(parents=True, exist_ok=True)
    for p in out.glob("schemas/*.json"):
        if str(p.relative_to(out)) not in files:
            p.unlink()
    for n, text in files.items():
        (out / n).write_text(text)
    print(f"wrote {len(files) - 1} event schemas under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
