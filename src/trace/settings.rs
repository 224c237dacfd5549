//! The tracing variables: the standard `OTEL_*` ones (OTLP endpoint, headers, protocol,
//! service name, sampler, SDK switch) and `MESH_TRACE_CONTENT` / `MESH_TRACE_URL`,
//! read and validated before the server binds (a bad value is an exit-2 error).

use super::sampler::{RootSampler, Sampler};
use crate::model::trace_context::TraceId;
use crate::secret::Secret;
use crate::util::env::{ConfigError, Env};
use hyper::header::{HeaderName, HeaderValue};
use std::fmt;

/// The OTLP/HTTP body encoding (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf`, the default: binary protobuf, `application/x-protobuf`.
    HttpProtobuf,
    /// `http/json`: the OTLP JSON mapping, `application/json`.
    HttpJson,
}

impl Protocol {
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "application/x-protobuf",
            Protocol::HttpJson => "application/json",
        }
    }
}

/// Where and how spans are sent. Present only when an endpoint is configured and the
/// SDK is not disabled.
#[derive(Clone)]
pub struct ExportSettings {
    /// The full traces URL (`…/v1/traces`).
    pub endpoint: String,
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`): typically an API key, so
    /// every value is a `Secret` and only the names are ever printed.
    pub headers: Vec<(HeaderName, Secret)>,
    pub protocol: Protocol,
    /// `OTEL_BSP_SCHEDULE_DELAY` (milliseconds): how long a batch waits for more
    /// spans; `None` keeps the default (5 s).
    pub schedule_delay: Option<std::time::Duration>,
}

impl fmt::Debug for ExportSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ExportSettings")
            .field("endpoint", &self.endpoint)
            .field("headers", &names)
            .field("protocol", &self.protocol)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// `None`: tracing is off and spans cost nothing.
    pub export: Option<ExportSettings>,
    /// `service.name` of every span: `OTEL_SERVICE_NAME`, else the `service.name` of
    /// `OTEL_RESOURCE_ATTRIBUTES`, else `agent-mesh`.
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`: `key=value,…` added to every batch's resource.
    pub resource_attributes: Vec<(String, String)>,
    pub sampler: Sampler,
    /// `MESH_TRACE_CONTENT=1`: prompts and outputs are recorded on spans.
    pub record_content: bool,
    /// `MESH_TRACE_URL`: a link template containing `{trace_id}`.
    pub trace_url: Option<String>,
}

pub const DEFAULT_SERVICE_NAME: &str = "agent-mesh";

impl TraceSettings {
    /// Tracing off: what an empty environment gives.
    pub fn off() -> TraceSettings {
        TraceSettings {
            export: None,
            service_name: DEFAULT_SERVICE_NAME.to_string(),
            resource_attributes: Vec::new(),
            sampler: Sampler::ParentBased(RootSampler::AlwaysOn),
            record_content: false,
            trace_url: None,
        }
    }

    /// Reads every tracing variable; the first problem is returned. An empty value
    /// counts as unset, as the OpenTelemetry specification asks.
    pub fn from_env(env: &dyn Env) -> Result<TraceSettings, ConfigError> {
        let get = |k: &str| {
            env.var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let disabled = match get("OTEL_SDK_DISABLED").map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "false" => false,
            Some(v) if v == "true" => true,
            Some(v) => {
                return Err(error(
                    "OTEL_SDK_DISABLED",
                    format!("\"{v}\" is not true or false"),
                ))
            }
        };

        let endpoint = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => Some(check_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)?),
            (None, Some(base)) => {
                let base = check_url("OTEL_EXPORTER_OTLP_ENDPOINT", base)?;
                Some(format!("{}/v1/traces", base.trim_end_matches('/')))
            }
            (None, None) => None,
        };

        // The traces-specific variable, when set, replaces the general one.
        let (protocol_var, protocol) = first_set(
            &get,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ],
        );
        let protocol = match protocol.as_deref() {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("http/json") => Protocol::HttpJson,
            Some("grpc") => {
                return Err(error(
                    protocol_var,
                    "grpc is not supported: agent-mesh exports over OTLP/HTTP; set http/protobuf (the collector's port 4318) or http/json",
                ))
            }
            Some(v) => {
                return Err(error(
                    protocol_var,
                    format!("\"{v}\" is not http/protobuf or http/json"),
                ))
            }
        };

        let (headers_var, headers) = first_set(
            &get,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ],
        );
        let headers = match headers {
            Some(list) => parse_headers(&list).map_err(|reason| error(headers_var, reason))?,
            None => Vec::new(),
        };

        let resource_attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(list) => {
                parse_pairs(&list).map_err(|reason| error("OTEL_RESOURCE_ATTRIBUTES", reason))?
            }
            None => Vec::new(),
        };
        let service_name = get("OTEL_SERVICE_NAME")
            .or_else(|| {
                resource_attributes
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
        let sampler = parse_sampler(&get)?;

        let record_content = match get("MESH_TRACE_CONTENT").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(v) => {
                return Err(error(
                    "MESH_TRACE_CONTENT",
                    format!("\"{v}\" is not 1 or 0"),
                ))
            }
        };

        let schedule_delay = match get("OTEL_BSP_SCHEDULE_DELAY") {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(ms) => Some(std::time::Duration::from_millis(ms)),
                Err(_) => {
                    return Err(error(
                        "OTEL_BSP_SCHEDULE_DELAY",
                        format!("\"{v}\" is not a number of milliseconds"),
                    ))
                }
            },
        };

        let trace_url = match get("MESH_TRACE_URL") {
            None => None,
            Some(t) => {
                if !t.contains("{trace_id}") {
                    return Err(error(
                        "MESH_TRACE_URL",
                        "the template must contain {trace_id}, e.g. https://grafana.example.com/explore?traceId={trace_id}",
                    ));
                }
                if !(t.starts_with("http://") || t.starts_with("https://")) {
                    return Err(error(
                        "MESH_TRACE_URL",
                        "must start with http:// or https://",
                    ));
                }
                Some(t)
            }
        };

        Ok(TraceSettings {
            export: match endpoint {
                Some(endpoint) if !disabled => Some(ExportSettings {
                    endpoint,
                    headers,
                    protocol,
                    schedule_delay,
                }),
                _ => None,
            },
            service_name,
            resource_attributes,
            sampler,
            record_content,
            trace_url,
        })
    }

    /// The page's link to a trace, from `MESH_TRACE_URL`.
    pub fn trace_link(&self, trace_id: &TraceId) -> Option<String> {
        if !trace_id.is_valid() {
            return None;
        }
        self.trace_url
            .as_ref()
            .map(|t| t.replace("{trace_id}", &trace_id.to_hex()))
    }
}

fn error(variable: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_string(),
        reason: reason.into(),
    }
}

fn first_set<'a>(
    get: &dyn Fn(&str) -> Option<String>,
    vars: &[&'a str],
) -> (&'a str, Option<String>) {
    for var in vars {
        if let Some(v) = get(var) {
            return (var, Some(v));
        }
    }
    (vars[vars.len() - 1], None)
}

/// An http(s) URL with a host; the value is printed only when it is not one (an
/// endpoint is not a secret, but a user may have put a token in its query).
fn check_url(var: &str, url: String) -> Result<String, ConfigError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| error(var, "not a URL like http://localhost:4318"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(error(var, "must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(error(var, "the URL has no host"));
    }
    Ok(url)
}

/// `key=value,key2=value2` in the W3C Baggage format: entries split on commas,
/// whitespace around keys and values trimmed, both percent-decoded. Errors name the
/// entry's position and never its value (it may be a secret).
pub fn parse_pairs(list: &str) -> Result<Vec<(String, String)>, String> {
    Ok(numbered_pairs(list)?
        .into_iter()
        .map(|(_, k, v)| (k, v))
        .collect())
}

/// The pairs with their 1-based position in the list, for error messages.
fn numbered_pairs(list: &str) -> Result<Vec<(usize, String, String)>, String> {
    let mut out = Vec::new();
    for (i, entry) in list.split(',').enumerate() {
        let n = i + 1;
        if entry.trim().is_empty() {
            continue;
        }
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| format!("entry {n} is not key=value"))?;
        let key = percent_decode(key.trim())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                format!("entry {n}: the key is empty or not valid percent-encoded UTF-8")
            })?;
        let value = percent_decode(value.trim())
            .ok_or_else(|| format!("entry {n}: the value is not valid percent-encoded UTF-8"))?;
        out.push((n, key, value));
    }
    Ok(out)
}

/// The OTLP headers: pairs whose keys are header names and values header values.
pub fn parse_headers(list: &str) -> Result<Vec<(HeaderName, Secret)>, String> {
    let mut out = Vec::new();
    for (n, key, value) in numbered_pairs(list)? {
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| format!("entry {n}: \"{key}\" is not a header name"))?;
        if HeaderValue::from_str(&value).is_err() {
            return Err(format!(
                "entry {n} ({name}): the value is not a valid header value"
            ));
        }
        out.push((name, Secret::new(value)));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let digits = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(digits, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_sampler(get: &dyn Fn(&str) -> Option<String>) -> Result<Sampler, ConfigError> {
    const VAR: &str = "OTEL_TRACES_SAMPLER";
    let ratio = || -> Result<RootSampler, ConfigError> {
        match get("OTEL_TRACES_SAMPLER_ARG") {
            None => Ok(RootSampler::ratio(1.0)),
            Some(v) => match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(RootSampler::ratio(r)),
                _ => Err(error(
                    "OTEL_TRACES_SAMPLER_ARG",
                    format!("\"{v}\" is not a ratio from 0 to 1"),
                )),
            },
        }
    };
    let name = get(VAR).map(|v| v.to_ascii_lowercase());
    Ok(match name.as_deref() {
        None | Some("parentbased_always_on") => Sampler::ParentBased(RootSampler::AlwaysOn),
        Some("parentbased_always_off") => Sampler::ParentBased(RootSampler::AlwaysOff),
        Some("parentbased_traceidratio") => Sampler::ParentBased(ratio()?),
        Some("always_on") => Sampler::Root(RootSampler::AlwaysOn),
        Some("always_off") => Sampler::Root(RootSampler::AlwaysOff),
        Some("traceidratio") => Sampler::Root(ratio()?),
        Some(v) => {
            return Err(error(
                VAR,
                format!(
                    "\"{v}\" is not one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                ),
            ))
        }
    })
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
