//! A run's spending caps (`budget`, SPEC §11) and their live accounting: spend counted
//! from the usage and cost providers report, estimated mid-stream from the streamed
//! text, with the writer's share held back so the specialists stop first.

use super::agent::AgentKind;
use super::events::Usage;
use crate::util::lock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// The caps a run may spend: either or both; `None` is no cap.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BudgetCaps {
    pub usd: Option<f64>,
    pub tokens: Option<u64>,
}

impl BudgetCaps {
    pub fn is_set(&self) -> bool {
        self.usd.is_some() || self.tokens.is_some()
    }

    /// `self` with every cap it lacks taken from `defaults` (a request's caps over the
    /// server's `MESH_RUN_BUDGET_*`).
    pub fn or(self, defaults: BudgetCaps) -> BudgetCaps {
        BudgetCaps {
            usd: self.usd.or(defaults.usd),
            tokens: self.tokens.or(defaults.tokens),
        }
    }
}

/// A model's price in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub in_per_mtok: f64,
    pub out_per_mtok: f64,
}

impl Price {
    pub fn usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (self.in_per_mtok * input_tokens as f64 + self.out_per_mtok * output_tokens as f64)
            / 1_000_000.0
    }
}

/// A run's budget as frozen at its start: the caps, each agent's price then, and the
/// writer's reserve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunBudget {
    pub caps: BudgetCaps,
    /// The caps the request set itself (the others came from `MESH_RUN_BUDGET_*`).
    pub requested: BudgetCaps,
    /// Every agent's model price from the catalog at start (`None`: unknown).
    pub prices: BTreeMap<String, Option<Price>>,
    pub writer: String,
    pub writer_max_tokens: u64,
    /// The writer's prompt without the specialists' outputs (system prompt, task and
    /// earlier turns), estimated in tokens.
    pub writer_base_input_tokens: u64,
}

impl RunBudget {
    fn price(&self, agent: &str) -> Option<Price> {
        self.prices.get(agent).copied().flatten()
    }

    /// The agents whose model has no known price: their dollars count only when the
    /// provider reports a cost, after the call, and the USD cap cannot stop them mid-stream.
    pub fn unpriced(&self) -> Vec<String> {
        self.prices
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// The writer's reserve at the start, in tokens: its `max_tokens` and its prompt.
    pub fn writer_reserve_tokens(&self) -> u64 {
        self.writer_max_tokens + self.writer_base_input_tokens
    }

    /// The writer's reserve in dollars once the specialists have written
    /// `specialist_tokens` (they are its input); 0 when its price is unknown.
    fn writer_reserve_usd(&self, specialist_tokens: u64) -> f64 {
        self.price(&self.writer).map_or(0.0, |p| {
            p.usd(
                self.writer_base_input_tokens + specialist_tokens,
                self.writer_max_tokens,
            )
        })
    }

    /// Why the caps cannot even hold the writer's reserve: the field at fault and a
    /// message naming it.
    pub fn reserve_problem(&self) -> Option<(&'static str, String)> {
        let from = |requested: bool, variable: &str| {
            if requested {
                String::new()
            } else {
                format!(" (from {variable})")
            }
        };
        if let Some(cap) = self.caps.tokens {
            let from = from(self.requested.tokens.is_some(), "MESH_RUN_BUDGET_TOKENS");
            let reserve = self.writer_reserve_tokens();
            if cap < reserve {
                return Some((
                    "budget.tokens",
                    format!(
                        "budget.tokens: {cap}{from} cannot hold the writer's reserve of {reserve} tokens (its max_tokens {} and about {} for its prompt)",
                        self.writer_max_tokens, self.writer_base_input_tokens
                    ),
                ));
            }
        }
        if let Some(cap) = self.caps.usd {
            let from = from(self.requested.usd.is_some(), "MESH_RUN_BUDGET_USD");
            let reserve = self.writer_reserve_usd(0);
            if cap < reserve {
                return Some((
                    "budget.usd",
                    format!(
                        "budget.usd: {cap}{from} cannot hold the writer's reserve of ${reserve:.4} (its max_tokens {} at its price)",
                        self.writer_max_tokens
                    ),
                ));
            }
        }
        None
    }
}

/// Tokens of `chars` characters of text, estimated (about four characters a token in
/// English prose; the reported usage replaces it when the call ends).
pub fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// The run's budget and what it spent, as `done` carries it (and the snapshot and
/// `/api/runs` show it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    pub usd: Option<f64>,
    pub tokens: Option<u64>,
    pub spent_usd: f64,
    pub spent_tokens: u64,
    /// Whether a cap stopped work (a call dropped, or a specialist skipped).
    pub exhausted: bool,
}

/// One agent call the meter counts: a model round of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallId(u64);

struct Call {
    id: u64,
    agent: String,
    kind: AgentKind,
    input_tokens: u64,
    output_chars: usize,
    stopped: bool,
}

#[derive(Default)]
struct Meter {
    spent_tokens: u64,
    spent_usd: f64,
    /// Output tokens of finished specialist calls: the writer's input to come.
    specialist_tokens: u64,
    calls: Vec<Call>,
    next_id: u64,
    writer_started: bool,
    exhausted: bool,
}

/// The live spend of one run against its budget. Without a budget every method is a
/// cheap no-op.
pub struct BudgetMeter {
    budget: Option<RunBudget>,
    meter: Mutex<Meter>,
    /// Bumped whenever calls are stopped, waking their `stopped` futures.
    stop: watch::Sender<u64>,
}

impl BudgetMeter {
    pub fn new(budget: Option<RunBudget>) -> BudgetMeter {
        BudgetMeter {
            budget: budget.filter(|b| b.caps.is_set()),
            meter: Mutex::new(Meter::default()),
            stop: watch::Sender::new(0),
        }
    }

    pub fn budget(&self) -> Option<&RunBudget> {
        self.budget.as_ref()
    }

    /// Whether a call of `agent` whose prompt is `input_chars` long may start: the
    /// reason when the budget refuses it (a cap already stopped work, or its prompt
    /// alone would pass a cap beside the writer's reserve). The writer is never refused:
    /// its share was held back for it.
    pub fn admits(&self, agent: &str, kind: AgentKind, input_chars: usize) -> Result<(), String> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        if kind == AgentKind::Writer {
            return Ok(());
        }
        let mut m = lock(&self.meter);
        if m.exhausted {
            return Err(format!(
                "the run's budget is spent ({})",
                spend_line(budget, &m)
            ));
        }
        let input = estimate_tokens(input_chars);
        let extra = Extra {
            agent,
            tokens: input,
        };
        if let Some(why) = over(budget, &m, Some(extra)) {
            m.exhausted = true;
            return Err(why);
        }
        Ok(())
    }

    /// Starts counting a call (one round of a turn) whose prompt is `input_chars` long;
    /// `None` without a budget or when refused (see [`admits`](Self::admits)).
    pub fn begin(
        &self,
        agent: &str,
        kind: AgentKind,
        input_chars: usize,
    ) -> Result<Option<CallId>, String> {
        if self.budget.is_none() {
            return Ok(None);
        }
        self.admits(agent, kind, input_chars)?;
        let mut m = lock(&self.meter);
        let id = m.next_id;
        m.next_id += 1;
        if kind == AgentKind::Writer {
            m.writer_started = true;
        }
        m.calls.push(Call {
            id,
            agent: agent.to_string(),
            kind,
            input_tokens: estimate_tokens(input_chars),
            output_chars: 0,
            stopped: false,
        });
        Ok(Some(CallId(id)))
    }

    /// Text streamed by a call: when the estimate takes the run past a cap, every
    /// call but the writer's is stopped (this chunk is the overshoot).
    pub fn output(&self, call: CallId, chars: usize) {
        let Some(budget) = &self.budget else {
            return;
        };
        let mut m = lock(&self.meter);
        let Some(c) = m.calls.iter_mut().find(|c| c.id == call.0) else {
            return;
        };
        c.output_chars += chars;
        if c.kind == AgentKind::Writer || c.stopped {
            return;
        }
        if over(budget, &m, None).is_some() {
            self.stop_all(&mut m);
        }
    }

    fn stop_all(&self, m: &mut Meter) {
        m.exhausted = true;
        for c in m.calls.iter_mut().filter(|c| c.kind != AgentKind::Writer) {
            c.stopped = true;
        }
        self.stop.send_modify(|n| *n += 1);
    }

    /// Ends a call with what the provider reported: its usage replaces the estimate,
    /// its cost (reported, or catalog price × usage) adds to the dollars. A run past a
    /// cap afterwards (a reported cost above the estimate) stops the other calls.
    pub fn finish(&self, call: CallId, usage: Option<Usage>, cost_usd: Option<f64>) {
        let Some(budget) = &self.budget else {
            return;
        };
        let mut m = lock(&self.meter);
        let Some(at) = m.calls.iter().position(|c| c.id == call.0) else {
            return;
        };
        let c = m.calls.swap_remove(at);
        let (input, output) = match usage {
            Some(u) => (u.input_tokens, u.output_tokens),
            None => (c.input_tokens, estimate_tokens(c.output_chars)),
        };
        m.spent_tokens += input + output;
        m.spent_usd += cost_usd
            .or_else(|| budget.price(&c.agent).map(|p| p.usd(input, output)))
            .unwrap_or(0.0);
        if c.kind == AgentKind::Specialist {
            m.specialist_tokens += output;
        }
        if c.kind != AgentKind::Writer && over(budget, &m, None).is_some() {
            self.stop_all(&mut m);
        }
    }

    /// A call that ended without a report (failed, stopped or cancelled): its estimate
    /// stays spent, since the provider may bill what it streamed.
    pub fn abandon(&self, call: CallId) {
        self.finish(call, None, None);
    }

    /// Resolves once the budget stopped `call` (never without a budget or a call).
    pub async fn stopped(&self, call: Option<CallId>) {
        let Some(call) = call else {
            return std::future::pending().await;
        };
        let mut rx = self.stop.subscribe();
        // The sender lives as long as `self`, so this only ends by the call stopping.
        let _ = rx.wait_for(|_| self.is_stopped(call)).await;
    }

    fn is_stopped(&self, call: CallId) -> bool {
        lock(&self.meter)
            .calls
            .iter()
            .any(|c| c.id == call.0 && c.stopped)
    }

    /// Why calls were stopped, for their `error` events.
    pub fn stop_reason(&self) -> String {
        let Some(budget) = &self.budget else {
            return String::new();
        };
        let m = lock(&self.meter);
        format!(
            "the run's budget is spent ({}); the call was dropped",
            spend_line(budget, &m)
        )
    }

    pub fn exhausted(&self) -> bool {
        lock(&self.meter).exhausted
    }

    /// The budget and its spend so far (calls in flight by their estimate); `None`
    /// without a budget.
    pub fn report(&self) -> Option<BudgetReport> {
        let budget = self.budget.as_ref()?;
        let m = lock(&self.meter);
        let (tokens, usd) = in_flight(budget, &m);
        Some(BudgetReport {
            usd: budget.caps.usd,
            tokens: budget.caps.tokens,
            spent_usd: m.spent_usd + usd,
            spent_tokens: m.spent_tokens + tokens,
            exhausted: m.exhausted,
        })
    }
}

/// A call about to start, counted as if it had.
struct Extra<'a> {
    agent: &'a str,
    tokens: u64,
}

/// Tokens and dollars of the calls in flight, by their estimates; the second pair is
/// the specialists' output among them (the writer's input to come).
fn in_flight(budget: &RunBudget, m: &Meter) -> (u64, f64) {
    let mut tokens = 0;
    let mut usd = 0.0;
    for c in &m.calls {
        let output = estimate_tokens(c.output_chars);
        tokens += c.input_tokens + output;
        if let Some(p) = budget.price(&c.agent) {
            usd += p.usd(c.input_tokens, output);
        }
    }
    (tokens, usd)
}

/// Why the run is past a cap (spend, calls in flight and `extra`, plus the writer's
/// reserve until the writer starts), or `None`.
fn over(budget: &RunBudget, m: &Meter, extra: Option<Extra<'_>>) -> Option<String> {
    let (mut tokens, mut usd) = in_flight(budget, m);
    if let Some(e) = &extra {
        tokens += e.tokens;
        if let Some(p) = budget.price(e.agent) {
            usd += p.usd(e.tokens, 0);
        }
    }
    let streaming: u64 = m
        .calls
        .iter()
        .filter(|c| c.kind == AgentKind::Specialist)
        .map(|c| estimate_tokens(c.output_chars))
        .sum();
    let specialist_tokens = m.specialist_tokens + streaming;
    let (reserve_tokens, reserve_usd) = if m.writer_started {
        (0, 0.0)
    } else {
        (
            budget.writer_reserve_tokens() + specialist_tokens,
            budget.writer_reserve_usd(specialist_tokens),
        )
    };
    let used_tokens = m.spent_tokens + tokens;
    if let Some(cap) = budget.caps.tokens {
        if used_tokens + reserve_tokens > cap {
            return Some(format!(
                "the token budget of {cap} is spent: {used_tokens} used and {reserve_tokens} held for the writer"
            ));
        }
    }
    let used_usd = m.spent_usd + usd;
    if let Some(cap) = budget.caps.usd {
        if used_usd + reserve_usd > cap {
            return Some(format!(
                "the budget of ${cap} is spent: ${used_usd:.4} used and ${reserve_usd:.4} held for the writer"
            ));
        }
    }
    None
}

fn spend_line(budget: &RunBudget, m: &Meter) -> String {
    let (tokens, usd) = in_flight(budget, m);
    let mut parts = Vec::new();
    if let Some(cap) = budget.caps.tokens {
        parts.push(format!("{} of {cap} tokens", m.spent_tokens + tokens));
    }
    if let Some(cap) = budget.caps.usd {
        parts.push(format!("${:.4} of ${cap}", m.spent_usd + usd));
    }
    parts.join(", ")
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
