//! The client APIs: `profile_ext` history lists, `getappmsgext` counts, comments.

use super::*;

/// `copyright_stat` as the list APIs spell it.
pub(super) fn list_copyright(copyright: Copyright) -> i64 {
    match copyright {
        Copyright::Original => 11,
        Copyright::Repost => 101,
        Copyright::None => 100,
    }
}

pub(super) fn list_entry(article: &SimArticle, now: i64) -> Value {
    // Lists serve URLs the way WeChat embeds them: &amp; and tracking parameters.
    let content_url = format!(
        "http://mp.weixin.qq.com/s?__biz={}&amp;mid={}&amp;idx={}&amp;sn={}&amp;chksm={:016x}&amp;scene=27#wechat_redirect",
        article.key.biz,
        article.key.mid,
        article.key.idx,
        article.sn,
        hash(&[article.key.mid, u64::from(article.key.idx)])
    );
    let deleted = article.status_at(now) != ArticleStatus::Ok;
    json!({
        "title": article.title,
        "digest": article.digest,
        "content": "",
        "fileid": 0,
        "content_url": content_url,
        "source_url": "",
        "cover": format!("http://mmbiz.qpic.cn/sim_jpg/{}/{}_{}/0?wx_fmt=jpeg", article.key.biz.numeric_id(), article.key.mid, article.key.idx),
        "subtype": 9,
        "author": article.author,
        "copyright_stat": list_copyright(article.copyright),
        "del_flag": if deleted { 4 } else { 1 },
        "item_show_type": article.item_show_type(),
        "audio_fileid": 0,
        "duration": 0,
        "play_url": "",
        "malicious_title_reason_id": 0,
        "malicious_content_type": 0,
    })
}

pub(super) async fn profile_ext(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    let gate = gate(Endpoint::ProfileExt, peer, number);
    let (fault, credential_id) = match admit_credentialed(&state, &gate, &params) {
        Credentialed::Proceed(fault, id) => (fault, Some(id)),
        Credentialed::Answer(response) => return response,
    };
    let Some(account) =
        params.get("__biz").and_then(|b| Biz::parse(b).ok()).and_then(|b| state.world.account_by_biz(&b))
    else {
        return with_credential(json_response(json!({"ret": -1, "errmsg": "system error"})), credential_id);
    };
    let now = state.now();
    let offset: usize = params.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let count: usize = params.get("count").and_then(|c| c.parse().ok()).unwrap_or(10).clamp(1, 10);
    let days: Vec<u32> = state.world.push_days_desc(account, now).skip(offset).take(count + 1).collect();
    let more = days.len() > count;
    let list: Vec<Value> = days
        .iter()
        .take(count)
        .filter_map(|day| {
            let (mid, published, n) = state.world.push(account, *day)?;
            let articles: Vec<SimArticle> = (1..=n).filter_map(|idx| state.world.article(account, *day, idx)).collect();
            let headline = articles.first()?;
            let mut ext = list_entry(headline, now);
            ext["is_multi"] = json!(i32::from(n > 1));
            ext["multi_app_msg_item_list"] = Value::Array(articles.iter().skip(1).map(|a| list_entry(a, now)).collect());
            Some(json!({
                "comm_msg_info": {"id": 1_000_000_000 + mid % 1_000_000, "type": 49, "datetime": published, "fakeid": account.numeric_id.to_string(), "status": 2, "content": ""},
                "app_msg_ext_info": ext,
            }))
        })
        .collect();
    let returned = list.len();
    // general_msg_list is a JSON string, and its URLs carry `\/` as WeChat double-encodes them.
    let inner = json!({ "list": list }).to_string().replace('/', "\\/");
    let body = json!({
        "ret": 0,
        "errmsg": "ok",
        "msg_count": returned,
        "can_msg_continue": i32::from(more),
        "general_msg_list": inner,
        "next_offset": offset + returned,
        "video_count": 1,
        "use_video_tab": 1,
        "real_type": 0,
        "home_page_list": [],
    });
    let response = body_response(Chunks(vec![Bytes::from(body.to_string())]), "application/json; charset=UTF-8", fault);
    with_credential(response, credential_id)
}

pub(super) async fn getappmsgext(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> Response {
    let gate = gate(Endpoint::Getappmsgext, peer, number);
    let (fault, credential_id) = match admit_credentialed(&state, &gate, &params) {
        Credentialed::Proceed(fault, id) => (fault, Some(id)),
        Credentialed::Answer(response) => return response,
    };
    let key = key_from(&form, "mid");
    let now = state.now();
    let response = match key.and_then(|key| state.world.article_by_key(&key, now)) {
        Some((account, article)) if form.get("sn").is_none_or(|sn| sn == &article.sn) => {
            let counts = article.counts_at(account, now);
            let body = json!({
                "advertisement_info": [],
                "appmsgstat": {
                    "show": true, "is_login": true, "liked": false,
                    "read_num": counts.reads, "like_num": counts.wows, "old_like_num": counts.likes,
                    "share_num": counts.shares, "real_read_num": 0, "ret": 0, "version": 1, "prompted": 1,
                    "like_disabled": false, "style": 1, "video_pv": 0, "video_uv": 0, "friend_like_num": 0,
                },
                "comment_count": counts.comments,
                "comment_enabled": 1,
                "base_resp": {"ret": 0, "errmsg": "ok"},
            });
            body_response(Chunks(vec![Bytes::from(body.to_string())]), "application/json; charset=UTF-8", fault)
        }
        _ => json_response(json!({"base_resp": {"ret": 200002, "errmsg": "invalid args"}, "ret": 200002})),
    };
    with_credential(response, credential_id)
}

const COMMENTS: &[&str] =
    &["写得好，受教了", "期待后续报道", "这个结论有待商榷", "转给了同事", "图片很清楚", "第三段没看懂"];

pub(super) async fn appmsg_comment(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    number: Option<axum::Extension<RequestNumber>>,
    Query(params): Params,
) -> Response {
    let gate = gate(Endpoint::Comment, peer, number);
    let (fault, credential_id) = match admit_credentialed(&state, &gate, &params) {
        Credentialed::Proceed(fault, id) => (fault, Some(id)),
        Credentialed::Answer(response) => return response,
    };
    let key = key_from(&params, "appmsgid");
    let now = state.now();
    let response = match key.and_then(|key| state.world.article_by_key(&key, now)) {
        Some((account, article)) => {
            let total = article.counts_at(account, now).comments;
            let elected: Vec<Value> = (0..total.min(20))
                .map(|i| {
                    let h = hash(&[article.key.mid, u64::from(article.key.idx), i as u64]);
                    json!({
                        "id": i + 1,
                        "nick_name": format!("读者{}", h % 10_000),
                        "content": COMMENTS[(h % COMMENTS.len() as u64) as usize],
                        "create_time": article.published_at + 600 + (h % 86_400) as i64,
                        "like_num": h % 50,
                    })
                })
                .collect();
            let body = json!({"base_resp": {"ret": 0, "errmsg": "ok"}, "elected_comment": elected, "elected_comment_total_cnt": total, "enabled": 1});
            body_response(Chunks(vec![Bytes::from(body.to_string())]), "application/json; charset=UTF-8", fault)
        }
        None => json_response(json!({"base_resp": {"ret": 200002, "errmsg": "invalid args"}})),
    };
    with_credential(response, credential_id)
}
