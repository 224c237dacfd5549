//! Thin JSON handlers: validate input, call the store or the pipeline, serialize.

pub mod chat_completions;
pub mod chat_request;
pub mod mcp;
pub mod plan_edit;
pub mod review;
pub mod run_request;
pub mod state;
pub mod tools;

use crate::api::state::AppState;
use crate::http::body::{json, Body};
use crate::http::error::ApiError;
use crate::ids::is_run_id;
use crate::model::conversation::Conversation;
use crate::model::provider_id::ProviderId;
use crate::store::{
    CancelOutcome, CreateError, RunHandle, StoreError, SubscribeError, ThreadEntry,
};
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// `GET /metrics` in the Prometheus text format.
pub fn metrics(state: &AppState) -> Response<Body> {
    let runs_by_status = state
        .store
        .counts_by_status()
        .iter()
        .map(|(s, n)| (s.as_str(), *n))
        .collect();
    let text = crate::metrics::METRICS.render(&crate::metrics::LiveGauges {
        uptime_secs: state.started.elapsed().as_secs(),
        active_runs: state.store.active_runs(),
        active_streams: crate::http::sse::ACTIVE_STREAMS.load(std::sync::atomic::Ordering::Relaxed),
        runs_by_status,
        store: state.store.health(),
    });
    let mut resp = Response::new(crate::http::body::full(text));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

pub fn health(state: &AppState) -> Response<Body> {
    json(
        StatusCode::OK,
        &json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": state.started.elapsed().as_secs(),
            "active_runs": state.store.active_runs(),
        }),
    )
}

pub async fn start_run(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    require_json(headers)?;
    if state.store.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    let req = parse_run_request(state, body).map_err(|e| ApiError::BadRequest {
        message: e.message,
        field: Some(e.field),
    })?;
    let run = launch(state, req, incoming_trace(headers)).await?;
    let mut answer = json!({"id": run.id(), "stream": format!("/api/stream/{}", run.id())});
    // The caps the run got (its own or the server's), so a client can show spend
    // against them from the first event on.
    if let Some(b) = &run.config().budget {
        answer["budget"] =
            json!({"usd": b.caps.usd, "tokens": b.caps.tokens, "unpriced": b.unpriced()});
    }
    Ok(json(StatusCode::CREATED, &answer))
}

/// The W3C trace context a request carries (`traceparent`), which becomes its run's
/// parent; a missing or malformed header means none (the standard: start afresh).
pub(crate) fn incoming_trace(headers: &HeaderMap) -> Option<crate::trace::SpanContext> {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::trace::SpanContext::from_traceparent)
}

/// Validates a `POST /api/run` body against this server's roster and providers.
fn parse_run_request(
    state: &AppState,
    body: &[u8],
) -> Result<run_request::RunRequest, run_request::FieldError> {
    let providers = state.providers.clone();
    run_request::parse_run_request(body, &state.pipeline.roster, &|p| {
        providers.is_configured(p)
    })
}

/// Starts a validated run request (`POST /api/run` and MCP's `run_team`): its
/// frozen config, the conversation of the run it follows up, the store, the pipeline.
pub(crate) async fn launch(
    state: &Arc<AppState>,
    req: run_request::RunRequest,
    trace_parent: Option<crate::trace::SpanContext>,
) -> Result<RunHandle, ApiError> {
    let mut config = state.freeze_run_config(&req);
    config.trace_parent = trace_parent;
    config.review = review::config_of(state, &req);
    if let Some(parent) = &req.parent {
        config.conversation = follow_up_of(state, parent).await?;
    }
    crate::pipeline::budget::add_history(&mut config);
    if let Some((field, message)) = config.budget.as_ref().and_then(|b| b.reserve_problem()) {
        return Err(ApiError::bad_field(field, message));
    }
    create_run(state, req.task, config).await
}

/// Creates the run in the store and starts its pipeline.
async fn create_run(
    state: &Arc<AppState>,
    task: String,
    config: crate::model::run_config::RunConfig,
) -> Result<RunHandle, ApiError> {
    let created = state
        .store
        .create(task, config)
        .await
        .map_err(|e| match e {
            CreateError::ShuttingDown => ApiError::ShuttingDown,
            CreateError::TooManyRuns => ApiError::TooManyRuns {
                message: format!(
                    "{} runs are already running; try again shortly",
                    state.store.limits().max_active_runs
                ),
                retry_after_secs: 5,
            },
            CreateError::Unavailable(message) => ApiError::StoreUnavailable(message),
        })?;
    let run = created.run;
    crate::metrics::METRICS.run_started();
    crate::log_info!(
        "run {} started ({} agents, provider {})",
        run.id(),
        run.config().agents.len(),
        run.config().provider
    );
    crate::pipeline::spawn(created.context, state.providers.clone());
    Ok(run)
}

/// The conversation of a follow-up to `parent_id`: the parent's earlier turns plus
/// its own. A running parent is refused rather than quoted half-written: the
/// follow-up would answer a deliverable the user has not seen yet.
async fn follow_up_of(state: &AppState, parent_id: &str) -> Result<Conversation, ApiError> {
    let parent = state
        .store
        .get(parent_id)
        .await
        .map_err(store_unavailable)?
        .ok_or_else(|| {
            ApiError::bad_field(
                "parent",
                format!("parent: no run with id {parent_id} (unknown, or finished and evicted)"),
            )
        })?;
    // Another instance may have just finished it, its last events still on their way.
    if !parent.catch_up(RunHandle::is_finished).await {
        return Err(ApiError::bad_field(
            "parent",
            format!(
                "parent: run {parent_id} is still running; ask the follow-up once it has finished"
            ),
        ));
    }
    let snapshot = parent.snapshot();
    Ok(Conversation::follow_up(
        parent_id,
        &parent.config().conversation,
        parent.task(),
        &snapshot.output,
    ))
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else if ct.is_empty() {
        Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json".to_string(),
        ))
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json, not {ct}"
        )))
    }
}

/// A malformed id names no run; it is never looked up.
fn check_run_id(id: &str) -> Result<(), ApiError> {
    if is_run_id(id) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no run with id \"{}\"",
            crate::util::cut_chars(id, 64)
        )))
    }
}

pub async fn find_run(state: &AppState, id: &str) -> Result<RunHandle, ApiError> {
    check_run_id(id)?;
    state
        .store
        .get(id)
        .await
        .map_err(store_unavailable)?
        .ok_or_else(|| no_such_run(id))
}

fn no_such_run(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no run with id {id} (unknown, or finished and evicted)"
    ))
}

fn store_unavailable(e: StoreError) -> ApiError {
    ApiError::StoreUnavailable(e.0)
}

/// `GET /api/stream/{id}` from `peer` (the socket's address; behind a trusted edge
/// the client it names counts for the subscriber caps).
pub async fn stream(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    peer: IpAddr,
) -> Result<Response<Body>, ApiError> {
    let run = find_run(state, id).await?;
    let resume_from = last_event_id(headers, query)?;
    // Ids are issued only as events are logged, so an id beyond the last one cannot
    // come from a real earlier connection; accepting it would silently skip events.
    if let Some(id) = resume_from {
        // The client may have read up to `id` from another instance, ahead of this copy.
        run.catch_up(|r| r.last_event_id() >= id).await;
        let last = run.last_event_id();
        if id > last {
            return Err(ApiError::bad_field(
                "Last-Event-ID",
                format!("Last-Event-ID {id} is beyond this run's last event ({last})"),
            ));
        }
        // A finished run the client has read to its end (an EventSource reconnecting
        // after `done`): 204 tells it, per the SSE standard, to stop reconnecting.
        if id == last && run.is_finished() {
            let mut resp = Response::new(crate::http::body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            return Ok(resp);
        }
    }
    let client = crate::http::client_addr::client_ip(peer, headers, state.auth.trust_proxy);
    let slot = state
        .subscribers
        .try_take(client)
        .map_err(|cap| ApiError::TooManySubscribers {
            message: cap.message(),
            retry_after_secs: 2,
        })?;
    let guard = run.subscribe().map_err(|e| match e {
        SubscribeError::TooManySubscribers => ApiError::TooManySubscribers {
            message: format!(
                "this run already has {} stream subscribers",
                crate::store::MAX_SUBSCRIBERS
            ),
            retry_after_secs: 2,
        },
    })?;
    Ok(crate::http::sse::stream_response(
        &run,
        guard,
        slot,
        resume_from,
    ))
}

/// `Last-Event-ID` header, else `?last_event_id=`; a non-number is a 400.
fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Result<Option<u64>, ApiError> {
    let from_header = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("?").trim().to_string());
    let from_query = query.and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("last_event_id=").map(str::to_string))
    });
    match from_header.or(from_query) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_field(
                "Last-Event-ID",
                "Last-Event-ID must be a whole number (the id of the last event received)",
            )
        }),
    }
}

pub async fn list_runs(state: &AppState) -> Result<Response<Body>, ApiError> {
    let runs = state.store.list().await.map_err(store_unavailable)?;
    Ok(json(StatusCode::OK, &runs))
}

pub async fn get_run(state: &AppState, id: &str) -> Result<Response<Body>, ApiError> {
    let run = find_run(state, id).await?;
    let mut snapshot = run.snapshot();
    snapshot.thread = thread_of(state, &run).await;
    Ok(snapshot_response(snapshot).await)
}

/// Snapshots with more text than this are serialized off the runtime thread.
const LARGE_SNAPSHOT_BYTES: usize = 64 * 1024;
/// At most this many large snapshots are serialized at once (one per core of a
/// small machine); more wait their turn without holding the runtime.
static LARGE_SNAPSHOT_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The snapshot as JSON. A large one (outputs of megabytes) takes milliseconds to
/// serialize; on the runtime's only thread that would hold every other client
/// (`/health`, every event stream) for as long, once per request. So it is built on
/// a blocking thread, two at most at a time.
async fn snapshot_response(snapshot: crate::store::RunSnapshot) -> Response<Body> {
    let text_bytes = snapshot.task.len()
        + snapshot.output.len()
        + snapshot
            .agents
            .iter()
            .map(|a| a.output.len())
            .sum::<usize>();
    if text_bytes <= LARGE_SNAPSHOT_BYTES {
        return json(StatusCode::OK, &snapshot);
    }
    // The semaphore is never closed, so acquiring cannot fail; the permit is held
    // until the serialization is done.
    let _permit = LARGE_SNAPSHOT_SLOTS.acquire().await.ok();
    match tokio::task::spawn_blocking(move || json(StatusCode::OK, &snapshot)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::Internal("the snapshot could not be built".to_string()).into_response(),
    }
}

/// The snapshot's `thread`: the runs of the conversation the run keeps (its last
/// ancestors, oldest first), ending with `run`, each task cut to 200 characters as
/// `/api/runs` cuts it. An ancestor the store no longer holds keeps its id, with
/// `task` null and status `evicted`, so the page can still show where the thread began.
async fn thread_of(state: &AppState, run: &RunHandle) -> Vec<ThreadEntry> {
    let entry = |id: &str, r: &RunHandle| ThreadEntry {
        id: id.to_string(),
        task: Some(crate::util::cut_chars(r.task(), THREAD_TASK_CHARS).to_string()),
        status: r.status().as_str(),
    };
    let mut thread = Vec::new();
    for id in &run.config().conversation.ancestors {
        thread.push(match state.store.get(id).await {
            Ok(Some(r)) => entry(id, &r),
            _ => ThreadEntry {
                id: id.clone(),
                task: None,
                status: "evicted",
            },
        });
    }
    thread.push(entry(run.id(), run));
    thread
}

/// A thread entry's task is cut to this many characters (as in `/api/runs`).
const THREAD_TASK_CHARS: usize = 200;

pub async fn cancel_run(state: &AppState, id: &str) -> Result<Response<Body>, ApiError> {
    check_run_id(id)?;
    let outcome = state
        .store
        .cancel(id, "cancelled by request")
        .await
        .map_err(store_unavailable)?;
    match outcome {
        None => Err(no_such_run(id)),
        Some(CancelOutcome::Finished(status)) => {
            Ok(json(StatusCode::OK, &json!({"status": status.as_str()})))
        }
        Some(CancelOutcome::Cancelling) => {
            crate::log_info!("run {id} cancel requested");
            Ok(json(StatusCode::ACCEPTED, &json!({"status": "cancelling"})))
        }
    }
}

pub fn agents(state: &AppState) -> Response<Body> {
    let roster = &state.pipeline.roster;
    let list: Vec<serde_json::Value> = roster
        .agents()
        .iter()
        .map(|a| {
            json!({
                "name": a.name, "title": a.title, "emoji": a.emoji, "kind": a.kind,
                "model": a.model, "max_tokens": a.max_tokens, "color": a.color,
                "tools": roster.granted_tools(a),
            })
        })
        .collect();
    json(StatusCode::OK, &serde_json::Value::Array(list))
}

/// `GET /api/config`: what the page needs beyond the roster and the providers: the
/// trace link template (`MESH_TRACE_URL`, `null` unless tracing is on and it is set).
pub fn page_config() -> Response<Body> {
    json(
        StatusCode::OK,
        &json!({ "trace_url": crate::trace::link_template() }),
    )
}

pub fn providers(state: &AppState) -> Response<Body> {
    let settings = &state.provider_settings;
    let list: Vec<serde_json::Value> = ProviderId::ALL
        .iter()
        .map(|&id| {
            let configured = settings.is_configured(id);
            let usability = state.providers.usability(id);
            let auth = state.providers.auth_kind(id);
            let catalog = state.providers.catalog().get(id);
            json!({
                "id": id.as_str(),
                "name": id.display_name(),
                "configured": configured,
                "usable": usability.is_ok(),
                "active": id == state.provider_settings.active,
                "base_url": settings.base_url(id),
                "auth": auth,
                "catalog": catalog.source,
                "models": catalog.models.len(),
                "error": usability.err(),
            })
        })
        .collect();
    json(StatusCode::OK, &serde_json::Value::Array(list))
}

/// `GET /api/models?provider=P&refresh=1`: the provider's catalog, fetched again on request.
pub async fn models(state: &AppState, query: Option<&str>) -> Result<Response<Body>, ApiError> {
    let mut provider = state.provider_settings.active;
    let mut refresh = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "provider" => {
                provider = ProviderId::parse(v).ok_or_else(|| {
                    ApiError::bad_field(
                        "provider",
                        format!(
                            "provider: unknown provider \"{}\"",
                            crate::util::cut_chars(v, 40)
                        ),
                    )
                })?;
                if !state.providers.is_configured(provider) {
                    return Err(ApiError::bad_field(
                        "provider",
                        format!("provider \"{provider}\" is not configured on this server"),
                    ));
                }
            }
            "refresh" => refresh = matches!(v, "1" | "true" | "yes"),
            _ => {}
        }
    }
    let entry = if refresh {
        state
            .providers
            .catalog()
            .refresh(&state.providers, provider)
            .await
    } else {
        state.providers.catalog().get(provider)
    };
    Ok(json(StatusCode::OK, &entry.to_json(provider)))
}
