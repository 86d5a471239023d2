//! The mp backend's list endpoints (`appmsg`, `appmsgpublish`), behind a session.

use super::*;

pub(super) fn backend_articles(state: &SimState, params: &HashMap<String, String>) -> Option<(Vec<SimArticle>, usize)> {
    let account = params.get("fakeid").and_then(|b| Biz::parse(b).ok()).and_then(|b| state.world.account_by_biz(&b))?;
    let begin: usize = params.get("begin").and_then(|b| b.parse().ok()).unwrap_or(0);
    let count: usize = params.get("count").and_then(|c| c.parse().ok()).unwrap_or(5).clamp(1, 20);
    let all = state.world.articles_of(account, state.now());
    let total = all.len();
    Some((all.into_iter().skip(begin).take(count).collect(), total))
}

pub(super) fn backend_entry(article: &SimArticle) -> Value {
    json!({
        "aid": format!("{}_{}", article.key.mid, article.key.idx),
        "appmsgid": article.key.mid,
        "itemidx": article.key.idx,
        "title": article.title,
        "digest": article.digest,
        "link": canonical_url(article),
        "cover": format!("https://mmbiz.qpic.cn/sim_jpg/{}/{}_{}/0?wx_fmt=jpeg", article.key.biz.numeric_id(), article.key.mid, article.key.idx),
        "create_time": article.published_at,
        "update_time": article.published_at,
        "item_show_type": article.item_show_type(),
        "copyright_type": match article.copyright { Copyright::Original => 1, _ => 0 },
        "author_name": article.author,
        "is_deleted": 0,
    })
}

pub(super) fn backend_gate(
    state: &SimState,
    peer: SocketAddr,
    number: Option<axum::Extension<RequestNumber>>,
    params: &HashMap<String, String>,
) -> Admission {
    let gate = gate(Endpoint::Backend, peer, number);
    let admission = admit(state, &gate, None);
    if let Admission::Answer(_) = admission {
        return admission;
    }
    if state.scenario().backend_lists == BackendLists::FrequencyControl {
        return Admission::Answer(json_response(json!({"base_resp": {"ret": 200013, "err_msg": "freq control"}})));
    }
    if params.get("token").is_none_or(String::is_empty) {
        return Admission::Answer(json_response(json!({"base_resp": {"ret": 200003, "err_msg": "invalid session"}})));
    }
    admission
}

/// A backend list answer: the gate, the page of articles, the endpoint's own shape.
pub(super) fn backend_list(
    state: &SimState,
    peer: SocketAddr,
    number: Option<axum::Extension<RequestNumber>>,
    params: &HashMap<String, String>,
    shape: impl Fn(&[SimArticle], usize) -> Value,
) -> Response {
    let fault = match backend_gate(state, peer, number, params) {
        Admission::Proceed(fault) => fault,
        Admission::Answer(response) => return response,
    };
    match backend_articles(state, params) {
        Some((articles, total)) => {
            let body = shape(&articles, total);
            body_response(Chunks(vec![Bytes::from(body.to_string())]), "application/json; charset=UTF-8", fault)
        }
        None => json_response(json!({"base_resp": {"ret": 200002, "err_msg": "invalid args"}})),
    }
}

pub(super) async fn backend_appmsg(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    backend_list(&state, peer, number, &params, |articles, total| {
        json!({
            "base_resp": {"ret": 0, "err_msg": "ok"},
            "app_msg_cnt": total,
            "app_msg_list": articles.iter().map(backend_entry).collect::<Vec<_>>(),
        })
    })
}

pub(super) async fn backend_publish(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    backend_list(&state, peer, number, &params, |articles, total| {
        // One publish_info per article keeps paging simple; WeChat groups by push.
        let publish_list: Vec<Value> = articles
            .iter()
            .map(|a| json!({"publish_type": 101, "publish_info": json!({"type": 9, "msgid": a.key.mid, "appmsgex": [backend_entry(a)]}).to_string()}))
            .collect();
        let page = json!({"total_count": total, "publish_count": total, "masssend_count": total, "publish_list": publish_list});
        json!({"base_resp": {"ret": 0, "err_msg": "ok"}, "publish_page": page.to_string()})
    })
}
