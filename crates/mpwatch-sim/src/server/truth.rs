//! What the world holds at an instant (`/__sim/truth`, `/__sim/accounts`): what a
//! crawl is checked against.

use super::*;

/// One article of the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthArticle {
    /// Key.
    pub key: ArticleKey,
    /// Signature.
    pub sn: String,
    /// Canonical URL.
    pub url: String,
    /// Short link.
    pub short_url: String,
    /// Account index in the world.
    pub account_index: usize,
    /// Account display name.
    pub account: String,
    /// Kind (`article`, `picture`, ...).
    pub kind: mpwatch_core::ArticleKind,
    /// Originality.
    pub copyright: Copyright,
    /// Status at the instant.
    pub status: ArticleStatus,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// Summary.
    pub digest: String,
    /// Publication.
    pub published_at: i64,
    /// Counts at the instant.
    pub counts: crate::world::SimCounts,
}

/// Every article published by `at`, with its state and counts at `at`.
pub fn truth_at(world: &World, at: i64) -> Vec<TruthArticle> {
    world.accounts().iter().flat_map(|account| truth_articles(world, account, at)).collect()
}

pub(super) fn truth_articles<'w>(
    world: &'w World,
    account: &'w SimAccount,
    at: i64,
) -> impl Iterator<Item = TruthArticle> + 'w {
    world.articles_of(account, at).into_iter().map(move |article| TruthArticle {
        url: canonical_url(&article),
        short_url: format!("https://mp.weixin.qq.com/s/{}", world.short_token(&article)),
        account_index: account.index,
        account: account.nickname.clone(),
        kind: article.kind,
        copyright: article.copyright,
        status: article.status_at(at),
        title: article.title.clone(),
        author: article.author.clone(),
        digest: article.digest.clone(),
        published_at: article.published_at,
        counts: article.counts_at(account, at),
        sn: article.sn.clone(),
        key: article.key,
    })
}

/// Streams the truth account by account, so that a world of 100k+ articles never sits
/// in memory as one document.
pub(super) async fn truth(State(state): Shared, Query(params): Params) -> Response {
    let at = params.get("at").and_then(|a| a.parse().ok()).unwrap_or_else(|| state.now());
    let accounts = state.world.accounts().len();
    let head = futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::from(format!("{{\"at\":{at},\"articles\":[")))
    });
    let mut first = true;
    let body = futures_util::stream::iter(0..accounts).filter_map(move |index| {
        let state = state.clone();
        let chunk = truth_of_account(&state.world, index, at).map(|json| {
            let separator = if first || json.is_empty() { "" } else { "," };
            if !json.is_empty() {
                first = false;
            }
            Ok(Bytes::from(format!("{separator}{json}")))
        });
        async move { chunk }
    });
    let tail = futures_util::stream::once(async { Ok(Bytes::from_static(b"]}")) });
    let stream = head.chain(body).chain(tail);
    ([(header::CONTENT_TYPE, "application/json; charset=UTF-8")], Body::from_stream(stream)).into_response()
}

/// The truth of one account as comma-separated JSON objects (empty when it has none).
pub(super) fn truth_of_account(world: &World, index: usize, at: i64) -> Option<String> {
    let account = world.accounts().get(index)?;
    let articles: Vec<String> =
        truth_articles(world, account, at).filter_map(|a| serde_json::to_string(&a).ok()).collect();
    Some(articles.join(","))
}

pub(super) async fn accounts(State(state): Shared) -> Response {
    json_response(serde_json::to_value(state.world.accounts()).unwrap_or(Value::Null))
}
