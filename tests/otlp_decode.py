"""Decodes OTLP/HTTP trace export bodies with the official protobuf definitions (the
`opentelemetry-proto` package) for tests/otlp_export.rs.

stdin: a JSON list of {"encoding": "protobuf" | "json", "body_hex": "..."}.
stdout: one JSON object: {"spans": [...], "resources": [...], "scopes": [...]}, each
span with hex ids, the enum names of its kind and status, and plain attribute values.
Any body that does not parse (including unknown JSON fields) fails the script.
"""

import base64
import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def parse(encoding, body):
    request = ExportTraceServiceRequest()
    if encoding == "protobuf":
        request.ParseFromString(body)
        return request
    doc = json.loads(body)
    # OTLP/JSON writes trace and span ids as hex, where the generic protobuf JSON
    # mapping expects base64: convert them, and only them, before the strict parse.
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    json_format.ParseDict(doc, request)
    return request


def any_value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def main():
    out = {"spans": [], "resources": [], "scopes": []}
    for item in json.load(sys.stdin):
        request = parse(item["encoding"], bytes.fromhex(item["body_hex"]))
        for rs in request.resource_spans:
            out["resources"].append(attributes(rs.resource.attributes))
            for ss in rs.scope_spans:
                out["scopes"].append({"name": ss.scope.name, "version": ss.scope.version})
                for s in ss.spans:
                    out["spans"].append(
                        {
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(),
                            "flags": s.flags,
                            "name": s.name,
                            "kind": Span.SpanKind.Name(s.kind),
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "attributes": attributes(s.attributes),
                            "events": [e.name for e in s.events],
                            "status_code": Status.StatusCode.Name(s.status.code),
                            "status_message": s.status.message,
                        }
                    )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
