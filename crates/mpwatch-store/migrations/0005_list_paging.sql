-- mpwatch schema version 5: list paging keeps its position, so a sweep through an
-- account's history that fails part-way resumes where it stopped instead of leaving a
-- hole of older articles behind. docs/schema.md documents every column.

-- Every article this source lists that was published at or before this instant is
-- stored: a sweep reached it (or the end of the list). NULL: no sweep finished yet.
ALTER TABLE account_sources ADD COLUMN list_covered_through INTEGER;
-- An unfinished sweep: the list offset to continue from (NULL: none in progress).
ALTER TABLE account_sources ADD COLUMN list_resume_offset INTEGER;
-- The newest publication time the unfinished sweep saw; becomes list_covered_through
-- when it finishes.
ALTER TABLE account_sources ADD COLUMN list_sweep_newest INTEGER;

-- Sources that finished sweeps before this version stopped at the first article they
-- already knew; take what they stored as covered (`crawl --backfill` re-lists it all).
UPDATE account_sources
   SET list_covered_through = (SELECT max(published_at) FROM articles WHERE articles.account_id = account_sources.account_id)
 WHERE kind = 'profile_ext' AND last_ok_at IS NOT NULL;
