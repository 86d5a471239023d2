//! `mpwatch parse FILE... [--url URL] [--json] [--text]`.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use mpwatch_wechat::page::{ArticlePage, parse_page};
use mpwatch_wechat::url::ArticleUrl;
use serde_json::{Value, json};

use crate::cli::ParseArgs;

/// Parses saved pages and prints what was extracted: one page as before, several as
/// JSON Lines (`--json`) or text blocks, going on past files that cannot be read.
pub fn run(args: &ParseArgs) -> Result<()> {
    match args.files.as_slice() {
        [file] => parse_one(file, args),
        files => parse_many(files, args),
    }
}

/// The file's bytes, refusing to read more than `max_mib` MiB.
fn read_input(file: &Path, max_mib: u64) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let limit = max_mib * 1024 * 1024;
    let mut bytes = Vec::new();
    let name = if file.as_os_str() == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut bytes).context("cannot read standard input")?;
        "standard input".to_string()
    } else {
        let opened = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        opened.take(limit + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", file.display()))?;
        file.display().to_string()
    };
    if bytes.len() as u64 > limit {
        bail!("{name} is larger than {max_mib} MiB; not a saved page? (--max-mib raises the limit)");
    }
    Ok(bytes)
}

fn parse_one(file: &Path, args: &ParseArgs) -> Result<()> {
    let bytes = read_input(file, args.max_mib)?;
    let mut page = parse_page(&bytes);
    if let Some(url) = &args.url {
        fill_from_url(&mut page, url)?;
    }
    let value = to_json(&page, args.text);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_text(&value);
    }
    Ok(())
}

/// Every file in turn (one in memory at a time); a file that cannot be read gives an
/// object with `file` and `error` (or an error line) and the rest go on.
fn parse_many(files: &[std::path::PathBuf], args: &ParseArgs) -> Result<()> {
    if args.url.is_some() {
        bail!("--url applies to one page; give one FILE with it");
    }
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("standard input (-) can be read only once");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for (n, file) in files.iter().enumerate() {
        let name = file.display().to_string();
        let value = match read_input(file, args.max_mib) {
            Ok(bytes) => {
                let mut value = to_json(&parse_page(&bytes), args.text);
                if args.json
                    && let Value::Object(map) = &mut value
                {
                    map.insert("file".into(), json!(name));
                }
                value
            }
            Err(error) => {
                failed += 1;
                json!({ "file": name, "error": format!("{error:#}") })
            }
        };
        if args.json {
            serde_json::to_writer(&mut out, &value)?;
            writeln!(out)?;
        } else {
            if n > 0 {
                writeln!(out)?;
            }
            writeln!(out, "==> {name} <==")?;
            write_text(&mut out, &value)?;
        }
    }
    out.flush()?;
    if failed > 0 {
        bail!("{failed} of {} files could not be read", files.len());
    }
    Ok(())
}

/// The page's own values win; the URL fills in what the page lacks (temporary links
/// and short links have no key of their own).
fn fill_from_url(page: &mut ArticlePage, url: &str) -> Result<()> {
    match ArticleUrl::parse(url)? {
        ArticleUrl::Permanent { key, sn } => {
            page.biz.get_or_insert(key.biz);
            page.mid.get_or_insert(key.mid);
            page.idx.get_or_insert(key.idx);
            if page.sn.is_none() {
                page.sn = sn;
            }
        }
        short @ ArticleUrl::Short { .. } => {
            page.short_url.get_or_insert(short.canonical());
        }
        ArticleUrl::Temporary { .. } => {}
    }
    Ok(())
}

/// Exactly the documented keys, `null` when absent.
fn to_json(page: &ArticlePage, with_text: bool) -> Value {
    let published_at = page
        .published_at
        .and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    let article = page.kind.is_article();
    let mut value = json!({
        "kind": page.kind.as_str(),
        "title": page.title,
        "account_name": page.account_name,
        "account_username": page.account_username,
        "account_alias": page.account_alias,
        "biz": page.biz.as_ref().map(|b| b.to_string()),
        "mid": page.mid.map(|m| m.to_string()),
        "idx": page.idx,
        "sn": page.sn,
        "canonical_url": page.canonical_url(),
        "published_at": published_at,
        "author": page.author,
        "digest": page.digest,
        "cover_url": page.cover_url,
        "copyright": page.copyright.map(|c| c.as_str()),
        "source_url": page.source_url,
        "comment_id": page.comment_id,
        "item_show_type": page.item_show_type,
        "text_chars": article.then_some(page.text_chars),
        "image_count": article.then_some(page.image_urls.len()),
        "reason": page.reason,
    });
    if with_text && let Value::Object(map) = &mut value {
        map.insert("content_text".into(), json!(page.content_text));
    }
    value
}

fn print_text(value: &Value) {
    // A closed standard output (`| head`) ends the output, nothing more to say.
    let _ = write_text(&mut std::io::stdout().lock(), value);
}

/// `key: value` lines for the fields present; the body text after a blank line.
fn write_text(out: &mut impl std::io::Write, value: &Value) -> std::io::Result<()> {
    let Value::Object(map) = value else { return Ok(()) };
    for (key, field) in map {
        let shown = match field {
            Value::Null => continue,
            Value::String(text) if key == "content_text" => format!("\n{text}"),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        writeln!(out, "{key}: {shown}")?;
    }
    Ok(())
}
