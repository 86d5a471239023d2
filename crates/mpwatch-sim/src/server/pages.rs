//! Article pages: canonical and short links, the verification and loop traps, robots.txt.

use super::*;

pub(super) fn canonical_url(article: &SimArticle) -> String {
    format!(
        "https://mp.weixin.qq.com/s?__biz={}&mid={}&idx={}&sn={}",
        article.key.biz, article.key.mid, article.key.idx, article.sn
    )
}

/// The page of an article at `now`, as an anonymous or credentialed client sees it.
pub(super) fn article_response(
    state: &SimState,
    account: &SimAccount,
    article: &SimArticle,
    credentialed: bool,
    fault: Option<Fault>,
) -> Response {
    let now = state.now();
    match article.status_at(now) {
        ArticleStatus::Deleted => return html_response(render::deleted_page()),
        ArticleStatus::Blocked => {
            return html_response(render::blocked_page(article.blocked_reason.as_deref().unwrap_or("")));
        }
        ArticleStatus::Unavailable => return html_response(render::unavailable_page()),
        ArticleStatus::Ok | ArticleStatus::Pending => {}
    }
    let context = PageContext {
        world: &state.world,
        account,
        article,
        short_url: format!("https://mp.weixin.qq.com/s/{}", state.world.short_token(article)),
        page_bytes: state.page_bytes,
        counts: credentialed.then(|| article.counts_at(account, now)),
    };
    body_response(render::article_page(&context, &state.fillers), "text/html; charset=utf-8", fault)
}

pub(super) async fn article_long(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    let gate = gate(Endpoint::Article, peer, number);
    let credential = state.credential_for(&params);
    let credential_id = credential.as_ref().map(|(c, _)| c.id);
    let fault = match admit(&state, &gate, credential_id) {
        Admission::Proceed(fault) => fault,
        Admission::Answer(response) => return with_credential(response, credential_id),
    };
    let key = key_from(&params, "mid");
    let found = key.and_then(|key| state.world.article_by_key(&key, state.now()));
    let response = match found {
        Some((account, article)) if params.get("sn").is_none_or(|sn| sn == &article.sn) => {
            let credentialed = credential.as_ref().is_some_and(|(_, valid)| *valid);
            article_response(&state, account, &article, credentialed, fault)
        }
        _ => html_response(render::parameter_error_page()),
    };
    with_credential(response, credential_id)
}

pub(super) async fn article_short(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Path(token): Path<String>,
) -> Response {
    let gate = gate(Endpoint::Article, peer, number);
    let fault = match admit(&state, &gate, None) {
        Admission::Proceed(fault) => fault,
        Admission::Answer(response) => return response,
    };
    match state.world.article_by_token(&token).filter(|(_, article)| article.published_at <= state.now()) {
        Some((account, article)) => article_response(&state, account, &article, false, fault),
        None => html_response(render::parameter_error_page()),
    }
}

pub(super) async fn redirect_loop() -> Response {
    fault_response(&Fault::RedirectLoop)
}

pub(super) async fn captcha() -> Response {
    html_response(render::verification_page("https://mp.weixin.qq.com/"))
}

pub(super) async fn robots() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], render::ROBOTS_TXT).into_response()
}

pub(super) fn no_session() -> Response {
    json_response(
        json!({"base_resp": {"ret": -3, "errmsg": "no session", "cookie_count": 0}, "ret": -3, "errmsg": "no session", "cookie_count": 0}),
    )
}
