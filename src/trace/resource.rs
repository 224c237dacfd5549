//! What every exported batch says about this process: the resource (`service.name`,
//! version, SDK, `OTEL_RESOURCE_ATTRIBUTES`) and the instrumentation scope.

use super::settings::TraceSettings;

/// What every exported batch says about this process: the resource attributes
/// (`service.name` first) and the instrumentation scope.
#[derive(Debug, Clone)]
pub struct Resource {
    pub attributes: Vec<(String, String)>,
    pub scope_name: &'static str,
    pub scope_version: &'static str,
}

impl Resource {
    pub fn new(settings: &TraceSettings) -> Resource {
        let version = env!("CARGO_PKG_VERSION");
        let mut attributes = vec![("service.name".to_string(), settings.service_name.clone())];
        for (k, v) in [
            ("service.version", version),
            ("telemetry.sdk.name", "agent-mesh"),
            ("telemetry.sdk.language", "rust"),
            ("telemetry.sdk.version", version),
        ] {
            attributes.push((k.to_string(), v.to_string()));
        }
        // OTEL_RESOURCE_ATTRIBUTES adds to these (its service.name was already
        // weighed against OTEL_SERVICE_NAME by the settings).
        for (k, v) in &settings.resource_attributes {
            match attributes.iter_mut().find(|(key, _)| key == k) {
                Some(_) if k == "service.name" => {}
                Some(existing) => existing.1 = v.clone(),
                None => attributes.push((k.clone(), v.clone())),
            }
        }
        Resource {
            attributes,
            scope_name: "agent-mesh",
            scope_version: version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_service_name_may_come_from_the_resource_attributes() {
        let env: HashMap<&str, &str> = [("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource")]
            .into_iter()
            .collect();
        let settings = TraceSettings::from_env(&env).unwrap();
        assert_eq!(Resource::new(&settings).attributes[0].1, "from-resource");
    }

    #[test]
    fn the_resource_names_the_service_and_takes_extra_attributes() {
        let env: HashMap<&str, &str> = [
            ("OTEL_SERVICE_NAME", "mesh-eu"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,service.name=ignored,service.version=9",
            ),
        ]
        .into_iter()
        .collect();
        let settings = TraceSettings::from_env(&env).unwrap();
        let r = Resource::new(&settings);
        let get = |k: &str| {
            r.attributes
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(r.attributes[0].0, "service.name");
        assert_eq!(get("service.name"), Some("mesh-eu"));
        assert_eq!(get("deployment.environment"), Some("prod"));
        assert_eq!(get("service.version"), Some("9"));
        assert_eq!(get("telemetry.sdk.language"), Some("rust"));
    }
}
