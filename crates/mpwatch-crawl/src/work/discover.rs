//! A `discover` item: ask one source for article URLs, store what it lists, queue the
//! pages to fetch, and record the source's health.

use mpwatch_core::{ArticleStatus, SourceKind};
use mpwatch_store::articles::ArticleRecord;
use mpwatch_store::queue::WorkItem;
use mpwatch_wechat::api::ListedArticle;
use tracing::{Instrument as _, info_span, warn};

use super::{Outcome, PAGE};
use crate::alerts::AlertKind;
use crate::engine::{CrawlOptions, Engine};
use crate::error::CrawlError;
use crate::progress::Progress;
use crate::run::RunScope;
use crate::sources::{self, Found, Source as _, SourceFailure};

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
        match result {
            Err(SourceFailure::Wait(at, reason)) => Ok(Outcome::Postpone(at, reason)),
            Err(SourceFailure::Broken(retry_at, error)) => {
                warn!(source = source.id, kind = %source.kind, "source failed: {error}");
                let message = error.clone();
                self.db
                    .call(move |store| {
                        store.write(|tx| {
                            tx.record_source_outcome(source_id, Err(&message), Some(retry_at), now)?;
                            tx.complete_work(id, now)
                        })
                    })
                    .await?;
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
            Ok(found) => {
                run.progress.found.fetch_add(found.len() as u64, std::sync::atomic::Ordering::Relaxed);
                let rediscover = now + options.rediscover_every;
                self.db
                    .call(move |store| {
                        store.write(|tx| {
                            for entry in found.iter() {
                                match entry {
                                    Found::Listed(listed) => {
                                        let Some(record) = listed_record(listed) else {
                                            tx.enqueue(PAGE, &listed.url, 10, now, now)?;
                                            continue;
                                        };
                                        tx.upsert_article(&record, now)?;
                                        // New, or listed before but never fetched: fetch it.
                                        if let Some(key) = &record.key
                                            && tx.article_status(key)? == Some(ArticleStatus::Pending)
                                        {
                                            tx.enqueue(PAGE, &record.url, 10, now, now)?;
                                        }
                                    }
                                    Found::Url(url) => {
                                        if !tx.url_fetched(url)? {
                                            tx.enqueue(PAGE, url.as_str(), 10, now, now)?;
                                        }
                                    }
                                }
                            }
                            tx.record_source_outcome(source_id, Ok(()), Some(rediscover), now)?;
                            tx.complete_work(id, now)
                        })
                    })
                    .await?;
                Ok(Outcome::Done)
            }
        }
    }
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
