//! The list APIs against the real items in the fixture set.

mod common;

use mpwatch_core::Copyright;
use mpwatch_wechat::api::{self, ApiOutcome};
use mpwatch_wechat::url::ArticleUrl;
use serde_json::{Value, json};

fn jsonl(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(common::fixtures_dir().join("api").join(name)).unwrap();
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn profile_ext_getmsg_with_general_msg_list_as_a_string() {
    let items = jsonl("profile_ext_general_msg_list_items_2019.jsonl");
    assert_eq!(items.len(), 30);
    // The HTTP answer wraps the items in a JSON *string*.
    let body = json!({
        "ret": 0, "errmsg": "ok", "msg_count": 30, "can_msg_continue": 1, "next_offset": 40,
        "general_msg_list": json!({ "list": items }).to_string(),
    })
    .to_string();
    let page = api::parse_profile_ext(&body).unwrap();
    assert_eq!(page.outcome, ApiOutcome::Ok);
    assert!(page.can_msg_continue);
    assert_eq!(page.next_offset, Some(40));
    // 30 pushes; the first four carry a second article each.
    assert_eq!(page.articles.len(), 34);
    let headline = &page.articles[0];
    let key = headline.key.as_ref().unwrap();
    assert_eq!((key.biz.as_str(), key.mid, key.idx), ("MzIxNzYzODAyNw==", 2247503594, 1));
    assert_eq!(headline.sn.as_deref(), Some("458a022df1fe8f5a384f2619a5915b72"));
    assert_eq!(
        headline.url,
        "https://mp.weixin.qq.com/s?__biz=MzIxNzYzODAyNw==&mid=2247503594&idx=1&sn=458a022df1fe8f5a384f2619a5915b72"
    );
    assert_eq!(headline.title.as_deref(), Some("一片树叶100万年的长长长长长图旅行～"));
    assert_eq!(headline.published_at, Some(1570072260));
    assert_eq!(headline.copyright, Some(Copyright::Repost));
    assert!(headline.cover_url.as_deref().unwrap().starts_with("http://mmbiz.qpic.cn/"));
    assert!(!headline.deleted);
    assert_eq!(page.articles[1].key.as_ref().unwrap().idx, 2);
    assert_eq!(page.articles[1].published_at, Some(1570072260), "second article shares the push time");
    let originals = page.articles.iter().filter(|a| a.copyright == Some(Copyright::Original)).count();
    assert_eq!(originals, 5);
}

#[test]
fn profile_ext_error_codes() {
    for (body, expected) in [
        (r#"{"ret":-3,"errmsg":"no session","cookie_count":0}"#, ApiOutcome::SessionExpired { code: -3 }),
        (r#"{"ret":-6,"errmsg":"unknown error"}"#, ApiOutcome::FrequencyControl { code: -6 }),
        (r#"{"base_resp":{"ret":200013,"err_msg":"freq control"}}"#, ApiOutcome::FrequencyControl { code: 200013 }),
    ] {
        assert_eq!(api::parse_profile_ext(body).unwrap().outcome, expected);
    }
    assert!(api::parse_profile_ext("<html>验证</html>").is_err());
    assert!(api::parse_profile_ext(r#"{"ret":0,"general_msg_list":"{not json"}"#).is_err());
}

#[test]
fn deleted_items_are_marked() {
    let mut items = jsonl("profile_ext_general_msg_list_items_2019.jsonl");
    items[0]["app_msg_ext_info"]["del_flag"] = json!(4);
    let body = json!({ "ret": 0, "general_msg_list": json!({ "list": [items[0].clone()] }).to_string() }).to_string();
    let page = api::parse_profile_ext(&body).unwrap();
    assert!(page.articles[0].deleted);
    assert!(!page.articles[1].deleted);
}

#[test]
fn backend_appmsg_list_ex() {
    let items = jsonl("cgi_bin_appmsg_list_items_2020.jsonl");
    let body =
        json!({ "base_resp": { "ret": 0, "err_msg": "ok" }, "app_msg_cnt": 1234, "app_msg_list": items }).to_string();
    let page = api::parse_appmsg_list(&body).unwrap();
    assert_eq!(page.total, Some(1234));
    assert_eq!(page.articles.len(), 26);
    let first = &page.articles[0];
    let key = first.key.as_ref().unwrap();
    assert_eq!((key.biz.as_str(), key.mid, key.idx), ("MjM5MDQ4MzU5NQ==", 2659017567, 1));
    assert_eq!(first.published_at, Some(1604670946));
    assert_eq!(first.copyright, Some(Copyright::None));
    let videos: Vec<_> = page.articles.iter().filter(|a| a.item_show_type == Some(5)).collect();
    assert_eq!(videos.len(), 2);
    let throttled = api::parse_appmsg_list(r#"{"base_resp":{"ret":200013,"err_msg":"freq control"}}"#).unwrap();
    assert_eq!(throttled.outcome, ApiOutcome::FrequencyControl { code: 200013 });
    assert!(throttled.articles.is_empty());
    let expired = api::parse_appmsg_list(r#"{"base_resp":{"ret":200003,"err_msg":"invalid session"}}"#).unwrap();
    assert_eq!(expired.outcome, ApiOutcome::SessionExpired { code: 200003 });
}

#[test]
fn the_2017_history_page_has_the_same_item_shape() {
    let html = std::fs::read_to_string(common::fixtures_dir().join("api/profile_history_2017_msglist.html")).unwrap();
    let start = html.find("var msgList = ").unwrap() + "var msgList = ".len();
    let (list, _) = serde_json::Deserializer::from_str(&html[start..])
        .into_iter::<Value>()
        .next()
        .map(|v| (v.unwrap(), ()))
        .unwrap();
    let articles: Vec<_> = list["list"].as_array().unwrap().iter().flat_map(api::msg_list_item).collect();
    assert!(!articles.is_empty());
    assert_eq!(articles[0].author.as_deref(), Some("和菜头"));
    // Relative temporary links become absolute and are recognised as temporary.
    assert!(matches!(ArticleUrl::parse(&articles[0].url), Ok(ArticleUrl::Temporary { .. })), "{}", articles[0].url);
}
