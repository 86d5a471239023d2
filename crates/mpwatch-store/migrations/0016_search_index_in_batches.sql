-- mpwatch schema version 16: the full-text index `articles_fts` catches up in batches
-- instead of row by row. Version 12's triggers indexed each article inside the write
-- that stored it. SQLite opens a savepoint for each statement of a transaction and
-- FTS5 writes a segment at each, so a crawl wrote a small segment per article and FTS5
-- merged them again and again: the index's pages went through the WAL twice over, and
-- a crawl wrote 3.4x its database (docs/benchmarks.md). Now the triggers only note the
-- article in `articles_fts_pending`, and whoever wrote articles (the crawler, every few
-- thousand pages and at the end of a run; `reparse`; `db copy`; maintenance) indexes
-- what is noted, one statement per batch of a few thousand articles.
--
-- The invariant: an article is either in the index, with the words of its current
-- text, or in `articles_fts_pending`, never both. A change of an indexed article's text
-- takes its old words out of the index at once (only the row's old values can do
-- that, and only inside the trigger) and notes it for the next batch.
CREATE TABLE articles_fts_pending (
    article_id INTEGER PRIMARY KEY    -- articles.id; no foreign key: the delete trigger cleans up
);

DROP TRIGGER articles_fts_insert;
DROP TRIGGER articles_fts_update;
DROP TRIGGER articles_fts_delete;

CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT OR IGNORE INTO articles_fts_pending (article_id) VALUES (new.id);
END;

-- (`id` too: mpwatch never changes one, a user's tool might.)
CREATE TRIGGER articles_fts_update AFTER UPDATE OF id, title, digest, content_text ON articles
WHEN old.id IS NOT new.id OR old.title IS NOT new.title OR old.digest IS NOT new.digest
    OR old.content_text IS NOT new.content_text
BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, digest, content_text)
        SELECT 'delete', old.id, old.title, old.digest, old.content_text
        WHERE NOT EXISTS (SELECT 1 FROM articles_fts_pending WHERE article_id = old.id);
    INSERT OR IGNORE INTO articles_fts_pending (article_id) VALUES (new.id);
END;

CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, digest, content_text)
        SELECT 'delete', old.id, old.title, old.digest, old.content_text
        WHERE NOT EXISTS (SELECT 1 FROM articles_fts_pending WHERE article_id = old.id);
    DELETE FROM articles_fts_pending WHERE article_id = old.id;
END;

-- FTS5's merge settings for batches: a batch's words stay in memory until it commits
-- (`hashsize`, 16 MB instead of 1 MB) so that a batch writes one segment, not five;
-- and segments merge once 16 share a level (`automerge`, 4 by default) and at the
-- latest at 64 (`crisismerge`), so that a crawl's batches are written once instead of
-- merged again every fourth batch. A search reads at most that many segments per level:
-- still milliseconds (docs/benchmarks.md).
INSERT INTO articles_fts (articles_fts, rank) VALUES ('hashsize', 16777216);
INSERT INTO articles_fts (articles_fts, rank) VALUES ('automerge', 16);
INSERT INTO articles_fts (articles_fts, rank) VALUES ('crisismerge', 64);
