//! Runs the plan's specialists: one after another (`sequential`), or as a dependency
//! graph (`parallel`) where each starts as soon as everything it is `after` has
//! finished, at most `max_parallel` calls at once. The calls are futures polled by
//! this one ([`Calls`]), not spawned tasks: cancelling the run drops the pipeline's
//! future, which drops every call in flight in the same instant and closes their
//! upstream connections, with nothing left running behind it.

use super::{call_agent, digest, prompts, tokens_first, AgentFailure};
use crate::model::events::PlanEvent;
use crate::model::run_config::Schedule;
use crate::model::run_context::RunContext;
use crate::providers::Providers;
use crate::util::lock;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

/// The agents whose calls are running, in the order they started: on cancel, each
/// gets its `error` and `status failed`.
#[derive(Default)]
pub struct InFlight(Mutex<Vec<String>>);

impl InFlight {
    pub fn start(&self, name: &str) {
        lock(&self.0).push(name.to_string());
    }

    pub fn end(&self, name: &str) {
        lock(&self.0).retain(|n| n != name);
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.0))
    }
}

type Call<'a> = Pin<Box<dyn Future<Output = Result<String, AgentFailure>> + Send + 'a>>;

/// The calls in flight, each with its team index: a tiny `FuturesUnordered`. Every
/// wake-up polls them all, which is fine for at most 16 calls (`MESH_MAX_PARALLEL`)
/// and keeps each call's own events in order (one future, polled in place).
#[derive(Default)]
struct Calls<'a>(Vec<(usize, Call<'a>)>);

impl<'a> Calls<'a> {
    fn push(&mut self, index: usize, call: Call<'a>) {
        self.0.push((index, call));
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next call to finish; `None` when none is in flight.
    async fn next(&mut self) -> Option<(usize, Result<String, AgentFailure>)> {
        if self.0.is_empty() {
            return None;
        }
        poll_fn(|cx| {
            for k in 0..self.0.len() {
                if let Poll::Ready(result) = self.0[k].1.as_mut().poll(cx) {
                    let (index, _) = self.0.swap_remove(k);
                    return Poll::Ready(Some((index, result)));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// How one specialist's call ended.
enum Outcome {
    Done(String),
    Failed(String),
}

/// Runs every team member of `plan`; returns `(title, full text)` of each that produced
/// text, in team order (what the writer gets, whatever order they finished in).
pub async fn run_specialists(
    run: &Arc<RunContext>,
    providers: &Arc<Providers>,
    plan: &PlanEvent,
    in_flight: &InFlight,
) -> Vec<(String, String)> {
    let cfg = run.config.clone();
    let team: Vec<_> = plan
        .agents
        .iter()
        .filter_map(|n| cfg.agent(n).cloned())
        .collect();
    let parallel = cfg.schedule == Schedule::Parallel;
    let cap = if parallel { cfg.max_parallel.max(1) } else { 1 };
    // needs[i]: team indices member i waits for.
    let needs: Vec<Vec<usize>> = team
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if !parallel {
                return (0..i).collect();
            }
            let after = plan.after.get(&a.name).map(Vec::as_slice).unwrap_or(&[]);
            after
                .iter()
                .filter_map(|d| team.iter().position(|t| &t.name == d))
                .collect()
        })
        .collect();
    let mut outcomes: Vec<Option<Outcome>> = team.iter().map(|_| None).collect();
    let mut started = vec![false; team.len()];
    let mut calls = Calls::default();

    loop {
        let ready: Vec<usize> = (0..team.len())
            .filter(|&i| !started[i] && needs[i].iter().all(|&j| outcomes[j].is_some()))
            .collect();
        if !ready.is_empty() && calls.len() < cap {
            tokens_first().await;
        }
        for i in ready {
            if calls.len() >= cap {
                break;
            }
            started[i] = true;
            let agent = team[i].clone();
            let mut digests = Vec::new();
            let mut missing = Vec::new();
            for &j in &needs[i] {
                let title = &team[j].title;
                match &outcomes[j] {
                    Some(Outcome::Done(text)) if !text.trim().is_empty() => {
                        digests.push((title.clone(), digest::digest(text, digest::DIGEST_CHARS)))
                    }
                    // An empty answer is said in both schedules: the dependant would
                    // otherwise build on work it never sees, unaware.
                    Some(Outcome::Done(_)) => {
                        missing.push((title.clone(), "it produced no text".to_string()))
                    }
                    // Sequential keeps SPEC §4.2's prompt otherwise: nothing about a
                    // failed one.
                    _ if !parallel => {}
                    Some(Outcome::Failed(why)) => {
                        missing.push((title.clone(), format!("it failed: {why}")))
                    }
                    None => {}
                }
            }
            let subtask = plan.tasks.get(&agent.name).cloned();
            let user =
                prompts::specialist_message(&run.task, subtask.as_deref(), &digests, &missing);
            in_flight.start(&agent.name);
            let call = async move {
                call_agent(
                    run,
                    providers,
                    &agent,
                    &user,
                    subtask.as_deref(),
                    &[],
                    &digests,
                )
                .await
            };
            calls.push(i, Box::pin(call));
        }
        let Some((i, result)) = calls.next().await else {
            break;
        };
        in_flight.end(&team[i].name);
        outcomes[i] = Some(match result {
            Ok(text) => Outcome::Done(text),
            Err(f) => Outcome::Failed(f.reason),
        });
        if calls.is_empty() && started.iter().all(|s| *s) {
            break;
        }
    }
    team.iter()
        .zip(outcomes)
        .filter_map(|(a, o)| match o {
            Some(Outcome::Done(text)) if !text.trim().is_empty() => Some((a.title.clone(), text)),
            _ => None,
        })
        .collect()
}
