-- mpwatch schema version 12: full-text search over titles, digests and bodies that works
-- for Chinese. FTS5's trigram tokenizer indexes every run of three characters, so any
-- query of three or more characters matches inside words (Chinese has no spaces to split
-- words at). Shorter queries (most two-character Chinese words) cannot use the index:
-- `LIKE '%科研%'` on the same table finds them by scanning. An external-content table:
-- the text lives once, in `articles`; triggers keep the index in step.
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, digest, content_text,
    content = 'articles', content_rowid = 'id',
    tokenize = 'trigram'
);

CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, digest, content_text)
    VALUES (new.id, new.title, new.digest, new.content_text);
END;

CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, digest, content_text)
    VALUES ('delete', old.id, old.title, old.digest, old.content_text);
END;

-- Only a real change of the text touches the index (a page fetched again unchanged,
-- or a status change, writes nothing here).
CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, digest, content_text ON articles
WHEN old.title IS NOT new.title OR old.digest IS NOT new.digest OR old.content_text IS NOT new.content_text
BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, digest, content_text)
    VALUES ('delete', old.id, old.title, old.digest, old.content_text);
    INSERT INTO articles_fts (rowid, title, digest, content_text)
    VALUES (new.id, new.title, new.digest, new.content_text);
END;

INSERT INTO articles_fts (articles_fts) VALUES ('rebuild');
