//! placeholder until the plan parser lands
use std::collections::BTreeMap;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub agents: Vec<String>,
    pub reasoning: String,
    pub tasks: BTreeMap<String, String>,
    pub dropped: Vec<String>,
}
pub fn parse_plan(reply: &str, specialists: &[&str]) -> Result<Plan, String> {
    let v: serde_json::Value = serde_json::from_str(reply).map_err(|e| e.to_string())?;
    let agents: Vec<String> = specialists
        .iter()
        .filter(|s| {
            v["agents"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(s)))
        })
        .map(|s| s.to_string())
        .collect();
    if agents.is_empty() {
        return Err("empty".into());
    }
    let tasks = agents
        .iter()
        .filter_map(|a| v["tasks"][a].as_str().map(|t| (a.clone(), t.to_string())))
        .collect();
    Ok(Plan {
        agents,
        reasoning: v["reasoning"].as_str().unwrap_or("").to_string(),
        tasks,
        dropped: vec![],
    })
}
