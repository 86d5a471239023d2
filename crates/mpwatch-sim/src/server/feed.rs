//! The feed host: one Atom, RSS or JSON feed per account.

use super::*;

/// Feed names: `MP_WXS_<numeric id>.atom` (wewe-rss style, short links), `.rss`
/// (RSSHub style, long links) and `.json` (JSON Feed).
pub(super) async fn feed(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Path(name): Path<String>,
) -> Response {
    let gate = gate(Endpoint::Feed, peer, number);
    let fault = match admit(&state, &gate, None) {
        Admission::Proceed(fault) => fault,
        Admission::Answer(response) => return response,
    };
    let Some((stem, extension)) = name.rsplit_once('.') else { return StatusCode::NOT_FOUND.into_response() };
    let numeric = stem.strip_prefix("MP_WXS_").and_then(|n| n.parse::<u64>().ok());
    let Some(account) = numeric.and_then(|n| state.world.accounts().iter().find(|a| a.numeric_id == n)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let now = state.now();
    let articles: Vec<SimArticle> = state.world.articles_of(account, now).into_iter().take(20).collect();
    let base = state.feed_base.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let rfc3339 = |t: i64| crate::feeds::rfc3339(t);
    let (text, content_type) = match extension {
        "atom" => (
            crate::feeds::atom(&base, account, &articles, &state.world, rfc3339(now)),
            "application/atom+xml; charset=utf-8",
        ),
        "rss" => (crate::feeds::rss(&base, account, &articles), "application/rss+xml; charset=utf-8"),
        "json" => (crate::feeds::json_feed(&base, account, &articles), "application/feed+json; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    body_response(Chunks(vec![Bytes::from(text)]), content_type, fault)
}
