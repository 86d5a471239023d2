//! `mpwatch export markdown`: one Markdown file per article, YAML front matter and the
//! body converted with `htmd`.

use super::*;

/// What Markdown files need of an article and (joined by [`LATEST_SNAPSHOT_JOIN`]) its
/// latest snapshot.
const MARKDOWN_SELECT: &str = "SELECT a.id, a.account_id, coalesce(acc.nickname, acc.alias, a.biz), a.url, a.title,
        a.published_at, a.kind, a.status, a.content_text, a.digest,
        m.reads, m.reads_capped, m.likes, m.wows, m.shares, m.comments, m.observed_at, b.html
 FROM articles a
 LEFT JOIN accounts acc ON acc.id = a.account_id
 LEFT JOIN article_bodies b ON b.article_id = a.id";

/// The YAML front matter of an article's Markdown file.
#[derive(Debug, Default)]
struct FrontMatter {
    /// The article's title.
    title: Option<String>,
    /// The account's name (or alias, or biz).
    account: Option<String>,
    /// The account's row id.
    account_id: Option<i64>,
    /// The canonical article URL.
    url: String,
    /// Publication time, RFC 3339 in the configured zone.
    published: Option<String>,
    /// article, picture, text, video or audio.
    kind: String,
    /// ok, deleted, blocked, unavailable or pending.
    status: String,
    /// Reads at the latest snapshot (100001 with `reads_capped`: 10万+).
    reads: Option<i64>,
    /// The reads were shown as 10万+.
    reads_capped: Option<bool>,
    /// 赞.
    likes: Option<i64>,
    /// 在看.
    wows: Option<i64>,
    /// Shares.
    shares: Option<i64>,
    /// Comments.
    comments: Option<i64>,
    /// When the latest snapshot was taken, RFC 3339 in the configured zone.
    observed_at: Option<String>,
}

/// `mpwatch export markdown`.
pub(super) fn export_markdown(store: &Store, args: &ExportMarkdownArgs, tz: &TimeZone) -> Result<()> {
    let conditions = article_conditions(store, &args.filter, tz, TimeColumn::Published)?;
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create directory {}", args.dir.display()))?;
    let sql = format!("{MARKDOWN_SELECT} {LATEST_SNAPSHOT_JOIN}{} ORDER BY a.published_at, a.id", conditions.sql);
    let mut statement = store.connection().prepare(&sql).context("preparing the export query")?;
    let mut rows = statement
        .query(mpwatch_store::sql::params_from_iter(conditions.params.iter()))
        .context("running the export query")?;
    let mut files = 0u64;
    while let Some(row) = rows.next().context("reading the next article")? {
        let article_id: i64 = row.get(0)?;
        let account_id: Option<i64> = row.get(1)?;
        let published = row.get::<_, Option<i64>>(5)?.and_then(|seconds| zoned(seconds, tz));
        let observed = row.get::<_, Option<i64>>(16)?.and_then(|seconds| zoned(seconds, tz));
        let front = FrontMatter {
            title: row.get(4)?,
            account: row.get(2)?,
            account_id,
            url: row.get(3)?,
            published: published.as_ref().map(rfc3339).transpose()?,
            kind: row.get(6)?,
            status: row.get(7)?,
            reads: row.get(10)?,
            reads_capped: row.get(11)?,
            likes: row.get(12)?,
            wows: row.get(13)?,
            shares: row.get(14)?,
            comments: row.get(15)?,
            observed_at: observed.as_ref().map(rfc3339).transpose()?,
        };
        let body: Option<String> = row.get(8)?;
        let digest: Option<String> = row.get(9)?;
        let body_html: Option<String> = row.get(17)?;
        let document = markdown_document(&front, body_html.as_deref(), body.as_deref(), digest.as_deref())
            .with_context(|| format!("article {article_id}"))?;
        let path = args.dir.join(markdown_file_name(published.as_ref(), account_id, article_id)?);
        // No fsync per file: thousands of them would take long, and a rename without
        // one still never shows a half-written file to a reader.
        write_atomically(&path, false, |out| {
            out.write_all(document.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
        })?;
        files += 1;
    }
    eprintln!("wrote {files} files to {}", args.dir.display());
    Ok(())
}

/// `YYYY-MM-DD-ACCOUNT-ARTICLE.md`: stable across runs (so a rerun overwrites), sorted
/// by date in a listing, and free of title text that could hold path characters.
fn markdown_file_name(published: Option<&ZonedDateTime>, account_id: Option<i64>, article_id: i64) -> Result<String> {
    let day = match published {
        Some(zoned) => jiff::fmt::strtime::format("%Y-%m-%d", zoned).context("formatting a date")?,
        None => "undated".to_string(),
    };
    let account = account_id.map_or_else(|| "none".to_string(), |id| id.to_string());
    Ok(format!("{day}-{account}-{article_id}.md"))
}

/// An article as a Markdown document: YAML front matter, then the body (the stored
/// clean HTML with its images, else the stored text, else the digest) converted to
/// Markdown; text that Markdown would read as markup (`*`, `#`, `<`...) stays literal.
fn markdown_document(
    front: &FrontMatter,
    body_html: Option<&str>,
    body_text: Option<&str>,
    digest: Option<&str>,
) -> Result<String> {
    let mut document = String::from("---\n");
    yaml_text(&mut document, "title", front.title.as_deref())?;
    yaml_text(&mut document, "account", front.account.as_deref())?;
    yaml_number(&mut document, "account_id", front.account_id)?;
    yaml_text(&mut document, "url", Some(front.url.as_str()))?;
    yaml_text(&mut document, "published", front.published.as_deref())?;
    yaml_text(&mut document, "kind", Some(front.kind.as_str()))?;
    yaml_text(&mut document, "status", Some(front.status.as_str()))?;
    yaml_number(&mut document, "reads", front.reads)?;
    match front.reads_capped {
        Some(capped) => writeln!(document, "reads_capped: {capped}")?,
        None => document.push_str("reads_capped: null\n"),
    }
    yaml_number(&mut document, "likes", front.likes)?;
    yaml_number(&mut document, "wows", front.wows)?;
    yaml_number(&mut document, "shares", front.shares)?;
    yaml_number(&mut document, "comments", front.comments)?;
    yaml_text(&mut document, "observed_at", front.observed_at.as_deref())?;
    document.push_str("---\n");
    let html = body_html
        .filter(|html| !html.trim().is_empty())
        .map(str::to_string)
        .or_else(|| body_text.and_then(paragraphs_html))
        .or_else(|| digest.and_then(paragraphs_html));
    if let Some(html) = html {
        let markdown = htmd::convert(&html).context("converting the body to Markdown")?;
        let markdown = markdown.trim();
        if !markdown.is_empty() {
            document.push('\n');
            document.push_str(markdown);
            document.push('\n');
        }
    }
    Ok(document)
}

/// `key: "text"` or `key: null`.
fn yaml_text(document: &mut String, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(text) => writeln!(document, "{key}: {}", yaml_string(text)?)?,
        None => writeln!(document, "{key}: null")?,
    }
    Ok(())
}

/// `key: 123` or `key: null`.
fn yaml_number(document: &mut String, key: &str, value: Option<i64>) -> Result<()> {
    match value {
        Some(number) => writeln!(document, "{key}: {number}")?,
        None => writeln!(document, "{key}: null")?,
    }
    Ok(())
}

/// A YAML double-quoted string: a JSON string is one (titles hold `:`, `#`, quotes and
/// the odd newline, which plain YAML scalars would misread). JSON leaves DEL, the C1
/// controls and a few other characters raw, which YAML does not allow in a document;
/// those are escaped too.
fn yaml_string(text: &str) -> Result<String> {
    let json = serde_json::to_string(text).context("encoding a YAML string")?;
    if json.chars().all(yaml_printable) {
        return Ok(json);
    }
    let mut quoted = String::with_capacity(json.len() + 12);
    for c in json.chars() {
        if yaml_printable(c) {
            quoted.push(c);
        } else {
            // Every character outside YAML's printable set is below U+10000.
            write!(quoted, "\\u{:04X}", u32::from(c))?;
        }
    }
    Ok(quoted)
}

/// YAML 1.2's printable characters (c-printable), less the byte order mark.
fn yaml_printable(c: char) -> bool {
    let printable = matches!(
        c,
        '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..
    );
    printable && c != '\u{FEFF}'
}

/// The stored plain text (paragraphs separated by newlines) as HTML paragraphs, for the
/// HTML-to-Markdown converter; None when there is no text.
fn paragraphs_html(text: &str) -> Option<String> {
    let mut html = String::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        html.push_str("<p>");
        html.push_str(&html_escape(line));
        html.push_str("</p>");
    }
    (!html.is_empty()).then_some(html)
}

/// Text escaped for HTML element content and attribute values: `&`, `<`, `>`, `"`.
fn html_escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"']) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            _ => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").expect("bundled time zone")
    }

    #[test]
    fn html_escape_escapes_the_four_characters_and_borrows_plain_text() {
        assert_eq!(html_escape(r#"a & b < c > d "e""#), "a &amp; b &lt; c &gt; d &quot;e&quot;");
        assert!(matches!(html_escape("环球科学 plain"), Cow::Borrowed("环球科学 plain")));
        assert_eq!(html_escape("&amp;"), "&amp;amp;");
    }

    fn front() -> FrontMatter {
        FrontMatter {
            title: Some("He said \"hi\": #1\nbye".into()),
            account: Some("环球科学".into()),
            account_id: Some(3),
            url: "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=1&idx=1&sn=x".into(),
            published: Some("2025-03-01T08:00:00+08:00".into()),
            kind: "article".into(),
            status: "ok".into(),
            reads: Some(100001),
            reads_capped: Some(true),
            likes: Some(12),
            wows: Some(3),
            shares: None,
            comments: Some(0),
            observed_at: Some("2025-03-02T08:00:00+08:00".into()),
        }
    }

    #[test]
    fn a_stored_html_body_keeps_its_images_and_emphasis() -> Result<()> {
        let html = r#"<p>One <strong>two</strong></p><p><img src="https://mmbiz.qpic.cn/a.png" alt=""></p>"#;
        let document = markdown_document(&front(), Some(html), Some("text"), None)?;
        assert!(document.contains("One **two**"), "{document}");
        assert!(document.contains("![](https://mmbiz.qpic.cn/a.png)"), "{document}");
        Ok(())
    }

    #[test]
    fn markdown_document_has_quoted_front_matter_and_the_body() -> Result<()> {
        let document = markdown_document(
            &front(),
            None,
            Some("First paragraph\n\n   Second & <b>bold</b> *not emphasis*  \n"),
            Some("the digest"),
        )?;
        let (front_matter, body) = document
            .strip_prefix("---\n")
            .and_then(|rest| rest.split_once("---\n"))
            .expect("front matter between --- lines");
        assert_eq!(
            front_matter,
            "title: \"He said \\\"hi\\\": #1\\nbye\"\n\
             account: \"环球科学\"\n\
             account_id: 3\n\
             url: \"https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=1&idx=1&sn=x\"\n\
             published: \"2025-03-01T08:00:00+08:00\"\n\
             kind: \"article\"\n\
             status: \"ok\"\n\
             reads: 100001\n\
             reads_capped: true\n\
             likes: 12\n\
             wows: 3\n\
             shares: null\n\
             comments: 0\n\
             observed_at: \"2025-03-02T08:00:00+08:00\"\n"
        );
        assert!(body.starts_with("\nFirst paragraph\n\nSecond &"), "{body:?}");
        assert!(body.ends_with('\n'));
        // The stored text is text: tags in it must not become HTML in the Markdown, nor
        // asterisks emphasis.
        assert!(body.contains("bold") && !body.contains("<b>bold</b>"), "{body:?}");
        assert!(body.contains(r"\*not emphasis\*"), "{body:?}");
        assert!(!body.contains("the digest"));
        Ok(())
    }

    #[test]
    fn markdown_document_falls_back_to_the_digest_then_to_no_body() -> Result<()> {
        let document = markdown_document(&front(), None, Some(" \n\n"), Some("Only the digest"))?;
        assert!(document.ends_with("---\n\nOnly the digest\n"), "{document:?}");
        let document = markdown_document(&FrontMatter::default(), None, None, None)?;
        assert!(document.starts_with("---\ntitle: null\n"), "{document:?}");
        assert!(document.ends_with("observed_at: null\n---\n"), "{document:?}");
        Ok(())
    }

    #[test]
    fn yaml_strings_escape_what_yaml_cannot_hold_raw() -> Result<()> {
        assert_eq!(yaml_string("a: b # c")?, "\"a: b # c\"");
        assert_eq!(yaml_string("tab\there\u{1}")?, "\"tab\\there\\u0001\"");
        assert_eq!(
            yaml_string("del\u{7f} nel\u{85} c1\u{9b} bom\u{feff}")?,
            "\"del\\u007F nel\u{85} c1\\u009B bom\\uFEFF\""
        );
        Ok(())
    }

    #[test]
    fn markdown_file_names_are_stable_and_safe() -> Result<()> {
        let zoned = zoned(1_700_000_000, &shanghai());
        assert_eq!(markdown_file_name(zoned.as_ref(), Some(3), 42)?, "2023-11-15-3-42.md");
        assert_eq!(markdown_file_name(None, None, 7)?, "undated-none-7.md");
        Ok(())
    }
}
