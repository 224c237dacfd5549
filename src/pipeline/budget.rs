//! A run's budget at its start: the caps (`MESH_RUN_BUDGET_USD`, `MESH_RUN_BUDGET_TOKENS`,
//! or the request's `budget`), each agent's price from the catalog, the writer's reserve,
//! and the warning a run gives when the USD cap cannot see every model's price. The
//! live accounting is [`crate::model::budget::BudgetMeter`].

use crate::model::agent::AgentKind;
use crate::model::budget::{estimate_tokens, BudgetCaps, Price, RunBudget};
use crate::model::events::{AgentState, Event, StatusEvent};
use crate::model::provider_id::ProviderId;
use crate::model::run_config::{AgentConfig, RunConfig};
use crate::model::run_context::RunContext;
use crate::providers::call::Message;
use crate::providers::catalog::Catalog;
use crate::providers::routing::resolve_model;
use crate::util::env::{ConfigError, Vars};

/// The server's default caps; a bad value stops startup naming its variable.
pub fn defaults_from_env(vars: &Vars) -> Result<BudgetCaps, ConfigError> {
    let usd = match vars.get("MESH_RUN_BUDGET_USD") {
        None => None,
        Some(v) => match v.parse::<f64>() {
            Ok(usd) if usd.is_finite() && usd > 0.0 => Some(usd),
            _ => {
                return Err(ConfigError::new(
                    "MESH_RUN_BUDGET_USD",
                    format!("\"{v}\" is not a positive number of US dollars"),
                ))
            }
        },
    };
    let tokens = match vars.get("MESH_RUN_BUDGET_TOKENS") {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(tokens) if tokens > 0 => Some(tokens),
            _ => {
                return Err(ConfigError::new(
                    "MESH_RUN_BUDGET_TOKENS",
                    format!("\"{v}\" is not a positive whole number of tokens"),
                ))
            }
        },
    };
    Ok(BudgetCaps { usd, tokens })
}

/// The run's budget, frozen: `requested` caps over `defaults`, each agent's price now,
/// the writer's reserve. `None` when neither sets a cap.
pub fn freeze(
    requested: Option<BudgetCaps>,
    defaults: BudgetCaps,
    agents: &[AgentConfig],
    catalog: &Catalog,
    task: &str,
) -> Option<RunBudget> {
    let caps = requested.unwrap_or_default().or(defaults);
    if !caps.is_set() {
        return None;
    }
    let writer = agents.iter().find(|a| a.kind == AgentKind::Writer)?;
    Some(RunBudget {
        caps,
        requested: requested.unwrap_or_default(),
        prices: agents
            .iter()
            .map(|a| (a.name.clone(), price_of(a, catalog)))
            .collect(),
        writer: writer.name.clone(),
        writer_max_tokens: u64::from(writer.max_tokens),
        writer_base_input_tokens: estimate_tokens(
            writer.prompt.chars().count() + task.chars().count() + WRITER_FRAME_CHARS,
        ),
    })
}

/// The writer's message around the task and the notes (plan line, headings, closing
/// instruction), counted in its reserve.
const WRITER_FRAME_CHARS: usize = 400;

/// Counts a follow-up's earlier turns in the writer's reserve (every agent re-reads them).
pub fn add_history(config: &mut RunConfig) {
    let chars: usize = config
        .conversation
        .turns
        .iter()
        .map(|t| t.task.chars().count() + t.output.chars().count())
        .sum();
    if let Some(b) = &mut config.budget {
        b.writer_base_input_tokens += estimate_tokens(chars);
    }
}

/// An agent's model price now: the catalog's, or nothing for offline placeholders.
fn price_of(agent: &AgentConfig, catalog: &Catalog) -> Option<Price> {
    if agent.provider == ProviderId::Offline {
        return Some(Price {
            in_per_mtok: 0.0,
            out_per_mtok: 0.0,
        });
    }
    let (model, _) = resolve_model(agent.provider, &agent.model, agent.kind);
    let entry = catalog.get(agent.provider);
    let m = entry.find(&model)?;
    Some(Price {
        in_per_mtok: m.price_in_per_mtok?,
        out_per_mtok: m.price_out_per_mtok?,
    })
}

/// Says at the run's start when its USD cap cannot see every model's price.
pub fn announce(run: &RunContext) {
    let Some(budget) = &run.config.budget else {
        return;
    };
    if budget.caps.usd.is_none() {
        return;
    }
    let unpriced = budget.unpriced();
    if unpriced.is_empty() {
        return;
    }
    let models: Vec<String> = unpriced
        .iter()
        .filter_map(|name| run.config.agent(name))
        .map(|a| format!("{} ({} {})", a.name, a.provider, a.model))
        .collect();
    run.push(Event::Status(StatusEvent {
        agent: None,
        state: AgentState::Planning,
        detail: format!(
            "budget: no price is known for {}: the USD cap cannot be enforced for them (their dollars count only if the provider reports a cost, after each call)",
            models.join(", ")
        ),
    }));
}

/// The characters of a call's prompt, for its token estimate.
pub fn input_chars(messages: &[Message]) -> usize {
    messages
        .iter()
        .flat_map(|m| m.texts())
        .map(|t| t.chars().count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<BudgetCaps, ConfigError> {
        crate::util::env::read_pairs(pairs, defaults_from_env)
    }

    #[test]
    fn defaults_come_from_the_variables_and_a_bad_one_is_named() {
        assert_eq!(load(&[]).unwrap(), BudgetCaps::default());
        let caps = load(&[
            ("MESH_RUN_BUDGET_USD", "0.5"),
            ("MESH_RUN_BUDGET_TOKENS", "200000"),
        ])
        .unwrap();
        assert_eq!(caps.usd, Some(0.5));
        assert_eq!(caps.tokens, Some(200_000));
        for (var, value) in [
            ("MESH_RUN_BUDGET_USD", "0"),
            ("MESH_RUN_BUDGET_USD", "-1"),
            ("MESH_RUN_BUDGET_USD", "lots"),
            ("MESH_RUN_BUDGET_USD", "inf"),
            ("MESH_RUN_BUDGET_TOKENS", "1.5"),
            ("MESH_RUN_BUDGET_TOKENS", "0"),
            ("MESH_RUN_BUDGET_TOKENS", "many"),
        ] {
            let e = load(&[(var, value)]).unwrap_err();
            assert_eq!(e.variable, var, "{value}");
            assert!(e.reason.contains(value), "{e}");
        }
    }

    #[test]
    fn a_request_sets_its_own_caps_over_the_defaults() {
        let defaults = BudgetCaps {
            usd: Some(1.0),
            tokens: None,
        };
        let roster = crate::pipeline::roster::Roster::builtin();
        let catalog = Catalog::new(&roster.model_ids());
        let agents: Vec<AgentConfig> = roster
            .agents()
            .iter()
            .map(|a| AgentConfig {
                name: a.name.clone(),
                title: a.title.clone(),
                emoji: a.emoji.clone(),
                kind: a.kind,
                role: a.role.clone(),
                prompt: a.prompt.clone(),
                provider: ProviderId::OpenRouter,
                model: a.model.clone(),
                max_tokens: a.max_tokens,
                warning: None,
                tools: None,
            })
            .collect();
        assert!(freeze(None, BudgetCaps::default(), &agents, &catalog, "t").is_none());
        let b = freeze(
            Some(BudgetCaps {
                usd: None,
                tokens: Some(50_000),
            }),
            defaults,
            &agents,
            &catalog,
            "t",
        )
        .unwrap();
        assert_eq!(b.caps.usd, Some(1.0));
        assert_eq!(b.caps.tokens, Some(50_000));
        assert_eq!(b.writer, "writer");
        assert_eq!(b.writer_max_tokens, 8192);
        // OpenRouter's built-in list prices every model of the built-in roster.
        assert!(b.unpriced().is_empty(), "{:?}", b.unpriced());
        assert_eq!(
            b.prices["writer"],
            Some(Price {
                in_per_mtok: 3.0,
                out_per_mtok: 15.0
            })
        );
        assert!(b.reserve_problem().is_none());
        let mut custom = agents.clone();
        custom[4].provider = ProviderId::Custom;
        let b = freeze(None, defaults, &custom, &catalog, "t").unwrap();
        assert_eq!(b.unpriced(), ["writer"]);
    }
}
