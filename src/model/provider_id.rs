//! The closed set of providers a run can be routed to.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderId {
    OpenRouter,
    Nous,
    Anthropic,
    OpenAi,
    Custom,
    Offline,
}

/// Stored as its name (a shared store keeps each run's frozen config as JSON).
impl serde::Serialize for ProviderId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ProviderId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ProviderId::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown provider {name}")))
    }
}

impl ProviderId {
    /// Preference order when `MESH_PROVIDER` is not set (SPEC §2); offline last.
    pub const ALL: [ProviderId; 6] = [
        ProviderId::OpenRouter,
        ProviderId::Nous,
        ProviderId::Anthropic,
        ProviderId::OpenAi,
        ProviderId::Custom,
        ProviderId::Offline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::OpenRouter => "openrouter",
            ProviderId::Nous => "nous",
            ProviderId::Anthropic => "anthropic",
            ProviderId::OpenAi => "openai",
            ProviderId::Custom => "custom",
            ProviderId::Offline => "offline",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            ProviderId::OpenRouter => "OpenRouter",
            ProviderId::Nous => "Nous Portal",
            ProviderId::Anthropic => "Anthropic",
            ProviderId::OpenAi => "OpenAI",
            ProviderId::Custom => "Custom (OpenAI-compatible)",
            ProviderId::Offline => "Offline (placeholder answers)",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderId> {
        let s = s.trim();
        ProviderId::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_roundtrips_every_id() {
        for p in ProviderId::ALL {
            assert_eq!(ProviderId::parse(p.as_str()), Some(p));
        }
        assert_eq!(
            ProviderId::parse("OpenRouter"),
            Some(ProviderId::OpenRouter)
        );
        assert_eq!(ProviderId::parse("gemini"), None);
    }
}
