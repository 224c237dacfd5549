//! Unit tests of the budget meter: reserve, estimates, reconciliation, stops.

use super::*;

fn budget(usd: Option<f64>, tokens: Option<u64>) -> RunBudget {
    let price = |i: f64, o: f64| {
        Some(Price {
            in_per_mtok: i,
            out_per_mtok: o,
        })
    };
    RunBudget {
        caps: BudgetCaps { usd, tokens },
        requested: BudgetCaps { usd, tokens },
        prices: [
            ("orchestrator".to_string(), price(1.0, 5.0)),
            ("researcher".to_string(), price(10.0, 100.0)),
            ("coder".to_string(), None),
            ("writer".to_string(), price(3.0, 15.0)),
        ]
        .into(),
        writer: "writer".to_string(),
        writer_max_tokens: 1000,
        writer_base_input_tokens: 100,
    }
}

const S: AgentKind = AgentKind::Specialist;

#[test]
fn without_a_budget_the_meter_counts_nothing_and_stops_nothing() {
    let m = BudgetMeter::new(None);
    assert_eq!(m.begin("researcher", S, 1 << 30), Ok(None));
    assert!(m.admits("researcher", S, usize::MAX).is_ok());
    assert!(m.report().is_none());
    let empty = BudgetMeter::new(Some(budget(None, None)));
    assert!(empty.report().is_none(), "a budget without caps is none");
}

#[test]
fn estimates_are_a_token_per_four_characters_rounded_up() {
    assert_eq!(estimate_tokens(0), 0);
    assert_eq!(estimate_tokens(1), 1);
    assert_eq!(estimate_tokens(8), 2);
    assert_eq!(estimate_tokens(9), 3);
}

#[test]
fn a_cap_smaller_than_the_writers_reserve_is_named() {
    let (field, message) = budget(None, Some(1099)).reserve_problem().unwrap();
    assert_eq!(field, "budget.tokens");
    assert!(message.contains("1100"), "{message}");
    assert!(budget(None, Some(1100)).reserve_problem().is_none());
    // $15/Mtok × 1000 + $3/Mtok × 100 = $0.0153.
    let (field, _) = budget(Some(0.015), None).reserve_problem().unwrap();
    assert_eq!(field, "budget.usd");
    assert!(budget(Some(0.016), None).reserve_problem().is_none());
    let mut from_env = budget(None, Some(10));
    from_env.requested = BudgetCaps::default();
    let (_, message) = from_env.reserve_problem().unwrap();
    assert!(message.contains("MESH_RUN_BUDGET_TOKENS"), "{message}");
}

#[test]
fn a_specialist_is_stopped_when_its_stream_reaches_the_cap_less_the_writers_share() {
    // 2000 tokens; the writer holds 1100 plus whatever specialists write (its input).
    let m = BudgetMeter::new(Some(budget(None, Some(2000))));
    let call = m.begin("researcher", S, 400).unwrap().unwrap(); // 100 in
    assert!(!m.is_stopped(call));
    // 100 in + 300 out + 1100 + 300 (the writer reads it) = 1800: still under.
    m.output(call, 1200);
    assert!(!m.is_stopped(call));
    // + 100 out (counted twice) = 2000: at the cap, not past it.
    m.output(call, 400);
    assert!(!m.is_stopped(call) && !m.exhausted());
    m.output(call, 4);
    assert!(m.is_stopped(call) && m.exhausted());
    m.abandon(call);
    let r = m.report().unwrap();
    assert_eq!(r.spent_tokens, 100 + 401);
    assert!(r.exhausted);
    // Later specialists are refused; the writer is not.
    assert!(m.admits("coder", S, 4).is_err());
    assert!(m.admits("writer", AgentKind::Writer, 1 << 20).is_ok());
    let writer = m.begin("writer", AgentKind::Writer, 400).unwrap().unwrap();
    m.output(writer, 40_000);
    assert!(!m.is_stopped(writer), "the writer is never cut");
}

#[test]
fn parallel_calls_share_one_budget_and_stop_together() {
    let m = BudgetMeter::new(Some(budget(None, Some(3000))));
    let a = m.begin("researcher", S, 40).unwrap().unwrap();
    let b = m.begin("coder", S, 40).unwrap().unwrap();
    m.output(a, 3000); // 750 tokens, ×2 with the writer's input
    assert!(!m.is_stopped(a) && !m.is_stopped(b));
    m.output(b, 200); // 20 + 800 + 800 + 1100 = 2720
    assert!(!m.is_stopped(b));
    m.output(b, 1200); // + 600 = 3320 > 3000
    assert!(m.is_stopped(a) && m.is_stopped(b), "both calls stop");
}

#[test]
fn reported_usage_and_cost_replace_the_estimates() {
    let m = BudgetMeter::new(Some(budget(Some(10.0), Some(1_000_000))));
    let call = m.begin("researcher", S, 4000).unwrap().unwrap();
    m.output(call, 4000);
    let r = m.report().unwrap();
    assert_eq!(r.spent_tokens, 2000, "in flight by its estimate");
    // $10/Mtok × 1000 + $100/Mtok × 1000.
    assert!((r.spent_usd - 0.11).abs() < 1e-9, "{}", r.spent_usd);
    m.finish(
        call,
        Some(Usage {
            input_tokens: 700,
            output_tokens: 300,
        }),
        Some(0.5),
    );
    let r = m.report().unwrap();
    assert_eq!(r.spent_tokens, 1000);
    assert!((r.spent_usd - 0.5).abs() < 1e-9, "the reported cost wins");
    // Without a reported cost, the catalog price prices the reported usage.
    let call = m.begin("researcher", S, 4).unwrap().unwrap();
    m.finish(
        call,
        Some(Usage {
            input_tokens: 1000,
            output_tokens: 0,
        }),
        None,
    );
    assert!((m.report().unwrap().spent_usd - 0.51).abs() < 1e-9);
    // An unpriced model adds tokens but no dollars unless its provider reports a cost.
    let call = m.begin("coder", S, 4).unwrap().unwrap();
    m.output(call, 4000);
    m.finish(call, None, None);
    let r = m.report().unwrap();
    assert!((r.spent_usd - 0.51).abs() < 1e-9);
    assert_eq!(r.spent_tokens, 1000 + 1000 + 1 + 1000);
    assert_eq!(budget(None, None).unpriced(), ["coder"]);
}

#[test]
fn a_reported_cost_past_the_cap_ends_the_specialists_work() {
    // $1 cap; the writer's reserve is about $0.0153.
    let m = BudgetMeter::new(Some(budget(Some(1.0), None)));
    let other = m.begin("coder", S, 4).unwrap().unwrap();
    let call = m.begin("researcher", S, 4).unwrap().unwrap();
    m.finish(call, None, Some(0.99));
    assert!(m.exhausted() && m.is_stopped(other));
    assert!(m.admits("researcher", S, 4).is_err());
}

#[test]
fn a_prompt_too_long_for_what_is_left_is_refused_before_it_is_sent() {
    let m = BudgetMeter::new(Some(budget(None, Some(2000))));
    assert!(m.admits("researcher", S, 3000).is_ok()); // 750 + 1100
    assert!(!m.exhausted());
    let why = m.admits("researcher", S, 4000).unwrap_err(); // 1000 + 1100
    assert!(why.contains("token budget of 2000"), "{why}");
    assert!(m.exhausted());
}

#[tokio::test]
async fn stopped_resolves_when_the_call_is_stopped() {
    let m = std::sync::Arc::new(BudgetMeter::new(Some(budget(None, Some(1200)))));
    let call = m.begin("researcher", S, 4).unwrap();
    let waiter = {
        let m = m.clone();
        tokio::spawn(async move { m.stopped(call).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    m.output(call.unwrap(), 400);
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("stopped resolves")
        .unwrap();
}
