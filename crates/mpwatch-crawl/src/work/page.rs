//! A `page` item: fetch an article page, parse it, store the article (with its ladder
//! rungs, its raw page and the item's acknowledgement in one transaction).

use mpwatch_core::{ArticleKey, ArticleStatus};
use mpwatch_store::articles::{ArticleRecord, StoredArticle, UpsertOutcome};
use mpwatch_store::queue::WorkItem;
use mpwatch_wechat::page::{ArticlePage, PageKind};
use mpwatch_wechat::url::{ArticleUrl, canonical_url};
use tracing::info;

use super::metrics::queue_rung;
use super::{Outcome, RECHECK_AFTER, queued_by_a_source};
use crate::cooldown::Scope;
use crate::engine::Engine;
use crate::error::CrawlError;
use crate::http::Http;
use crate::ladder::ladder;
use crate::progress::Progress;
use crate::rate_limit::RequestClass;
use crate::run::RunScope;

impl Engine {
    /// Acknowledges a page item that stores nothing: its article was fetched through
    /// another link meanwhile, or its page says it was gone before we knew its key.
    async fn finish_storing_nothing(&self, item: &WorkItem) -> Result<Outcome, CrawlError> {
        let (id, now, holder) = (item.id, self.now(), self.holder.clone());
        self.db.write(move |tx| tx.complete_work(id, Some(&holder), now).map(drop)).await?;
        Ok(Outcome::Done)
    }

    /// Handles a page item: fetch, parse, store (with the ladder and the acknowledgement
    /// in the same transaction).
    pub(crate) async fn page(&self, run: &RunScope, item: &WorkItem) -> Result<Outcome, CrawlError> {
        let target = item.target.clone();
        let host = self.http.wechat_host();
        if let Some(until) = self.cooldowns.cooling_until(Scope::Host, &host).await? {
            return Ok(Outcome::Postpone(self.wait_here_or_give_back(until), format!("host {host} cooling down")));
        }
        let parsed_target = ArticleUrl::parse(&target).ok();
        // Items a source queued (a feed's links, a list's pages) may find their article
        // fetched through another link meanwhile; an ad-hoc `--url` or a re-check is
        // always fetched.
        let from_a_source = queued_by_a_source(item.priority);
        let recent = self.now() - RECHECK_AFTER;
        let fetched_lately = move |article: &StoredArticle| {
            article.status != ArticleStatus::Pending && article.last_fetched_at.is_some_and(|at| at >= recent)
        };
        let known = match &parsed_target {
            Some(ArticleUrl::Short { .. }) => {
                if from_a_source && self.short_link_in_writing(&target) {
                    // Its article's page was just fetched by another link and waits for
                    // its commit.
                    return self.finish_storing_nothing(item).await;
                }
                let short = target.clone();
                let article = self.db.call(move |store| store.article_by_short_url(&short)).await?;
                if from_a_source && article.as_ref().is_some_and(fetched_lately) {
                    // Fetched by its canonical URL since this short link was queued (a
                    // feed and the list API name the same article): nothing to add.
                    return self.finish_storing_nothing(item).await;
                }
                article.map(|a| a.key())
            }
            Some(url) => {
                let key = url.key().cloned();
                if from_a_source
                    && let Some(key) = key.clone()
                    && self.db.call(move |store| store.article_by_key(&key)).await?.as_ref().is_some_and(fetched_lately)
                {
                    // Listed, then fetched through another link (a feed's short link,
                    // on this node or another) before this item came up. (A page
                    // older than a re-check's age is fetched: a re-check queued
                    // while this item waited joined it.)
                    return self.finish_storing_nothing(item).await;
                }
                key
            }
            None => None,
        };
        let url = self.http.wechat_url(&Http::path_of(&target));
        let limit = (RequestClass::ArticlePage, host.as_str());
        let fetched =
            match self.http.send(run, "article_page", &target, &host, limit, || self.http.anonymous.get(&url)).await {
                Ok(fetched) => fetched,
                Err(failure) if failure.host_down => return Ok(Outcome::Postpone(failure.retry_at, failure.message)),
                Err(failure) => return Ok(Outcome::Retry(failure.retry_at, failure.message)),
            };
        let page = mpwatch_wechat::parse_page(&fetched.body);
        let captcha = fetched.final_url.contains("wappoc_appmsgcaptcha");
        self.http
            .log_answer(
                run,
                "article_page",
                &target,
                &fetched,
                if captcha { "verification" } else { page.kind.as_str() },
            )
            .await;
        if page.kind == PageKind::Verification || captcha {
            // Slow down, and record nothing about the article.
            let until = self.cooldowns.enter(&run.progress, Scope::Host, &host, "verification page").await?;
            return Ok(Outcome::Postpone(self.wait_here_or_give_back(until), "verification page".into()));
        }
        if fetched.status >= 400 {
            return Ok(Outcome::Retry(self.now() + 3600, format!("HTTP {}", fetched.status)));
        }
        self.cooldowns.clear_after_success(Scope::Host, &host).await?;
        let Some(record) = record_from_page(&page, known.as_ref(), &target) else {
            return Ok(match page.kind {
                PageKind::Expired => Outcome::Fail("the link has expired".into()),
                // Gone before we ever knew its key: nothing to store, nothing to retry.
                PageKind::Deleted | PageKind::Blocked | PageKind::Unavailable => {
                    info!(url = %target, kind = page.kind.as_str(), "article gone before it was stored");
                    return self.finish_storing_nothing(item).await;
                }
                _ => Outcome::Retry(self.now() + 3600, format!("not an article page ({})", page.kind.as_str())),
            });
        };
        let now = self.now();
        let rungs = self.rungs.clone();
        let (id, holder) = (item.id, self.holder.clone());
        let archive = self.config.crawl.archive_raw_pages.then(|| {
            let compressed = zstd::encode_all(fetched.body.as_ref(), 3).unwrap_or_default();
            (compressed, fetched.body.len())
        });
        let learned = page
            .key()
            .map(|key| (key.biz, page.account_name.clone(), page.account_username.clone(), page.account_alias.clone()));
        let locator = target.clone();
        // The raw page and its parse are not kept while the write waits for its group
        // commit: hundreds of items may wait at once, and pages run to megabytes.
        let kind = page.kind;
        drop(page);
        drop(fetched);
        let short_link = record.short_url.clone();
        let _in_writing = short_link.map(|link| ShortLinkInWriting::new(self, link));
        let (article_id, outcome) = self
            .db
            .write(move |tx| {
                if let Some((biz, nickname, username, alias)) = &learned {
                    tx.learn_account(
                        biz,
                        nickname.as_deref(),
                        username.as_deref(),
                        alias.as_deref(),
                        Some(&locator),
                        now,
                    )?;
                }
                // An article only listed so far counts as new when its page arrives.
                let was_listed = match &record.key {
                    Some(key) => tx.article_status(key)? == Some(ArticleStatus::Pending),
                    None => false,
                };
                let (article_id, outcome) = tx.upsert_article(&record, now)?;
                let outcome = if was_listed { UpsertOutcome::Inserted } else { outcome };
                if record.status == ArticleStatus::Ok
                    && let Some(published) = record.published_at
                {
                    let taken = tx.rungs_taken(article_id)?;
                    for (rung, at) in ladder(&rungs, published, now, &taken) {
                        queue_rung(tx, article_id, rung, at, now)?;
                    }
                }
                if let Some((compressed, size)) = &archive {
                    tx.insert_raw_page(article_id, &record.url, now, *size, compressed)?;
                }
                tx.complete_work(id, Some(&holder), now)?;
                Ok((article_id, outcome))
            })
            .await?;
        match outcome {
            UpsertOutcome::Inserted => {
                Progress::bump(&run.progress.new);
            }
            UpsertOutcome::Updated { status_changed, .. } => {
                Progress::bump(&run.progress.updated);
                if status_changed {
                    info!(article = article_id, status = kind.as_str(), "article status changed");
                }
            }
            UpsertOutcome::Unchanged => {}
        }
        Ok(Outcome::Done)
    }
}

/// The article record a parsed page gives (`None` for pages without one: verification,
/// expired, unknown, or a gone article whose key is not known).
pub fn record_from_page(page: &ArticlePage, fallback_key: Option<&ArticleKey>, target: &str) -> Option<ArticleRecord> {
    let key = page.key().or_else(|| fallback_key.cloned())?;
    let status = match page.kind {
        PageKind::Deleted => ArticleStatus::Deleted,
        PageKind::Blocked => ArticleStatus::Blocked,
        PageKind::Unavailable => ArticleStatus::Unavailable,
        kind if kind.is_article() => ArticleStatus::Ok,
        _ => return None,
    };
    let sn = page.sn.clone().or_else(|| match ArticleUrl::parse(target) {
        Ok(ArticleUrl::Permanent { sn, .. }) => sn,
        _ => None,
    });
    let short_url = page.short_url.clone().or_else(|| match ArticleUrl::parse(target) {
        Ok(short @ ArticleUrl::Short { .. }) => Some(short.canonical()),
        _ => None,
    });
    Some(ArticleRecord {
        url: canonical_url(&key, sn.as_deref()),
        key: Some(key),
        sn,
        short_url,
        title: page.title.clone(),
        digest: page.digest.clone(),
        author: page.author.clone(),
        published_at: page.published_at,
        kind: page.article_kind(),
        copyright: page.copyright,
        original_account: page.original_account.clone(),
        original_url: page.original_url.clone(),
        source_url: page.source_url.clone(),
        cover_url: page.cover_url.clone(),
        comment_id: page.comment_id.clone(),
        content_text: page.content_text.clone(),
        body_html: page.body_html.clone(),
        word_count: page.kind.is_article().then_some(page.text_chars as i64),
        image_count: page.kind.is_article().then_some(page.image_urls.len() as i64),
        status,
        status_reason: page.reason.clone(),
    })
}

impl Engine {
    fn short_link_in_writing(&self, link: &str) -> bool {
        self.short_links_in_writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(link)
    }
}

/// A fetched page's short link, known to the engine until its write has committed (or
/// failed) and the database answers for it.
struct ShortLinkInWriting<'a> {
    engine: &'a Engine,
    link: String,
}

impl<'a> ShortLinkInWriting<'a> {
    fn new(engine: &'a Engine, link: String) -> Self {
        engine.short_links_in_writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(link.clone());
        ShortLinkInWriting { engine, link }
    }
}

impl Drop for ShortLinkInWriting<'_> {
    fn drop(&mut self) {
        self.engine.short_links_in_writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.link);
    }
}
