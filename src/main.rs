#![forbid(unsafe_code)]
//! The `agent-mesh` binary: parse arguments, read the config, run on a single-threaded runtime.

use agent_mesh::cli::{self, Command};
use agent_mesh::config::{Config, ProcessEnv};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse_args(&args) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("agent-mesh: {why}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("agent-mesh {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let config = match Config::from_env(&ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agent-mesh: {e}");
            return ExitCode::from(2);
        }
    };
    let trace_settings = match agent_mesh::trace::TraceSettings::from_env(&ProcessEnv) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("agent-mesh: {e}");
            return ExitCode::from(2);
        }
    };
    agent_mesh::log::set_level(config.log_level);
    let settings = config.app;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agent-mesh: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async move {
        if let (Some(redis), Command::Serve | Command::Run { .. }) =
            (&settings.store.redis, &command)
        {
            // A store that cannot be reached at start is a configuration problem.
            if let Err(why) =
                agent_mesh::store::redis::probe(&redis.url, redis.ca_file.as_deref()).await
            {
                eprintln!("agent-mesh: MESH_REDIS_URL: {why}");
                return 2;
            }
        }
        let exporter = if matches!(command, Command::Serve | Command::Run { .. }) {
            let ca_file = settings.providers.ca_file.as_deref();
            let client = || agent_mesh::providers::client::build(ca_file);
            match agent_mesh::trace::start_for_process(&trace_settings, client) {
                Ok(exporter) => exporter,
                Err(why) => {
                    eprintln!("agent-mesh: tracing: {why}");
                    return 2;
                }
            }
        } else {
            None
        };
        let code = match command {
            Command::Run { task, json } => cli::run_in_terminal(settings, task, json).await,
            Command::McpTools { server } => {
                let ca_file = settings.providers.ca_file.as_deref();
                agent_mesh::mcp::cli::print_tools(ca_file, &ProcessEnv, server.as_deref()).await
            }
            Command::McpCall {
                server,
                tool,
                arguments,
            } => {
                let ca_file = settings.providers.ca_file.as_deref();
                let arguments = arguments.as_deref();
                agent_mesh::mcp::cli::call(ca_file, &ProcessEnv, &server, &tool, arguments).await
            }
            Command::Models { provider } => {
                agent_mesh::cli::print_models(settings, provider.as_deref()).await
            }
            _ => match agent_mesh::server::serve(settings, shutdown_signal()).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("agent-mesh: {e}");
                    1
                }
            },
        };
        // Spans still queued go out now, within a bound.
        if let Some(exporter) = exporter {
            let deadline = tokio::time::Instant::now() + agent_mesh::trace::FLUSH_ON_EXIT;
            exporter.shutdown(deadline).await;
        }
        code
    });
    ExitCode::from(code as u8)
}

/// Resolves on SIGTERM (how platforms stop a service) or SIGINT (Ctrl+C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
