//! The pipeline's settings (SPEC §2): the agent roster, how specialists are
//! scheduled, and the time limits of every agent call.

use super::roster::Roster;
use crate::model::run_config::Schedule;
use crate::util::env::{ConfigError, Vars};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// `MESH_AGENTS`: a roster JSON file; unset, the built-in five agents.
    pub roster: Roster,
    /// `MESH_SCHEDULE`: sequential (default) or parallel.
    pub schedule: Schedule,
    /// `MESH_MAX_PARALLEL`: agent calls of one run at once (default 3, 1-16).
    pub max_parallel: usize,
    /// `MESH_RUN_BUDGET_USD`, `MESH_RUN_BUDGET_TOKENS`: every run's caps unless its
    /// request sets its own (unset: no cap).
    pub budget: crate::model::budget::BudgetCaps,
    /// `MESH_TTFT_TIMEOUT_SECS` (default 90 s): a call's wait for its first token.
    pub ttft_timeout: Duration,
    /// `MESH_IDLE_TIMEOUT_SECS` (default 60 s): a call's longest silence mid-stream.
    pub idle_timeout: Duration,
    /// `MESH_TOOL_ROUNDS` (default 8, 1-100): tool rounds per agent turn, after which
    /// the agent is asked to answer without tools.
    pub tool_rounds: u32,
    /// `MESH_REVIEW_TIMEOUT_SECS` (default 1800 s): how long a run asked to `review`
    /// its plan waits for the approval before it ends `cancelled`.
    pub review_timeout: Duration,
}

impl PipelineSettings {
    pub fn from_env(vars: &Vars) -> Result<PipelineSettings, ConfigError> {
        Ok(PipelineSettings {
            roster: roster(vars)?,
            schedule: match vars.get("MESH_SCHEDULE") {
                Some(s) => Schedule::parse(&s).ok_or_else(|| {
                    ConfigError::new(
                        "MESH_SCHEDULE",
                        format!("\"{s}\" is not sequential or parallel"),
                    )
                })?,
                None => Default::default(),
            },
            max_parallel: max_parallel(vars)?,
            budget: super::budget::defaults_from_env(vars)?,
            ttft_timeout: vars.secs("MESH_TTFT_TIMEOUT_SECS", 90, 1)?,
            idle_timeout: vars.secs("MESH_IDLE_TIMEOUT_SECS", 60, 1)?,
            tool_rounds: tool_rounds(vars)?,
            review_timeout: vars.secs("MESH_REVIEW_TIMEOUT_SECS", 1800, 1)?,
        })
    }
}

fn roster(vars: &Vars) -> Result<Roster, ConfigError> {
    let Some(path) = vars.file("MESH_AGENTS")? else {
        return Ok(Roster::builtin());
    };
    let shown = path.display();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError::new("MESH_AGENTS", format!("cannot read {shown}: {e}")))?;
    Roster::from_json(&text)
        .map_err(|(at, why)| ConfigError::new("MESH_AGENTS", format!("{shown}: {at}: {why}")))
}

fn tool_rounds(vars: &Vars) -> Result<u32, ConfigError> {
    let Some(v) = vars.get("MESH_TOOL_ROUNDS") else {
        return Ok(8);
    };
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            "MESH_TOOL_ROUNDS",
            format!("\"{v}\" is not a whole number from 1 to 100"),
        )),
    }
}

fn max_parallel(vars: &Vars) -> Result<usize, ConfigError> {
    let Some(v) = vars.get("MESH_MAX_PARALLEL") else {
        return Ok(3);
    };
    match v.parse::<usize>() {
        Ok(n) if (1..=16).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            "MESH_MAX_PARALLEL",
            format!("\"{v}\" is not a whole number from 1 to 16"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<PipelineSettings, ConfigError> {
        crate::util::env::read_pairs(pairs, PipelineSettings::from_env)
    }

    #[test]
    fn schedule_and_parallelism_take_their_whole_range() {
        let c = load(&[("MESH_SCHEDULE", "parallel"), ("MESH_MAX_PARALLEL", "16")]).unwrap();
        assert_eq!(c.schedule, Schedule::Parallel);
        assert_eq!(c.max_parallel, 16);
        assert_eq!(load(&[("MESH_MAX_PARALLEL", "1")]).unwrap().max_parallel, 1);
        let c = load(&[
            ("MESH_TTFT_TIMEOUT_SECS", "5"),
            ("MESH_IDLE_TIMEOUT_SECS", "7"),
        ])
        .unwrap();
        assert_eq!(c.ttft_timeout, Duration::from_secs(5));
        assert_eq!(c.idle_timeout, Duration::from_secs(7));
    }

    #[test]
    fn a_roster_file_replaces_the_builtin_team_and_a_bad_one_names_its_path() {
        let dir = std::env::temp_dir().join(format!("mesh-roster-{}", crate::ids::new_run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, r#"{"agents":[{"name":"boss","kind":"planner","model":"m"},{"name":"solo","kind":"specialist","model":"m"},{"name":"pen","kind":"writer","model":"m"}]}"#).unwrap();
        let c = load(&[("MESH_AGENTS", good.to_str().unwrap())]).unwrap();
        assert_eq!(c.roster.specialist_names(), ["solo"]);
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        let e = load(&[("MESH_AGENTS", bad.to_str().unwrap())]).unwrap_err();
        assert_eq!(e.variable, "MESH_AGENTS");
        assert!(e.reason.starts_with(bad.to_str().unwrap()), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
