//! The model catalog (SPEC §5.5): each configured provider's live model list, fetched
//! in the background (serving never waits), with a compiled-in fallback per provider,
//! tiers by price or name, and catalog prices for costing calls.

use super::client::HttpClient;
use super::descriptor::{descriptor, CatalogWire};
use super::Providers;
use crate::clock;
use crate::model::provider_id::ProviderId;
use crate::secret::Secret;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
pub const REFRESH_EVERY: Duration = Duration::from_secs(6 * 3600);
const MAX_CATALOG_BYTES: usize = 16 << 20;
const MAX_ANTHROPIC_PAGES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Budget,
    Standard,
    Premium,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub context_length: Option<u64>,
    pub price_in_per_mtok: Option<f64>,
    pub price_out_per_mtok: Option<f64>,
    pub tier: Tier,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Live,
    Fallback,
}

#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub source: Source,
    pub fetched_at: SystemTime,
    pub models: Vec<ModelInfo>,
    /// Why the live list could not be had, when the fallback is shown.
    pub error: Option<String>,
}

impl CatalogEntry {
    pub fn to_json(&self, provider: ProviderId) -> Value {
        serde_json::json!({
            "provider": provider.as_str(),
            "source": self.source,
            "fetched_at": clock::rfc3339(self.fetched_at),
            "models": self.models,
        })
    }

    pub fn find(&self, id: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|m| m.id == id)
    }
}

/// Tier by output price per million tokens, else by the model's name.
pub fn tier_of(id: &str, price_in: Option<f64>, price_out: Option<f64>) -> Tier {
    if id.ends_with(":free") || (price_in == Some(0.0) && price_out == Some(0.0)) {
        return Tier::Free;
    }
    if let Some(out) = price_out {
        return if out < 1.0 {
            Tier::Budget
        } else if out < 10.0 {
            Tier::Standard
        } else {
            Tier::Premium
        };
    }
    let n = id.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    let is_o1 = n == "o1" || n.starts_with("o1-") || n.contains("/o1");
    if has(&["8b", "mini", "haiku", "flash"]) {
        Tier::Budget
    } else if has(&["405b", "opus"]) || is_o1 {
        Tier::Premium
    } else {
        // 70b, sonnet, gpt-4o and everything unknown.
        Tier::Standard
    }
}

fn model(
    id: &str,
    name: &str,
    context: Option<u64>,
    price_in: Option<f64>,
    price_out: Option<f64>,
) -> ModelInfo {
    ModelInfo {
        id: id.to_string(),
        name: name.to_string(),
        context_length: context,
        price_in_per_mtok: price_in,
        price_out_per_mtok: price_out,
        tier: tier_of(id, price_in, price_out),
    }
}

/// The compiled-in list used when the live one cannot be fetched. Prices are USD per
/// million tokens as published by each provider; they only estimate cost.
/// `roster_models` are the model ids the roster names (the offline provider's list).
pub fn fallback(provider: ProviderId, roster_models: &[String]) -> Vec<ModelInfo> {
    let p = |v: f64| Some(v);
    match provider {
        ProviderId::OpenRouter => vec![
            model(
                "anthropic/claude-haiku-4.5",
                "Anthropic: Claude Haiku 4.5",
                Some(200_000),
                p(1.0),
                p(5.0),
            ),
            model(
                "anthropic/claude-sonnet-4.5",
                "Anthropic: Claude Sonnet 4.5",
                Some(1_000_000),
                p(3.0),
                p(15.0),
            ),
            model(
                "anthropic/claude-opus-4.1",
                "Anthropic: Claude Opus 4.1",
                Some(200_000),
                p(15.0),
                p(75.0),
            ),
            model(
                "meta-llama/llama-3.1-8b-instruct",
                "Meta: Llama 3.1 8B Instruct",
                Some(131_072),
                p(0.02),
                p(0.03),
            ),
            model(
                "meta-llama/llama-3.3-70b-instruct",
                "Meta: Llama 3.3 70B Instruct",
                Some(131_072),
                p(0.13),
                p(0.39),
            ),
            model(
                "qwen/qwen-2.5-coder-32b-instruct",
                "Qwen2.5 Coder 32B Instruct",
                Some(32_768),
                p(0.06),
                p(0.15),
            ),
            model(
                "openai/gpt-4o",
                "OpenAI: GPT-4o",
                Some(128_000),
                p(2.5),
                p(10.0),
            ),
            model(
                "openai/gpt-4o-mini",
                "OpenAI: GPT-4o-mini",
                Some(128_000),
                p(0.15),
                p(0.6),
            ),
            model(
                "nousresearch/hermes-4-70b",
                "Nous: Hermes 4 70B",
                Some(131_072),
                p(0.11),
                p(0.38),
            ),
        ],
        ProviderId::Anthropic => vec![
            model(
                "claude-haiku-4-5",
                "Claude Haiku 4.5",
                Some(200_000),
                p(1.0),
                p(5.0),
            ),
            model(
                "claude-sonnet-4-5",
                "Claude Sonnet 4.5",
                Some(200_000),
                p(3.0),
                p(15.0),
            ),
            model(
                "claude-opus-4-1",
                "Claude Opus 4.1",
                Some(200_000),
                p(15.0),
                p(75.0),
            ),
        ],
        ProviderId::OpenAi => vec![
            model("gpt-4o", "GPT-4o", Some(128_000), p(2.5), p(10.0)),
            model("gpt-4o-mini", "GPT-4o mini", Some(128_000), p(0.15), p(0.6)),
            model("gpt-4.1", "GPT-4.1", Some(1_047_576), p(2.0), p(8.0)),
            model(
                "gpt-4.1-mini",
                "GPT-4.1 mini",
                Some(1_047_576),
                p(0.4),
                p(1.6),
            ),
        ],
        ProviderId::Nous => vec![
            model("Hermes-4-405B", "Hermes 4 405B", Some(131_072), None, None),
            model("Hermes-4-70B", "Hermes 4 70B", Some(131_072), None, None),
        ],
        ProviderId::Custom => Vec::new(),
        ProviderId::Offline => {
            let mut ids: Vec<&str> = roster_models.iter().map(String::as_str).collect();
            ids.dedup();
            ids.into_iter()
                .map(|id| {
                    model(
                        id,
                        &format!("{id} (offline placeholder)"),
                        None,
                        p(0.0),
                        p(0.0),
                    )
                })
                .collect()
        }
    }
}

/// OpenAI's list includes models that cannot chat; they are left out.
pub fn is_openai_chat_model(id: &str) -> bool {
    const NON_CHAT: &[&str] = &[
        "embedding",
        "tts",
        "whisper",
        "transcribe",
        "dall-e",
        "image",
        "moderation",
        "realtime",
        "audio",
        "babbage",
        "davinci",
        "search",
        "computer-use",
        "sora",
    ];
    let id = id.to_ascii_lowercase();
    !NON_CHAT.iter().any(|w| id.contains(w))
}

/// OpenRouter prices are strings in USD per token.
fn per_mtok(v: Option<&Value>) -> Option<f64> {
    let per_token = match v? {
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    // A negative price is OpenRouter's "variable" marker (routers); treat as unknown.
    (per_token >= 0.0).then(|| (per_token * 1_000_000.0 * 1e6).round() / 1e6)
}

/// Parses a `{"data":[...]}` model list in the OpenAI/OpenRouter shape.
pub fn parse_openai_style(provider: ProviderId, body: &Value) -> Result<Vec<ModelInfo>, String> {
    let list = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| "the model list has no \"data\" array".to_string())?;
    let mut out = Vec::with_capacity(list.len());
    for m in list {
        let Some(id) = m
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        if descriptor(provider).catalog_has_non_chat_models && !is_openai_chat_model(id) {
            continue;
        }
        let name = m.get("name").and_then(Value::as_str).unwrap_or(id);
        let context = m
            .get("context_length")
            .or_else(|| m.get("max_model_len"))
            .or_else(|| m.pointer("/top_provider/context_length"))
            .and_then(Value::as_u64);
        let price_in = per_mtok(m.pointer("/pricing/prompt"));
        let price_out = per_mtok(m.pointer("/pricing/completion"));
        out.push(model(id, name, context, price_in, price_out));
    }
    Ok(out)
}

pub fn parse_anthropic_page(body: &Value) -> Result<(Vec<ModelInfo>, Option<String>), String> {
    let list = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| "the model list has no \"data\" array".to_string())?;
    let fallback = fallback(ProviderId::Anthropic, &[]);
    let models = list
        .iter()
        .filter_map(|m| {
            let id = m.get("id").and_then(Value::as_str)?;
            let name = m.get("display_name").and_then(Value::as_str).unwrap_or(id);
            // The list carries no prices; known models keep the published ones.
            let known = fallback.iter().find(|f| id.starts_with(&f.id));
            Some(model(
                id,
                name,
                known.and_then(|k| k.context_length),
                known.and_then(|k| k.price_in_per_mtok),
                known.and_then(|k| k.price_out_per_mtok),
            ))
        })
        .collect();
    let next = (body.get("has_more").and_then(Value::as_bool) == Some(true))
        .then(|| {
            body.get("last_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .flatten();
    Ok((models, next))
}

/// The catalog of every provider, shared by the API, the CLI and the pipeline.
pub struct Catalog {
    entries: Mutex<HashMap<ProviderId, CatalogEntry>>,
    /// The roster's model ids, for the offline provider's fallback list.
    roster_models: Vec<String>,
    /// Held while the provider's list is fetched: a refresh that finds it held
    /// waits for that fetch instead of starting another (single flight).
    fetching: HashMap<ProviderId, tokio::sync::Mutex<()>>,
}

impl Catalog {
    /// Starts with every provider's fallback list; `refresh` replaces it with the live one.
    pub fn new(roster_models: &[String]) -> Catalog {
        let entries = ProviderId::ALL
            .into_iter()
            .map(|p| {
                (
                    p,
                    CatalogEntry {
                        source: Source::Fallback,
                        fetched_at: SystemTime::now(),
                        models: fallback(p, roster_models),
                        error: None,
                    },
                )
            })
            .collect();
        Catalog {
            entries: Mutex::new(entries),
            roster_models: roster_models.to_vec(),
            fetching: ProviderId::ALL
                .into_iter()
                .map(|p| (p, tokio::sync::Mutex::new(())))
                .collect(),
        }
    }

    pub fn get(&self, provider: ProviderId) -> CatalogEntry {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&provider)
            .cloned()
            .unwrap_or_else(|| CatalogEntry {
                source: Source::Fallback,
                fetched_at: SystemTime::now(),
                models: Vec::new(),
                error: None,
            })
    }

    /// Estimated cost of a call from catalog prices, when both are known.
    pub fn cost(
        &self,
        provider: ProviderId,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> Option<f64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let m = entries.get(&provider)?.find(model)?;
        let (pi, po) = (m.price_in_per_mtok?, m.price_out_per_mtok?);
        Some((pi * input_tokens as f64 + po * output_tokens as f64) / 1_000_000.0)
    }

    /// Fetches the provider's live list (10 s), keeping the fallback on failure. Single
    /// flight: a refresh asked for while one is under way waits for it and answers
    /// with its result, so any number of concurrent refreshes make one upstream fetch.
    pub async fn refresh(&self, providers: &Providers, provider: ProviderId) -> CatalogEntry {
        let Some(fetching) = self.fetching.get(&provider) else {
            return self.fetch_entry(providers, provider).await;
        };
        let _fetching = match fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // A fetch is under way: wait for it to end and answer with its result.
                drop(fetching.lock().await);
                return self.get(provider);
            }
        };
        self.fetch_entry(providers, provider).await
    }

    async fn fetch_entry(&self, providers: &Providers, provider: ProviderId) -> CatalogEntry {
        let live = descriptor(provider).has_live_catalog();
        let result = if !live {
            Err(format!("the {provider} provider has no live catalog"))
        } else {
            match tokio::time::timeout(FETCH_TIMEOUT, fetch(providers, provider)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} s", FETCH_TIMEOUT.as_secs())),
            }
        };
        let entry = match result {
            Ok(models) => CatalogEntry {
                source: Source::Live,
                fetched_at: SystemTime::now(),
                models,
                error: None,
            },
            Err(e) => {
                if live {
                    crate::log_warn!("catalog: {provider}: using the built-in list ({e})");
                }
                CatalogEntry {
                    source: Source::Fallback,
                    fetched_at: SystemTime::now(),
                    models: fallback(provider, &self.roster_models),
                    error: Some(e),
                }
            }
        };
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(provider, entry.clone());
        entry
    }

    /// Refreshes every configured provider now and then every 6 hours.
    pub async fn keep_fresh(
        self: std::sync::Arc<Self>,
        providers: std::sync::Arc<Providers>,
        configured: Vec<ProviderId>,
    ) {
        loop {
            for p in configured
                .iter()
                .copied()
                .filter(|p| descriptor(*p).has_live_catalog())
            {
                let entry = self.refresh(&providers, p).await;
                crate::log_info!(
                    "catalog: {p}: {} models ({:?})",
                    entry.models.len(),
                    entry.source
                );
            }
            tokio::time::sleep(REFRESH_EVERY).await;
        }
    }
}

async fn get_json(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, String, bool)],
) -> Result<Value, String> {
    let mut builder = hyper::Request::get(url).header(ACCEPT, "application/json");
    for (k, v, sensitive) in headers {
        let mut hv = HeaderValue::from_str(v).map_err(|_| format!("invalid {k} header"))?;
        hv.set_sensitive(*sensitive);
        builder = builder.header(*k, hv);
    }
    let request = builder
        .body(http_body_util::Full::new(Bytes::new()))
        .map_err(|e| format!("invalid URL {url}: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), MAX_CATALOG_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the model list failed: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("{url} answered {}", status.as_u16()));
    }
    serde_json::from_slice(&body).map_err(|e| format!("the model list is not JSON: {e}"))
}

async fn fetch(providers: &Providers, provider: ProviderId) -> Result<Vec<ModelInfo>, String> {
    let client = providers.client();
    let (base, key) = providers.catalog_endpoint(provider).await?;
    let bearer = |key: &Option<Secret>| -> Vec<(&'static str, String, bool)> {
        key.as_ref()
            .map(|k| {
                vec![(
                    AUTHORIZATION.as_str(),
                    format!("Bearer {}", k.expose()),
                    true,
                )]
            })
            .unwrap_or_default()
    };
    match descriptor(provider).catalog {
        CatalogWire::AnthropicPages => {
            let key = key.ok_or("ANTHROPIC_API_KEY is not set")?;
            let headers = [
                ("x-api-key", key.expose().to_string(), true),
                (
                    "anthropic-version",
                    super::anthropic::API_VERSION.to_string(),
                    false,
                ),
            ];
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            for _ in 0..MAX_ANTHROPIC_PAGES {
                let url = match &after {
                    None => format!("{base}/v1/models?limit=1000"),
                    Some(id) => format!("{base}/v1/models?limit=1000&after_id={id}"),
                };
                let (models, next) =
                    parse_anthropic_page(&get_json(client, &url, &headers).await?)?;
                all.extend(models);
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            Ok(all)
        }
        _ => parse_openai_style(
            provider,
            &get_json(client, &format!("{base}/models"), &bearer(&key)).await?,
        ),
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
