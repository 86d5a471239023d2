-- mpwatch schema version 14: the body of each fetched article as clean HTML, for feeds,
-- the dashboard and Markdown exports: paragraphs, headings, lists, quotes, tables,
-- emphasis, links and the images as WeChat links them (`<img src>` from the page's
-- `data-src`); no style, script or other attribute. `articles.content_text` stays the
-- text of record (search, word counts). A table of its own keeps `articles` rows narrow
-- for the scans that never read bodies. Bodies of articles fetched before this version
-- appear when they are fetched again (their day-old re-check, or `mpwatch reparse` of
-- archived pages).
CREATE TABLE article_bodies (
    article_id  INTEGER PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    html        TEXT NOT NULL
);
