//! A `discover` item: ask one source for article URLs, store what it lists, queue the
//! pages to fetch, and record the source's health.

use mpwatch_core::time::UnixSeconds;
use mpwatch_core::{ArticleStatus, SourceKind};
use mpwatch_store::articles::ArticleRecord;
use mpwatch_store::queue::WorkItem;
use mpwatch_store::{StoreError, Tx};
use mpwatch_wechat::api::ListedArticle;
use mpwatch_wechat::url::ArticleUrl;
use tracing::{Instrument as _, info_span, warn};

use super::{FEED_LINK_PRIORITY, LISTED_PAGE_PRIORITY, Outcome, PAGE};
use crate::alerts::AlertKind;
use crate::engine::{CrawlOptions, Engine};
use crate::error::CrawlError;
use crate::progress::Progress;
use crate::run::RunScope;
use crate::sources::{self, Found, Listing, Source as _, SourceFailure};

impl Engine {
    /// Handles a discover item: asks one source for article URLs.
    pub(crate) async fn discover(
        &self,
        run: &RunScope,
        item: &WorkItem,
        options: &CrawlOptions,
    ) -> Result<Outcome, CrawlError> {
        let Ok(source_id) = item.target.parse::<i64>() else {
            return Ok(Outcome::Fail(format!("bad source id {}", item.target)));
        };
        let Some((source, biz)) = self.db.call(move |store| store.source(source_id)).await? else {
            return Ok(Outcome::Fail("source no longer exists".into()));
        };
        run.progress.account(source.account_id);
        let span = info_span!("source", kind = %source.kind, account = source.account_id);
        let cx = self.source_context(run);
        let result = async {
            match source.kind {
                SourceKind::Manual => sources::Manual.discover(&cx, &source, biz.as_ref(), options.backfill).await,
                SourceKind::Feed => sources::Feed.discover(&cx, &source, biz.as_ref(), options.backfill).await,
                SourceKind::ProfileExt => {
                    sources::ProfileExt.discover(&cx, &source, biz.as_ref(), options.backfill).await
                }
                SourceKind::MpBackend => {
                    sources::MpBackend.discover(&cx, &source, biz.as_ref(), options.backfill).await
                }
            }
        }
        .instrument(span)
        .await?;
        let now = self.now();
        let id = item.id;
        let Listing { found, position, failure, more } = result;
        run.progress.found.fetch_add(found.len() as u64, std::sync::atomic::Ordering::Relaxed);
        // What the source listed is stored whatever happened next, with the paging
        // position that covers it, in one transaction: neither is ever ahead.
        let health = match &failure {
            Some(SourceFailure::Broken(retry_at, error)) => Some((Err(error.clone()), *retry_at)),
            Some(SourceFailure::Wait(..)) => None,
            None if more => None,
            None => Some((Ok(()), now + options.rediscover_every)),
        };
        let acknowledge = matches!(failure, Some(SourceFailure::Broken(..))) || (failure.is_none() && !more);
        let holder = self.holder.clone();
        self.db
            .write(move |tx| {
                store_found(tx, &found, now)?;
                if let Some(position) = &position {
                    tx.save_list_position(source_id, position)?;
                }
                if let Some((outcome, at)) = &health {
                    let outcome = outcome.as_ref().map(|_| ()).map_err(String::as_str);
                    tx.record_source_outcome(source_id, outcome, Some(*at), now)?;
                }
                if acknowledge { tx.complete_work(id, Some(&holder), now).map(drop) } else { Ok(()) }
            })
            .await?;
        match failure {
            Some(SourceFailure::Wait(at, reason)) => Ok(Outcome::Postpone(at, reason)),
            None if more => Ok(Outcome::Postpone(now, "more of the list to page through".into())),
            None => Ok(Outcome::Done),
            Some(SourceFailure::Broken(_, error)) => {
                warn!(source = source.id, kind = %source.kind, "source failed: {error}");
                Progress::bump(&run.progress.failures);
                let failures = source.consecutive_failures + 1;
                if failures >= i64::from(self.config.alerts.source_failures) {
                    self.alerts.raise(
                        AlertKind::SourceFailing,
                        &format!("source #{}", source.id),
                        format!(
                            "{} source #{} of account #{} failed {failures} times in a row: {error}",
                            source.kind, source.id, source.account_id
                        ),
                    );
                }
                Ok(Outcome::Done)
            }
        }
    }
}

/// Stores what a source listed and queues the pages to fetch: new articles, articles
/// listed before but never fetched, and URLs without a key not fetched yet.
fn store_found(tx: &Tx<'_>, found: &[Found], now: UnixSeconds) -> Result<(), StoreError> {
    for entry in found {
        match entry {
            Found::Listed(listed) => {
                let Some(record) = listed_record(listed) else {
                    tx.enqueue(PAGE, &listed.url, LISTED_PAGE_PRIORITY, now, now)?;
                    continue;
                };
                tx.upsert_article(&record, now)?;
                if let Some(key) = &record.key
                    && tx.article_status(key)? == Some(ArticleStatus::Pending)
                {
                    tx.enqueue(PAGE, &record.url, LISTED_PAGE_PRIORITY, now, now)?;
                }
            }
            Found::Url(url) => {
                // Below listed pages: a feed's short link often names an article the
                // list API gives by key, and once that page is stored the link is not
                // fetched at all.
                let fetched = match ArticleUrl::parse(url) {
                    Ok(ArticleUrl::Permanent { key, .. }) => {
                        tx.article_status(&key)?.is_some_and(|status| status != ArticleStatus::Pending)
                    }
                    Ok(ArticleUrl::Short { .. }) => tx.short_url_fetched(url)?,
                    // A temporary link expires; it is never stored as an article's.
                    Ok(ArticleUrl::Temporary { .. }) | Err(_) => false,
                };
                if !fetched {
                    tx.enqueue(PAGE, url.as_str(), FEED_LINK_PRIORITY, now, now)?;
                }
            }
        }
    }
    Ok(())
}

fn listed_record(listed: &ListedArticle) -> Option<ArticleRecord> {
    Some(ArticleRecord {
        key: Some(listed.key.clone()?),
        sn: listed.sn.clone(),
        url: listed.url.clone(),
        title: listed.title.clone(),
        digest: listed.digest.clone(),
        author: listed.author.clone(),
        published_at: listed.published_at,
        cover_url: listed.cover_url.clone(),
        copyright: listed.copyright,
        source_url: listed.source_url.clone(),
        // The list says what the item is; a legacy page of it cannot.
        kind: listed.item_show_type.map(mpwatch_wechat::page::kind_of_item_show_type),
        status: ArticleStatus::Pending,
        ..ArticleRecord::default()
    })
}
