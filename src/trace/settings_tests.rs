//! Tests of the trace settings: the standard `OTEL_*` variables and
//! `MESH_TRACE_CONTENT`, parsed, defaulted and refused by name.

use super::*;
use std::collections::HashMap;

fn load(vars: &[(&str, &str)]) -> Result<TraceSettings, ConfigError> {
    let env: HashMap<&str, &str> = vars.iter().copied().collect();
    TraceSettings::from_env(&env)
}

fn export(vars: &[(&str, &str)]) -> ExportSettings {
    load(vars).unwrap().export.expect("export configured")
}

#[test]
fn an_empty_environment_turns_tracing_off_with_the_spec_defaults() {
    let s = load(&[]).unwrap();
    assert!(s.export.is_none());
    assert_eq!(s.service_name, "agent-mesh");
    assert_eq!(s.sampler, Sampler::ParentBased(RootSampler::AlwaysOn));
    assert!(!s.record_content);
    assert_eq!(s.trace_url, None);
    // An empty value is unset.
    assert!(load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])
        .unwrap()
        .export
        .is_none());
}

#[test]
fn the_base_endpoint_gets_the_traces_path_and_the_traces_endpoint_is_used_as_is() {
    let e = export(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")]);
    assert_eq!(e.endpoint, "http://localhost:4318/v1/traces");
    assert_eq!(e.protocol, Protocol::HttpProtobuf);
    let e = export(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://otlp.example.com/base/",
    )]);
    assert_eq!(e.endpoint, "https://otlp.example.com/base/v1/traces");
    let e = export(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:9/custom/path",
        ),
    ]);
    assert_eq!(e.endpoint, "http://c:9/custom/path");
}

#[test]
fn bad_endpoints_name_their_variable() {
    for (var, url) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url"),
    ] {
        let e = load(&[(var, url)]).unwrap_err();
        assert_eq!(e.variable, var, "{url}");
    }
}

#[test]
fn sdk_disabled_turns_export_off() {
    let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318");
    assert!(load(&[base, ("OTEL_SDK_DISABLED", "TRUE")])
        .unwrap()
        .export
        .is_none());
    assert!(load(&[base, ("OTEL_SDK_DISABLED", "false")])
        .unwrap()
        .export
        .is_some());
    let e = load(&[base, ("OTEL_SDK_DISABLED", "yes please")]).unwrap_err();
    assert_eq!(e.variable, "OTEL_SDK_DISABLED");
}

#[test]
fn protocols_and_a_clear_refusal_of_grpc() {
    let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318");
    let e = export(&[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
    assert_eq!(e.protocol, Protocol::HttpJson);
    let e = export(&[
        base,
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
    ]);
    assert_eq!(e.protocol, Protocol::HttpProtobuf);
    let e = load(&[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap_err();
    assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_PROTOCOL");
    assert!(e.reason.contains("grpc is not supported"), "{}", e.reason);
    let e = load(&[base, ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")]).unwrap_err();
    assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    let e = load(&[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http")]).unwrap_err();
    assert!(e.reason.contains("http/protobuf or http/json"));
}

#[test]
fn headers_are_baggage_style_percent_decoded_and_secret() {
    let e = export(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            " x-honeycomb-team = abc%3D%3D ,Authorization=Basic%20dTpw,,",
        ),
    ]);
    let got: Vec<(&str, &str)> = e
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.expose()))
        .collect();
    assert_eq!(
        got,
        [
            ("x-honeycomb-team", "abc=="),
            ("authorization", "Basic dTpw")
        ]
    );
    let printed = format!("{e:?}");
    assert!(printed.contains("x-honeycomb-team"));
    assert!(
        !printed.contains("abc==") && !printed.contains("dTpw"),
        "{printed}"
    );
    // The traces-specific list replaces the general one.
    let e = export(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"),
    ]);
    assert_eq!(e.headers.len(), 1);
    assert_eq!(e.headers[0].0.as_str(), "b");
}

#[test]
fn bad_headers_name_the_entry_but_never_print_the_value() {
    for (list, want) in [
        ("a=1,novalue", "entry 2 is not key=value"),
        ("bad key=secret-1", "not a header name"),
        ("k=secret-2%zz", "entry 1: the value is not valid"),
        (
            "k=secret-3%0a",
            "entry 1 (k): the value is not a valid header value",
        ),
        ("k=secret-4%ff", "not valid percent-encoded UTF-8"),
    ] {
        let e = load(&[("OTEL_EXPORTER_OTLP_HEADERS", list)]).unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_HEADERS");
        assert!(e.reason.contains(want), "{list}: {}", e.reason);
        assert!(!e.reason.contains("secret"), "{}", e.reason);
    }
}

#[test]
fn samplers_and_their_argument() {
    let s = |vars: &[(&str, &str)]| load(vars).unwrap().sampler;
    assert_eq!(
        s(&[("OTEL_TRACES_SAMPLER", "always_on")]),
        Sampler::Root(RootSampler::AlwaysOn)
    );
    assert_eq!(
        s(&[("OTEL_TRACES_SAMPLER", "always_off")]),
        Sampler::Root(RootSampler::AlwaysOff)
    );
    assert_eq!(
        s(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]),
        Sampler::ParentBased(RootSampler::AlwaysOff)
    );
    assert_eq!(
        s(&[("OTEL_TRACES_SAMPLER", "traceidratio")]),
        Sampler::Root(RootSampler::AlwaysOn),
        "the ratio defaults to 1"
    );
    match s(&[
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
    ]) {
        Sampler::ParentBased(RootSampler::TraceIdRatio { ratio, .. }) => {
            assert_eq!(ratio, 0.25)
        }
        other => panic!("{other:?}"),
    }
    // The argument only matters to ratio samplers.
    assert_eq!(
        s(&[
            ("OTEL_TRACES_SAMPLER", "always_on"),
            ("OTEL_TRACES_SAMPLER_ARG", "x")
        ]),
        Sampler::Root(RootSampler::AlwaysOn)
    );
    for arg in ["1.5", "-0.1", "half"] {
        let e = load(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", arg),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "OTEL_TRACES_SAMPLER_ARG");
    }
    let e = load(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]).unwrap_err();
    assert_eq!(e.variable, "OTEL_TRACES_SAMPLER");
}

#[test]
fn content_recording_service_name_and_trace_links() {
    let s = load(&[
        ("MESH_TRACE_CONTENT", "1"),
        ("OTEL_SERVICE_NAME", "mesh-prod"),
        (
            "MESH_TRACE_URL",
            "https://grafana.example/explore?traceId={trace_id}",
        ),
    ])
    .unwrap();
    assert!(s.record_content);
    assert_eq!(s.service_name, "mesh-prod");
    let id = TraceId([0xab; 16]);
    assert_eq!(
        s.trace_link(&id).unwrap(),
        format!(
            "https://grafana.example/explore?traceId={}",
            "ab".repeat(16)
        )
    );
    assert_eq!(s.trace_link(&TraceId::INVALID), None);
    assert!(!load(&[("MESH_TRACE_CONTENT", "0")]).unwrap().record_content);
    let e = load(&[("MESH_TRACE_CONTENT", "yes")]).unwrap_err();
    assert_eq!(e.variable, "MESH_TRACE_CONTENT");
    for bad in ["https://grafana.example/explore", "grafana/{trace_id}"] {
        let e = load(&[("MESH_TRACE_URL", bad)]).unwrap_err();
        assert_eq!(e.variable, "MESH_TRACE_URL");
    }
}
