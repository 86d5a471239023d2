-- mpwatch schema version 13: an article that never got a count at the age a period
-- reads (deleted or blocked first, or never counted) no longer keeps its period
-- provisional forever. Once the snapshot ladder has ended for it, its value is missing
-- for good: it enters with its last earlier counts, is counted in
-- `index_periods.missing_articles`, and the period is final. The partial index finds
-- the provisional periods whose articles may have settled since.
ALTER TABLE index_periods ADD COLUMN missing_articles INTEGER NOT NULL DEFAULT 0;
CREATE INDEX index_periods_provisional ON index_periods (period_end) WHERE provisional = 1;

DROP VIEW v_rankings;
CREATE VIEW v_rankings AS
SELECT v.period_kind,
       p.first_day,
       v.index_name,
       v.rank,
       v.rank_change,
       coalesce(a.nickname, a.alias, a.biz) AS account_name,
       v.account_id,
       p.n, p.reads, p.reads / nullif(p.n, 0) AS reads_per_article, p.reads_max, p.reads_headline,
       p.wows, p.likes, p.shares, p.comments, p.engagement_rate, p.read_rate,
       v.value,
       p.late_articles,
       p.provisional,
       v.period_start,
       p.period_end,
       p.missing_articles                                -- version 13
FROM index_values v
JOIN index_periods p USING (account_id, period_kind, period_start)
JOIN accounts a ON a.id = v.account_id;
