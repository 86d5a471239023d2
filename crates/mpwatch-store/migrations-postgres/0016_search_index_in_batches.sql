-- mpwatch schema version 16 on PostgreSQL (../migrations/0016_search_index_in_batches.sql):
-- nothing to do. SQLite's full-text index now catches up in batches; PostgreSQL has no
-- `articles_fts` (its trigram indexes on `articles` are kept by the server as rows change).
SELECT 1;
