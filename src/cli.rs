//! Command-line front ends: argument parsing and `agent-mesh run "TASK"` in the terminal.

use crate::api::run_request::RunRequest;
use crate::api::state::AppState;
use crate::config::Settings;
use std::collections::BTreeMap;
use std::io::Write;

pub const USAGE: &str = "\
agent-mesh — a team of language models, streamed live

Usage:
  agent-mesh [serve]                 start the server (MESH_ADDR, default 127.0.0.1:8080)
  agent-mesh run [--json] \"TASK\"     run one pipeline here and stream it to the terminal
                                     (the deliverable goes to stdout, progress to stderr;
                                      --json prints every event as one JSON line)
  agent-mesh models [--provider P]   print the model catalog
  agent-mesh mcp tools [SERVER]      list the MCP servers of MESH_MCP_CONFIG and their tools
  agent-mesh mcp call SERVER TOOL [JSON]
                                     call one tool with JSON arguments, print its result
  agent-mesh --help | --version

Configuration is read from environment variables; see the README.";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Serve,
    Run {
        task: String,
        json: bool,
    },
    Models {
        provider: Option<String>,
    },
    McpTools {
        server: Option<String>,
    },
    McpCall {
        server: String,
        tool: String,
        arguments: Option<String>,
    },
    Help,
    Version,
}

/// Parses the arguments after the program name; `Err` is a one-line usage problem.
pub fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter().map(String::as_str);
    match it.next() {
        None | Some("serve") => match it.next() {
            None => Ok(Command::Serve),
            Some(extra) => Err(format!("unexpected argument \"{extra}\" after serve")),
        },
        Some("-h") | Some("--help") | Some("help") => Ok(Command::Help),
        Some("-V") | Some("--version") | Some("version") => Ok(Command::Version),
        Some("run") => {
            let mut json = false;
            let mut task: Option<String> = None;
            for a in it {
                match a {
                    "--json" => json = true,
                    flag if flag.starts_with("--") => {
                        return Err(format!("unknown flag \"{flag}\" for run"))
                    }
                    t if task.is_none() => task = Some(t.to_string()),
                    _ => return Err("run takes one TASK (quote it)".to_string()),
                }
            }
            match task {
                Some(t) if !t.trim().is_empty() => Ok(Command::Run { task: t, json }),
                _ => Err(
                    "run needs a TASK, e.g. agent-mesh run \"Compare B-trees and LSM-trees\""
                        .to_string(),
                ),
            }
        }
        Some("models") => {
            let mut provider = None;
            while let Some(a) = it.next() {
                match a {
                    "--provider" => match it.next() {
                        Some(p) => provider = Some(p.to_string()),
                        None => return Err("--provider needs a value".to_string()),
                    },
                    other => match other.strip_prefix("--provider=") {
                        Some(p) => provider = Some(p.to_string()),
                        None => return Err(format!("unknown argument \"{other}\" for models")),
                    },
                }
            }
            Ok(Command::Models { provider })
        }
        Some("mcp") => parse_mcp(it.collect()),
        Some(other) => Err(format!("unknown command \"{other}\" (try --help)")),
    }
}

fn parse_mcp(rest: Vec<&str>) -> Result<Command, String> {
    match rest.as_slice() {
        ["tools"] => Ok(Command::McpTools { server: None }),
        ["tools", server] => Ok(Command::McpTools {
            server: Some(server.to_string()),
        }),
        ["call", server, tool] => Ok(Command::McpCall {
            server: server.to_string(),
            tool: tool.to_string(),
            arguments: None,
        }),
        ["call", server, tool, json] => Ok(Command::McpCall {
            server: server.to_string(),
            tool: tool.to_string(),
            arguments: Some(json.to_string()),
        }),
        ["call", ..] => {
            Err("usage: agent-mesh mcp call SERVER TOOL ['{\"arg\": \"value\"}']".to_string())
        }
        ["tools", ..] => Err("usage: agent-mesh mcp tools [SERVER]".to_string()),
        _ => Err(
            "usage: agent-mesh mcp tools [SERVER] | agent-mesh mcp call SERVER TOOL [JSON]"
                .to_string(),
        ),
    }
}

/// Runs one pipeline in-process; returns the exit code (0 completed, 1 otherwise).
pub async fn run_in_terminal(settings: Settings, task: String, json: bool) -> i32 {
    let state = match AppState::new(settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("agent-mesh: MESH_CA_FILE: {e}");
            return 2;
        }
    };
    let req = RunRequest {
        task: task.trim().to_string(),
        provider: None,
        models: BTreeMap::new(),
        agents: None,
        detach: true,
        budget: None,
        schedule: None,
        parent: None,
        tools: None,
        review: false,
    };
    // A one-shot run: its tools are listed before it starts.
    if let Some(tools) = state.providers.tools() {
        tools.connect_all().await;
    }
    let run_config = state.freeze_run_config(&req);
    let created = match state.store.create(req.task.clone(), run_config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agent-mesh: could not start the run: {e:?}");
            return 1;
        }
    };
    crate::metrics::METRICS.run_started();
    let run = created.run;
    crate::pipeline::spawn(created.context, state.providers.clone());
    let cancel_on_ctrl_c = {
        let run = run.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                run.cancel("interrupted");
            }
        })
    };
    let mut printer = Printer {
        json,
        writer_streaming: false,
        writer_name: run.config().writer().name.clone(),
        blocks: Blocks::default(),
    };
    let mut status = String::from("failed");
    // A run just created has no other subscriber: this cannot be refused.
    if let Ok(events) = run.subscribe() {
        let mut after = 0;
        let mut batch = Vec::new();
        // Printed outside the run's lock, a batch at a time.
        while events
            .next_events(&mut after, |seq, e| {
                batch.push((seq, e.name(), e.data_value()))
            })
            .await
        {
            for (seq, name, data) in batch.drain(..) {
                if let Some(s) = printer.print_event(seq, name, &data) {
                    status = s;
                }
            }
        }
    }
    cancel_on_ctrl_c.abort();
    // A shared store gets the run's last events before the process exits.
    state.store.wait_idle().await;
    if let Some(tools) = state.providers.tools() {
        tools.shutdown().await;
    }
    i32::from(status != "completed")
}

struct Printer {
    json: bool,
    writer_streaming: bool,
    writer_name: String,
    blocks: Blocks,
}

/// Progress of agents that run at once, kept readable: one agent's block streams
/// live; the others' text is held and printed as a whole block when it is their
/// turn (when the live one ends), so lines of two agents never interleave.
#[derive(Default)]
struct Blocks {
    live: Option<String>,
    /// Agents not live yet: their text so far, and whether they have ended.
    held: Vec<(String, String, bool)>,
}

impl Blocks {
    /// Text of `agent`'s block (header, tokens, error lines) for stderr.
    fn write(&mut self, agent: &str, text: &str, err: &mut impl Write) {
        if self.live.is_none() {
            self.live = Some(agent.to_string());
        }
        if self.live.as_deref() == Some(agent) {
            let _ = write!(err, "{text}");
            let _ = err.flush();
            return;
        }
        match self.held.iter_mut().find(|(n, _, _)| n == agent) {
            Some((_, buf, _)) => buf.push_str(text),
            None => self.held.push((agent.to_string(), text.to_string(), false)),
        }
    }

    /// `agent`'s block is complete; when it was live, the held blocks follow: the
    /// ended ones whole, then the first still running goes live.
    fn end(&mut self, agent: &str, err: &mut impl Write) {
        if self.live.as_deref() != Some(agent) {
            if let Some(h) = self.held.iter_mut().find(|(n, _, _)| n == agent) {
                h.2 = true;
            }
            return;
        }
        self.live = None;
        while !self.held.is_empty() {
            let (name, buf, ended) = self.held.remove(0);
            let _ = write!(err, "{buf}");
            if !ended {
                self.live = Some(name);
                break;
            }
        }
        let _ = err.flush();
    }
}

impl Printer {
    /// Prints one framed event; returns the run status when it is the `done` event.
    fn print_event(&mut self, id: u64, event: &str, value: &serde_json::Value) -> Option<String> {
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        if self.json {
            let line = serde_json::json!({"id": id, "event": event, "data": value});
            let _ = writeln!(out, "{line}");
        } else {
            let s = |k: &str| value[k].as_str().unwrap_or("").to_string();
            match event {
                "status" => {
                    let state = s("state");
                    if matches!(state.as_str(), "skipped" | "retrying" | "failed") {
                        let who = value["agent"].as_str().unwrap_or("run");
                        let _ = writeln!(err, "  [{who}: {state}] {}", s("detail"));
                    }
                }
                "plan" => {
                    let team: Vec<&str> = value["agents"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                        .unwrap_or_default();
                    let _ = writeln!(err, "\n== plan ({}): {} ==", s("source"), team.join(", "));
                    if !s("reasoning").is_empty() {
                        let _ = writeln!(err, "{}", s("reasoning"));
                    }
                }
                "stream_start" => {
                    let agent = s("agent");
                    let header =
                        format!("\n== {agent} ({} via {}) ==\n", s("model"), s("provider"));
                    self.writer_streaming = agent == self.writer_name;
                    self.blocks.write(&agent, &header, &mut err);
                }
                "token" => {
                    let agent = s("agent");
                    if self.writer_streaming && agent == self.writer_name {
                        let _ = write!(out, "{}", s("text"));
                        let _ = out.flush();
                    } else {
                        self.blocks.write(&agent, &s("text"), &mut err);
                    }
                }
                "stream_end" => {
                    let agent = s("agent");
                    if self.writer_streaming && agent == self.writer_name {
                        let _ = writeln!(out);
                    } else {
                        self.blocks.write(&agent, "\n", &mut err);
                    }
                    self.blocks.end(&agent, &mut err);
                }
                "error" => {
                    let line = format!(
                        "\n!! {} error ({}): {}\n",
                        value["agent"].as_str().unwrap_or("run"),
                        s("kind"),
                        s("message")
                    );
                    match value["agent"].as_str() {
                        Some(agent) => {
                            self.blocks.write(agent, &line, &mut err);
                            self.blocks.end(agent, &mut err);
                        }
                        None => {
                            let _ = write!(err, "{line}");
                        }
                    }
                }
                "done" => {
                    let _ = writeln!(
                        err,
                        "\n== done: {} in {:.1} s ==",
                        s("status"),
                        value["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0
                    );
                }
                _ => {}
            }
        }
        (event == "done").then(|| value["status"].as_str().unwrap_or("failed").to_string())
    }
}

/// `agent-mesh models`: the chosen provider's live catalog (or its built-in list).
pub async fn print_models(settings: Settings, provider: Option<&str>) -> i32 {
    use crate::model::provider_id::ProviderId;
    let provider = match provider {
        None => settings.providers.active,
        Some(p) => match ProviderId::parse(p) {
            Some(id) if settings.providers.is_configured(id) => id,
            Some(id) => {
                eprintln!("agent-mesh: --provider: provider \"{id}\" is not configured");
                return 2;
            }
            None => {
                eprintln!("agent-mesh: --provider: unknown provider \"{p}\"");
                return 2;
            }
        },
    };
    let login = settings.auth.credentials.as_ref().map(|c| &c.pass);
    let built = crate::providers::Providers::from_settings(
        &settings.providers,
        &settings.pipeline.roster.model_ids(),
        login,
    );
    let providers = match built {
        Ok(p) => p,
        Err(e) => {
            eprintln!("agent-mesh: MESH_CA_FILE: {e}");
            return 2;
        }
    };
    let entry = providers.catalog().refresh(&providers, provider).await;
    let source = match (&entry.source, &entry.error) {
        (crate::providers::catalog::Source::Live, _) => "live".to_string(),
        (_, Some(e)) => format!("built-in list; live fetch failed: {e}"),
        (_, None) => "built-in list".to_string(),
    };
    println!(
        "{} models from {} ({source})\n",
        entry.models.len(),
        provider.display_name()
    );
    let width = entry
        .models
        .iter()
        .map(|m| m.id.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 60);
    println!(
        "{:<width$}  {:<8}  {:>9}  {:>10}  {:>10}",
        "model", "tier", "context", "in $/Mtok", "out $/Mtok"
    );
    let price = |p: Option<f64>| p.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    for m in &entry.models {
        let tier = serde_json::to_value(m.tier)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!(
            "{:<width$}  {:<8}  {:>9}  {:>10}  {:>10}",
            m.id,
            tier,
            m.context_length
                .map_or_else(|| "-".to_string(), |c| c.to_string()),
            price(m.price_in_per_mtok),
            price(m.price_out_per_mtok),
        );
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn agents_running_at_once_print_as_whole_blocks() {
        let mut b = Blocks::default();
        let mut err: Vec<u8> = Vec::new();
        b.write("researcher", "R1 ", &mut err);
        b.write("coder", "C1 ", &mut err);
        b.write("analyst", "A1 ", &mut err);
        b.write("coder", "C2 ", &mut err);
        b.end("coder", &mut err);
        b.write("researcher", "R2 ", &mut err);
        b.end("researcher", &mut err);
        b.write("analyst", "A2 ", &mut err);
        b.end("analyst", &mut err);
        assert_eq!(String::from_utf8(err).unwrap(), "R1 R2 C1 C2 A1 A2 ");
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(parse_args(&args(&[])), Ok(Command::Serve));
        assert_eq!(parse_args(&args(&["serve"])), Ok(Command::Serve));
        assert_eq!(parse_args(&args(&["--help"])), Ok(Command::Help));
        assert_eq!(parse_args(&args(&["--version"])), Ok(Command::Version));
        assert_eq!(
            parse_args(&args(&["mcp", "tools"])),
            Ok(Command::McpTools { server: None })
        );
        assert_eq!(
            parse_args(&args(&["mcp", "call", "s", "echo", "{}"])),
            Ok(Command::McpCall {
                server: "s".into(),
                tool: "echo".into(),
                arguments: Some("{}".into())
            })
        );
        assert!(parse_args(&args(&["mcp", "call", "s"])).is_err());
        assert!(parse_args(&args(&["mcp"])).is_err());
        assert_eq!(
            parse_args(&args(&["run", "do it"])),
            Ok(Command::Run {
                task: "do it".into(),
                json: false
            })
        );
        assert_eq!(
            parse_args(&args(&["run", "--json", "x"])),
            Ok(Command::Run {
                task: "x".into(),
                json: true
            })
        );
        assert_eq!(
            parse_args(&args(&["models", "--provider", "openai"])),
            Ok(Command::Models {
                provider: Some("openai".into())
            })
        );
        assert!(parse_args(&args(&["run"])).is_err());
        assert!(parse_args(&args(&["run", "a", "b"])).is_err());
        assert!(parse_args(&args(&["fly"])).is_err());
        assert!(parse_args(&args(&["models", "--provider"])).is_err());
    }
}
