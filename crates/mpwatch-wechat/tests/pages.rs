//! Every real page in the fixture set, with the exact values it carries.

mod common;

use mpwatch_wechat::page::{PageKind, parse_page};
use serde_json::{Value, json};

/// Parses the named page and compares each key of `expected` with the extracted value.
fn check(name: &str, expected: Value) {
    let Some(bytes) = common::page(name) else { return };
    let page = parse_page(&bytes);
    let actual = serde_json::to_value(&page).unwrap();
    for (key, want) in expected.as_object().unwrap() {
        assert_eq!(&actual[key], want, "{name}: field {key}");
    }
    if page.kind.is_article() {
        assert!(page.key().is_some(), "{name}: an article page must give its key");
    }
}

#[test]
fn article_2025_normal_a() {
    check(
        "article_2025_normal_a",
        json!({
            "kind": "article", "title": "AI编程害死我了，给我的抓包软件埋了一个大雷！",
            "account_name": "轩辕的编程宇宙", "account_username": "gh_fe02be2b2ff0", "account_alias": "xuanyuancoding",
            "biz": "MzIyNjMxOTY0NA==", "mid": 2247504179u64, "idx": 1, "sn": "52c2c5acc9ff4567b10d1408a333693c",
            "published_at": 1762747210, "author": "轩辕之风", "copyright": "none", "item_show_type": 0,
            "comment_id": "4247234702597603332", "short_url": "https://mp.weixin.qq.com/s/KDWh_qGpFN5Vu1TR9t30Mw",
            "source_url": null,
        }),
    );
}

#[test]
fn article_2025_normal_b() {
    check(
        "article_2025_normal_b",
        json!({
            "kind": "article", "title": "前端播客周刊 #026 - Chrome Speculation Rules 加速网站性能",
            "account_name": "印记中文", "account_username": "gh_c4896fefddbf", "account_alias": "docschina",
            "biz": "MzIzOTkwMjM0OQ==", "mid": 2247544521u64, "idx": 1, "sn": "2e4c044f57dc65cc3a10f47f26098a9b",
            "published_at": 1762834143, "author": "印记中文团队", "copyright": "original",
            "short_url": "https://mp.weixin.qq.com/s/SbB40tES2MrfoNaIPima5A",
        }),
    );
}

#[test]
fn article_2025_with_author() {
    // The sample table upstream lists 我是左岸, the author; the account itself is 左岸读书.
    check(
        "article_2025_with_author",
        json!({
            "kind": "article", "title": "最后的止痛药", "account_name": "左岸读书", "author": "我是左岸",
            "account_username": "gh_ee2320e6a2ac", "account_alias": "zreading",
            "biz": "MjM5OTAyNDkwMA==", "mid": 2650707699u64, "idx": 1, "sn": "d196d09c958a5d6997e17e43629a1025",
            "published_at": 1767346773, "copyright": "original",
        }),
    );
}

#[test]
fn picture_messages_take_text_and_images_from_their_data() {
    check(
        "picture_2025_a",
        json!({
            "kind": "picture", "title": "新能源车均价创6年新低，价格战「寒气」侵蚀供应链", "account_name": "36氪",
            "account_username": "gh_240fbf8b33e4", "account_alias": "wow36kr",
            "biz": "MzI2NDk5NzA0Mw==", "mid": 2248864730u64, "idx": 1, "sn": "875c3bbeea8cafa2728a9f53c19b49a3",
            "published_at": 1762338600, "item_show_type": 8, "copyright": "none", "author": null,
            "short_url": "https://mp.weixin.qq.com/s/JJyPUpHLM2bGvfk5FNvTUA",
        }),
    );
    let page = parse_page(&common::page("picture_2025_a").unwrap());
    assert_eq!(page.image_urls.len(), 4);
    assert!(
        page.image_urls.iter().all(|u| u.starts_with("https://mmbiz.qpic.cn/") && !u.contains("amp;")),
        "{:?}",
        page.image_urls
    );
    let text = page.content_text.unwrap();
    assert!(text.starts_with("今年，中国汽车行业价格战，寒气越发深入。\n2025年9月"), "{text}");
    check(
        "picture_2025_b",
        json!({
            "kind": "picture", "title": "发工资了，时隔两年半，好开心", "account_name": "神光的编程秘籍",
            "account_username": "gh_7aed10cde089", "biz": "Mzg3OTYzMDkzMg==", "mid": 2247504238u64, "idx": 1,
            "sn": "a6870a713cb825074f58ac62f51a6713", "published_at": 1761790349, "item_show_type": 8,
        }),
    );
}

#[test]
fn text_messages_take_their_text_from_their_data() {
    check(
        "text_2025_a",
        json!({
            "kind": "text", "title": "AI编程带给程序员的危与机", "account_name": "轩辕的编程宇宙",
            "account_username": "gh_fe02be2b2ff0", "biz": "MzIyNjMxOTY0NA==", "mid": 2247503866u64, "idx": 1,
            "sn": "2a1e76712cd0141673069be881549fc2", "published_at": 1759817591, "item_show_type": 10,
            "text_chars": 967,
        }),
    );
    let page = parse_page(&common::page("text_2025_a").unwrap());
    assert!(page.content_text.unwrap().starts_with("这两年经常听到AI编程要取代程序员的论调"));
    check(
        "text_2025_b",
        json!({
            "kind": "text", "account_name": "神光的编程秘籍", "biz": "Mzg3OTYzMDkzMg==", "mid": 2247504201u64,
            "idx": 1, "sn": "6637b41a30d1e061f64a267b0624152a", "published_at": 1760571058, "item_show_type": 10,
        }),
    );
}

#[test]
fn reposts_name_the_original() {
    check(
        "repost_2025_a",
        json!({
            "kind": "repost", "title": "比小学生说烂梗更可怕的，是大人也说", "account_name": "36氪", "author": "何驰",
            "biz": "MzI2NDk5NzA0Mw==", "mid": 2248865513u64, "idx": 3, "sn": "30a0ea2f8fe1919401dbf1be01eea866",
            "published_at": 1762819606, "copyright": "repost",
            "original_account": "新周刊", "original_username": "gh_05f192fce051",
        }),
    );
    let page = parse_page(&common::page("repost_2025_a").unwrap());
    assert!(
        page.original_url
            .unwrap()
            .starts_with("https://mp.weixin.qq.com/s?__biz=MjM5ODMzMDMyMw==&mid=2654868330&idx=1")
    );
    check(
        "repost_2025_b",
        json!({
            "kind": "repost", "title": "和死神赛跑：趁父亲还在世，我想用人工智能留住他", "account_name": "阮一峰的网络日志",
            "biz": "MzI4NjAxNjY4Nw==", "mid": 2650222329u64, "idx": 1, "published_at": 1574683643,
            "copyright": "repost", "original_username": "gh_204e51503d1c",
            "original_url": "https://mp.weixin.qq.com/s?__biz=MzIxNzE3MjEwNg==&mid=2247483687&idx=1&sn=8c05352c98185e08f8100947f6f0b621",
        }),
    );
}

#[test]
fn pages_from_2017_to_2020() {
    check(
        "article_2018_raw_original",
        json!({
            "kind": "article", "title": "一分钟了解互联网动静分离架构", "account_name": "架构师之路",
            "account_username": "gh_10a6b96351a9", "account_alias": "road5858", "biz": "MjM5ODYxMDA5OQ==",
            "mid": 2651960800u64, "idx": 1, "sn": "595842fb2dc75aa505f544b956f2d65c", "published_at": 1514986500,
            "copyright": "original", "comment_id": "3512393186",
            "source_url": "https://mp.weixin.qq.com/s?__biz=MjM5ODYxMDA5OQ==&mid=2651960791&idx=1&sn=7b070e53b5890e08082ebf1bc2e65626&chksm=bd2d000b8a5a891d7ed3bf83cd9c295ca6fa37a43f4ffedf762a21df17d27ebb3cfa071400cd#rd",
        }),
    );
    check(
        "article_2018_sogou_templink_video_iframe",
        json!({
            "kind": "article", "title": "【视频】石榴花开", "account_name": "共产党员", "account_username": "gh_9381891f8dd8",
            "biz": "MzA4ODUzNjAxOA==", "mid": 2671068104u64, "idx": 7, "sn": null, "published_at": 1521515999,
            "copyright": "none",
        }),
    );
    check(
        "article_2018_sogou_templink_mpvoice_audio",
        json!({
            "kind": "article", "title": "语音 | 早安武汉〔2018.3.19 周一〕", "account_name": "长江日报",
            "account_username": "gh_09f57d9c1048", "biz": "MjM5ODAyNTcwMA==", "mid": 2651788393u64, "idx": 1,
            "published_at": 1521408600,
        }),
    );
    check(
        "article_2018_sogou_templink_wxid_username",
        json!({
            "kind": "article", "title": "4月6日周五【新闻速览一分钟】", "account_name": "华商报",
            "account_username": "wxid_9443134431811", "biz": "ODUzMjkwMzYx", "mid": 2654593305u64, "idx": 1,
            "published_at": 1522968980,
        }),
    );
    check(
        "article_2017_browser_saved_shortlink",
        json!({
            "kind": "article", "title": "初赛赛题解读 | 10分钟读懂2017华为软件精英挑战赛初赛赛题",
            "account_name": "HUAWEI软件精英挑战赛", "account_username": "gh_49da5cc9fe18", "biz": "MzA5MjkzMTA1Mw==",
            "mid": 2651688808u64, "idx": 5, "sn": "cd8e21013e3635452ad74f926e83f537", "published_at": 1488513562,
            "source_url": "http://codecraft.huawei.com/", "copyright": "none",
        }),
    );
    check(
        "article_2020_rendered_dom",
        json!({
            "kind": "article", "title": "一日一技：在 Python 中实现延迟调用", "account_name": "未闻Code",
            "account_username": "gh_2873653fd7af", "author": "kingname", "biz": "MzI2MzEwNTY3OQ==",
            "mid": 2648978231u64, "idx": 1, "sn": "dd091611fcf1aa0c2aef9655f13e7731", "published_at": 1581418070,
            "copyright": "original",
        }),
    );
}

#[test]
fn message_pages_are_classified() {
    check("deleted_2025_zh", json!({ "kind": "deleted", "title": null, "biz": null }));
    check("deleted_2025_en", json!({ "kind": "deleted" }));
    check(
        "blocked_violation_2025_law",
        json!({ "kind": "blocked", "reason": "由用户投诉并经平台审核，violating relevant laws and regulations，查看对应规则" }),
    );
    check(
        "blocked_violation_2025_marketing",
        json!({ "kind": "blocked", "reason": "由用户投诉并经平台审核，涉嫌过度营销、骚扰用户，查看对应规则" }),
    );
    check("unavailable_2025", json!({ "kind": "unavailable" }));
    check("expired_link_2018", json!({ "kind": "expired" }));
    check("verify_captcha_secitptpage", json!({ "kind": "verification", "title": null }));
    check("aboutbiz_2025_a", json!({ "kind": "unknown" }));
    check("aboutbiz_2025_b", json!({ "kind": "unknown" }));
}

#[test]
fn article_bodies_are_clean_text_with_images() {
    let page = parse_page(&common::page("article_2025_normal_a").unwrap());
    let text = page.content_text.as_deref().unwrap();
    assert!(!text.contains('<') && !text.contains("&nbsp;") && !text.contains("&amp;"), "markup left in text");
    assert!(!text.contains("  "), "whitespace not collapsed");
    assert_eq!(page.text_chars, text.chars().filter(|c| !c.is_whitespace()).count());
    assert!(page.text_chars > 1500, "{}", page.text_chars);
    assert_eq!(page.image_urls.len(), 10);
    let html = page.content_html.unwrap();
    assert!(html.contains("data-src="), "images keep data-src");
    // The clean HTML: the ten images as linked, the text, no styles or scripts, and
    // much smaller than the page's markup.
    let clean = page.body_html.unwrap();
    assert_eq!(clean.matches("<img src=\"https://mmbiz.qpic.cn/").count(), 10, "{clean:.400}");
    for banned in ["style=", "class=", "data-src", "<script", "<section", "<span", "onclick"] {
        assert!(!clean.contains(banned), "{banned} in {clean:.400}");
    }
    let first_line = text.lines().next().unwrap();
    assert!(clean.contains(first_line.split_whitespace().next().unwrap()), "{first_line}");
    assert!(clean.len() * 3 < html.len(), "clean {} bytes of {}", clean.len(), html.len());
}

#[test]
fn every_article_fixture_has_clean_html_without_markup_left() {
    for name in common::all_page_names() {
        let Some(bytes) = common::page(&name) else { continue };
        let page = parse_page(&bytes);
        if !page.kind.is_article() || page.content_text.is_none() {
            continue;
        }
        let clean = page.body_html.unwrap_or_else(|| panic!("{name}: no clean HTML"));
        for banned in ["style=", "<script", "<style", "javascript:", "data-src"] {
            assert!(!clean.contains(banned), "{name}: {banned}");
        }
    }
}

#[test]
fn every_fixture_parses_to_a_known_kind() {
    for name in common::all_page_names() {
        let Some(bytes) = common::page(&name) else { continue };
        let page = parse_page(&bytes);
        let expected = match name.split('_').next().unwrap() {
            "article" => PageKind::Article,
            "picture" => PageKind::Picture,
            "text" => PageKind::Text,
            "repost" => PageKind::Repost,
            "deleted" => PageKind::Deleted,
            "blocked" => PageKind::Blocked,
            "unavailable" => PageKind::Unavailable,
            "expired" => PageKind::Expired,
            "verify" => PageKind::Verification,
            _ => PageKind::Unknown,
        };
        assert_eq!(page.kind, expected, "{name}");
    }
}
