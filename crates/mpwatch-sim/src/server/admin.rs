//! The admin API under `/__sim`: clock, scenario, credentials and the request log.

use super::*;

pub(super) async fn clock_get(State(state): Shared) -> Response {
    json_response(json!({"now": state.now(), "now_f64": state.clock.now_f64(), "mode": state.clock.mode()}))
}

pub(super) async fn clock_put(State(state): Shared, axum::Json(mode): axum::Json<ClockMode>) -> Response {
    state.clock.set(mode);
    clock_get(State(state)).await
}

#[derive(Deserialize)]
pub(super) struct Advance {
    seconds: f64,
}

pub(super) async fn clock_advance(State(state): Shared, axum::Json(advance): axum::Json<Advance>) -> Response {
    state.clock.advance(advance.seconds);
    clock_get(State(state)).await
}

pub(super) async fn scenario_get(State(state): Shared) -> Response {
    json_response(serde_json::to_value(state.scenario()).unwrap_or(Value::Null))
}

pub(super) async fn scenario_put(State(state): Shared, axum::Json(scenario): axum::Json<Scenario>) -> Response {
    state.set_scenario(scenario);
    scenario_get(State(state)).await
}

#[derive(Deserialize, Default)]
pub(super) struct IssueRequest {
    name: Option<String>,
}

pub(super) async fn credentials_issue(State(state): Shared, body: Option<axum::Json<IssueRequest>>) -> Response {
    let request = body.map(|b| b.0).unwrap_or_default();
    json_response(serde_json::to_value(state.issue_credential(request.name)).unwrap_or(Value::Null))
}

pub(super) async fn credentials_list(State(state): Shared) -> Response {
    json_response(serde_json::to_value(state.credentials()).unwrap_or(Value::Null))
}

pub(super) async fn credentials_revoke(State(state): Shared, Path(id): Path<u64>) -> Response {
    if state.revoke_credential(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

pub(super) async fn requests(State(state): Shared, Query(params): Params) -> Response {
    let since = params.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let records = state.requests_since(since);
    let next = records.last().map_or(since, |r| r.seq + 1);
    json_response(json!({"next": next, "requests": records}))
}
