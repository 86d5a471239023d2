//! Reading HTML with a real parser: html5ever, through scraper's tree and selectors.
//!
//! The 3 MB article page is never parsed whole: [`crate::html`] finds the byte range of
//! the body and of the few other elements read, and only those ranges come here, as
//! fragments. Message pages (deleted, blocked, verification, ...) are small and are
//! parsed whole as documents. Every parse goes through [`guard`], which bounds the work
//! html5ever may do on hostile input.
//!
//! Text is made the way a browser's `innerText` makes it, minus styling: a line break at
//! each block element and `<br>`, nothing from `<script>`, `<style>` and other content
//! that is never shown, entities decoded by the parser, then
//! [`normalize_whitespace`](crate::text::normalize_whitespace) like every other text.

mod guard;

use scraper::node::Element;
use scraper::{ElementRef, Html, Node, Selector};

use crate::text::normalize_whitespace;

/// Most bytes of an article body read. The largest body among the fixture pages is
/// 134 KB; html5ever reads hostile markup at 3 to 7 MB/s, so this keeps the worst body
/// to a few hundred milliseconds. The body's HTML is still stored whole.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Most bytes read of a small element (the account name, the repost card, `<meta>` tags).
pub const MAX_ELEMENT_BYTES: usize = 64 * 1024;

/// Largest page parsed whole. WeChat's message pages are 1 to 40 KB; a bigger page
/// without article data is not one of them, and is classified from its bytes alone.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// A CSS selector written in this crate. Only constant selectors are parsed, so a
/// failure is a bug in the constant, caught by the tests of the modules that use them.
pub fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|error| panic!("invalid selector {css:?}: {error}"))
}

/// Text, images and clean HTML of an article body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyText {
    /// Text with one line per block, whitespace collapsed, entities decoded.
    pub text: String,
    /// `data-src` (else `src`) of each `<img>`, http(s) only, in order.
    pub images: Vec<String>,
    /// The body as clean HTML (see [`clean_tag`]): the structure and the images, as
    /// linked, without styles, scripts or any other attribute.
    pub html: String,
}

/// Text, images and clean HTML of an inner-HTML fragment such as `#js_content`, from
/// one parse.
pub fn body(fragment: &str) -> BodyText {
    let html = guard::parse(fragment, MAX_BODY_BYTES, guard::Kind::Fragment);
    let mut writer = TextWriter { clean: Some(String::new()), ..TextWriter::default() };
    if let Some(root) = root_element(&html) {
        writer.write(root);
    }
    BodyText {
        text: normalize_whitespace(&writer.raw),
        images: writer.images,
        html: writer.clean.map(|clean| compact(&clean)).unwrap_or_default(),
    }
}

/// An element of clean HTML, and the one attribute it may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CleanTag {
    /// Written with its children.
    Open(&'static str),
    /// `<a href>` with an http(s) URL.
    Link,
    /// A void element (`br`, `hr`).
    Void(&'static str),
    /// `<img src>` with an http(s) URL (from WeChat's `data-src`).
    Image,
    /// Not written; its children are.
    Skip,
}

/// What clean HTML keeps of an element. This is an allowlist: the structure of text
/// (paragraphs, headings, lists, quotes, tables, emphasis), links and images; every
/// other element is dropped with its attributes and its children kept (other blocks
/// become `div`, so lines stay lines). No attribute but `href` and `src` survives,
/// and those only as http(s) URLs. Hidden elements (scripts, styles) never reach it.
fn clean_tag(element: &Element) -> CleanTag {
    let name = element.name();
    match name {
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "ul" | "ol" | "li" | "pre" | "code"
        | "strong" | "em" | "u" | "s" | "sub" | "sup" | "table" | "thead" | "tbody" | "tr" | "td" | "th" | "figure"
        | "figcaption" => CleanTag::Open(clean_name(name)),
        "b" => CleanTag::Open("strong"),
        "i" => CleanTag::Open("em"),
        "br" => CleanTag::Void("br"),
        "hr" => CleanTag::Void("hr"),
        "img" if image_url(element).is_some() => CleanTag::Image,
        "a" if element.attr("href").is_some_and(is_http_url) => CleanTag::Link,
        // The fragment's own root: the body is its content.
        "html" | "body" => CleanTag::Skip,
        _ if is_block(name) => CleanTag::Open("div"),
        _ => CleanTag::Skip,
    }
}

/// The allowlisted names as `'static` (the element's own name lives in the tree).
fn clean_name(name: &str) -> &'static str {
    const NAMES: [&str; 27] = [
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "ul",
        "ol",
        "li",
        "pre",
        "code",
        "strong",
        "em",
        "u",
        "s",
        "sub",
        "sup",
        "table",
        "thead",
        "tbody",
        "tr",
        "td",
        "th",
        "figure",
        "figcaption",
    ];
    NAMES.iter().find(|known| **known == name).copied().unwrap_or("div")
}

fn is_http_url(url: &str) -> bool {
    let url = url.trim();
    url.find("://").is_some_and(|end| matches!(url[..end].to_ascii_lowercase().as_str(), "http" | "https"))
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\u{a0}' => out.push(' '),
            _ => out.push(c),
        }
    }
}

/// Drops the wrappers WeChat's editors nest by the dozen that hold nothing: empty
/// `div`, `p` and `span`-born elements, until none is left (each pass is linear; the
/// nesting depth bounds the passes, and the guard bounds the depth).
fn compact(html: &str) -> String {
    let mut current = html.to_string();
    loop {
        let mut next = String::with_capacity(current.len());
        let mut rest = current.as_str();
        while let Some(start) = rest.find('<') {
            next.push_str(&rest[..start]);
            rest = &rest[start..];
            let empty = ["<div></div>", "<p></p>", "<strong></strong>", "<em></em>", "<span></span>"]
                .iter()
                .find(|empty| rest.starts_with(**empty));
            match empty {
                Some(empty) => rest = &rest[empty.len()..],
                None => {
                    next.push('<');
                    rest = &rest[1..];
                }
            }
        }
        next.push_str(rest);
        if next.len() == current.len() {
            return next.trim().to_string();
        }
        current = next;
    }
}

/// The text of a small fragment (the inner HTML of `#js_name`, for example).
pub fn fragment_text(fragment: &[u8]) -> String {
    let html = parse_small(fragment);
    root_element(&html).map(element_text).unwrap_or_default()
}

/// The first non-empty text of an element matching `selector` in a small fragment.
pub fn selected_text(fragment: &[u8], selector: &Selector) -> Option<String> {
    let html = parse_small(fragment);
    first_text(&html, selector)
}

/// Attribute `name` of the first element matching `selector` in a small fragment.
pub fn selected_attribute(fragment: &[u8], selector: &Selector, name: &str) -> Option<String> {
    let html = parse_small(fragment);
    html.select(selector).find_map(|element| element.attr(name)).map(str::to_string)
}

/// A page small enough to be parsed whole (see [`MAX_DOCUMENT_BYTES`]).
pub struct SmallPage {
    html: Html,
}

impl SmallPage {
    /// Parses `page`, or `None` when it is larger than [`MAX_DOCUMENT_BYTES`].
    pub fn parse(page: &[u8]) -> Option<Self> {
        (page.len() <= MAX_DOCUMENT_BYTES).then(|| SmallPage {
            html: guard::parse(&String::from_utf8_lossy(page), MAX_DOCUMENT_BYTES, guard::Kind::Document),
        })
    }

    /// The first non-empty text of an element matching `selector`.
    pub fn text(&self, selector: &Selector) -> Option<String> {
        first_text(&self.html, selector)
    }
}

/// `content` of the `<meta>` tags of a page, by `property` or `name`.
#[derive(Debug, Default)]
pub struct MetaTags {
    by_property: Vec<(String, String)>,
    by_name: Vec<(String, String)>,
}

impl MetaTags {
    /// Reads the given `<meta ...>` tags (found in the page by
    /// [`crate::html::meta_tags`]), parsed together as one fragment.
    pub fn read<'a>(tags: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut joined = Vec::new();
        for tag in tags {
            if joined.len() + tag.len() > MAX_ELEMENT_BYTES {
                break;
            }
            joined.extend_from_slice(tag);
        }
        let html = parse_small(&joined);
        let mut meta = MetaTags::default();
        for node in html.tree.nodes() {
            let Some(element) = node.value().as_element().filter(|e| e.name() == "meta") else { continue };
            let Some(content) = element.attr("content") else { continue };
            if let Some(property) = element.attr("property") {
                meta.by_property.push((property.to_string(), content.to_string()));
            }
            if let Some(name) = element.attr("name") {
                meta.by_name.push((name.to_string(), content.to_string()));
            }
        }
        meta
    }

    /// `content` of the first tag with `property="<key>"`, else with `name="<key>"`.
    pub fn get(&self, key: &str) -> Option<&str> {
        [&self.by_property, &self.by_name]
            .into_iter()
            .find_map(|entries| entries.iter().find(|(k, _)| k == key))
            .map(|(_, content)| content.as_str())
    }
}

/// Parses a small fragment: its first [`MAX_ELEMENT_BYTES`] (a character cut there reads
/// as U+FFFD).
fn parse_small(fragment: &[u8]) -> Html {
    let fragment = String::from_utf8_lossy(&fragment[..fragment.len().min(MAX_ELEMENT_BYTES)]);
    guard::parse(&fragment, MAX_ELEMENT_BYTES, guard::Kind::Fragment)
}

/// The `<html>` element html5ever always creates, for documents and fragments alike.
fn root_element(html: &Html) -> Option<ElementRef<'_>> {
    html.tree.root().children().find_map(ElementRef::wrap)
}

fn first_text(html: &Html, selector: &Selector) -> Option<String> {
    html.select(selector).map(element_text).find(|text| !text.is_empty())
}

/// The normalised text of one element and its descendants.
fn element_text(element: ElementRef<'_>) -> String {
    let mut writer = TextWriter::default();
    writer.write(element);
    normalize_whitespace(&writer.raw)
}

/// Elements whose content is never rendered as text (`display: none` in the HTML
/// standard's rendering section, `<noscript>` since html5ever parses as a browser with
/// scripting does, and `<iframe>`, whose content is the fallback of old browsers).
fn is_hidden(element: &Element) -> bool {
    matches!(
        element.name(),
        "datalist"
            | "head"
            | "iframe"
            | "noembed"
            | "noframes"
            | "noscript"
            | "rp"
            | "script"
            | "style"
            | "template"
            | "title"
    ) || element.attr("hidden").is_some()
}

/// Elements displayed as blocks (or list items, table rows) by the HTML standard's
/// rendering section: their text starts and ends a line.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "caption"
            | "center"
            | "dd"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "html"
            | "legend"
            | "li"
            | "listing"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "p"
            | "plaintext"
            | "pre"
            | "search"
            | "section"
            | "summary"
            | "table"
            | "tbody"
            | "tfoot"
            | "thead"
            | "tr"
            | "ul"
            | "xmp"
    )
}

/// Table cells: their texts are separated, but stay on the row's line.
fn is_cell(name: &str) -> bool {
    matches!(name, "td" | "th")
}

/// Elements whose line breaks are kept (`white-space: pre`).
fn is_preformatted(name: &str) -> bool {
    matches!(name, "pre" | "listing" | "plaintext" | "textarea" | "xmp")
}

/// `data-src` (WeChat's lazy loading), else `src`, when it is an http(s) URL.
fn image_url(element: &Element) -> Option<String> {
    let source = element
        .attr("data-src")
        .map(str::trim)
        .filter(|source| !source.is_empty())
        .or_else(|| element.attr("src").map(str::trim))?;
    let scheme_end = source.find("://")?;
    matches!(source[..scheme_end].to_ascii_lowercase().as_str(), "http" | "https").then(|| source.to_string())
}

/// Collects the text (before whitespace normalisation) and the images of a subtree,
/// and, when `clean` is set, its clean HTML.
#[derive(Default)]
struct TextWriter {
    raw: String,
    images: Vec<String>,
    clean: Option<String>,
    /// How many preformatted elements enclose the current node.
    preformatted: usize,
}

impl TextWriter {
    /// Walks the subtree of `root` in document order, without recursion: a tree may be
    /// as deep as the guard allows, and the walk must not depend on the stack.
    fn write(&mut self, root: ElementRef<'_>) {
        let root = *root;
        let mut node = root;
        'walk: loop {
            if self.enter(node.value())
                && let Some(child) = node.first_child()
            {
                node = child;
                continue;
            }
            loop {
                self.leave(node.value());
                if node.id() == root.id() {
                    break 'walk;
                }
                if let Some(sibling) = node.next_sibling() {
                    node = sibling;
                    continue 'walk;
                }
                match node.parent() {
                    Some(parent) => node = parent,
                    None => break 'walk,
                }
            }
        }
    }

    /// Handles the start of a node; returns whether to read its children.
    fn enter(&mut self, node: &Node) -> bool {
        match node {
            Node::Text(text) => {
                if self.preformatted > 0 {
                    self.raw.push_str(text);
                } else {
                    // Source line breaks are layout, not text.
                    self.raw.extend(text.chars().map(|c| if c == '\n' { ' ' } else { c }));
                }
                if let Some(clean) = &mut self.clean {
                    escape_html(text, clean);
                }
                false
            }
            Node::Element(element) => {
                if is_hidden(element) {
                    return false;
                }
                if let Some(clean) = &mut self.clean {
                    match clean_tag(element) {
                        CleanTag::Open(tag) => {
                            clean.push('<');
                            clean.push_str(tag);
                            clean.push('>');
                        }
                        CleanTag::Void(tag) => {
                            clean.push('<');
                            clean.push_str(tag);
                            clean.push('>');
                        }
                        CleanTag::Link => {
                            clean.push_str("<a href=\"");
                            escape_html(element.attr("href").unwrap_or_default().trim(), clean);
                            clean.push_str("\">");
                        }
                        CleanTag::Image => {
                            clean.push_str("<img src=\"");
                            escape_html(&image_url(element).unwrap_or_default(), clean);
                            clean.push_str("\" alt=\"\">");
                        }
                        CleanTag::Skip => {}
                    }
                }
                let name = element.name();
                match name {
                    "br" => self.raw.push('\n'),
                    "img" => self.images.extend(image_url(element)),
                    _ if is_block(name) => self.raw.push('\n'),
                    _ if is_cell(name) => self.raw.push(' '),
                    _ => {}
                }
                if is_preformatted(name) {
                    self.preformatted += 1;
                }
                true
            }
            Node::Document | Node::Fragment => true,
            Node::Doctype(_) | Node::Comment(_) | Node::ProcessingInstruction(_) => false,
        }
    }

    /// Handles the end of a node [`enter`](Self::enter) saw.
    fn leave(&mut self, node: &Node) {
        let Node::Element(element) = node else { return };
        if is_hidden(element) {
            return;
        }
        if let Some(clean) = &mut self.clean {
            match clean_tag(element) {
                CleanTag::Open(tag) => {
                    clean.push_str("</");
                    clean.push_str(tag);
                    clean.push('>');
                }
                CleanTag::Link => clean.push_str("</a>"),
                CleanTag::Void(_) | CleanTag::Image | CleanTag::Skip => {}
            }
        }
        let name = element.name();
        if is_block(name) {
            self.raw.push('\n');
        } else if is_cell(name) {
            self.raw.push(' ');
        }
        if is_preformatted(name) {
            self.preformatted = self.preformatted.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Body text and images of `html`.
    fn check(html: &str, text: &str, images: &[&str]) {
        let read = body(html);
        assert_eq!(read.text, text, "{html}");
        assert_eq!(read.images, images, "{html}");
    }

    #[test]
    fn blocks_and_breaks_make_lines() {
        check("<p>One <b>two</b></p><div>three<div>four</div>five</div>six", "One two\nthree\nfour\nfive\nsix", &[]);
        check("<section><section><p>a</p></section><section><p>b</p></section></section>", "a\nb", &[]);
        check("line one<br>line two<br/><br>line three", "line one\nline two\nline three", &[]);
        check("<ul><li>x</li><li>y <em>z</em></li></ul><h2>T</h2>", "x\ny z\nT", &[]);
        check("<table><tr><td>a</td><td>b</td></tr><tr><th>c</th></tr></table>", "a b\nc", &[]);
        check("in<span>line</span>s<a href=\"#\">tay</a> joined", "inlinestay joined", &[]);
    }

    #[test]
    fn scripts_styles_and_hidden_content_are_dropped() {
        check(
            "<p>a</p><script>var s = \"</div><p>no</p>\";</script><style>p { color: red }</style><p>b</p>",
            "a\nb",
            &[],
        );
        check("<p>a<!-- no --><template><p>no</p></template><noscript>no</noscript></p><div hidden>no</div>", "a", &[]);
        check("<svg><style>.x{}</style><text>drawn</text></svg>", "drawn", &[]);
    }

    #[test]
    fn entities_are_decoded_once() {
        check(
            "<p>five &amp; six&nbsp;seven &lt;b&gt; &amp;amp; &#x4e2d;&#25991;</p>",
            "five & six seven <b> &amp; 中文",
            &[],
        );
        check("<p>AT&T &copy 2025</p>", "AT&T © 2025", &[]);
    }

    #[test]
    fn whitespace_is_normalised() {
        check("<p>  a \n\t b&nbsp;&nbsp; c  </p>\n\n<p>\u{a0}</p>  <p>d</p>", "a b c\nd", &[]);
        check("<pre>let x = 1;\n  let y = 2;</pre>", "let x = 1;\nlet y = 2;", &[]);
    }

    #[test]
    fn images_prefer_data_src_and_need_http() {
        check(
            concat!(
                r#"<img data-src="https://mmbiz.qpic.cn/a.png" src="data:image/gif;base64,R0lG">"#,
                r#"<p><img src="http://example.com/b.jpg?x=1&amp;y=2"></p>"#,
                r#"<img data-src=" " src="HTTPS://example.com/c.jpg">"#,
                r#"<img src="data:image/png;base64,AAAA"><img src="//res.wx.qq.com/d.png"><img>"#,
                r#"<img data-src="javascript:alert(1)" src="https://example.com/placeholder.gif">"#,
                r#"<script><img src="https://example.com/in-script.png"></script>"#,
            ),
            "",
            &["https://mmbiz.qpic.cn/a.png", "http://example.com/b.jpg?x=1&y=2", "HTTPS://example.com/c.jpg"],
        );
    }

    #[test]
    fn clean_html_keeps_structure_links_and_images_and_nothing_else() {
        let read = body(concat!(
            r#"<section style="color:red" onclick="x()"><p class="a">One <b>two</b> <span>three</span></p>"#,
            r#"<p><img data-src="https://mmbiz.qpic.cn/a.png?x=1&amp;y=2" src="data:," onerror="alert(1)"></p>"#,
            r#"<section><section><span></span></section></section>"#,
            r#"<a href="javascript:alert(1)">j</a> <a href="https://mp.weixin.qq.com/s/x" target="_blank">w</a>"#,
            r#"<script>alert(1)</script><style>p{}</style><iframe src="https://evil"></iframe>"#,
            r#"<h2>T &lt;b&gt; "q"</h2><ul><li>x</li></ul><img src="javascript:alert(1)"></section>"#,
        ));
        assert_eq!(
            read.html,
            concat!(
                "<div><p>One <strong>two</strong> three</p>",
                r#"<p><img src="https://mmbiz.qpic.cn/a.png?x=1&amp;y=2" alt=""></p>"#,
                r#"j <a href="https://mp.weixin.qq.com/s/x">w</a>"#,
                "<h2>T &lt;b&gt; &quot;q&quot;</h2><ul><li>x</li></ul></div>",
            )
        );
        for hostile in ["<", "<<<>>>", "<div <p <img ", "<!-- never", "</div></div>", "<table><td>x"] {
            let html = body(hostile).html;
            assert!(!html.contains("<div <") && !html.contains("<!--"), "{hostile}: {html}");
        }
    }

    #[test]
    fn broken_markup_is_read_as_a_browser_would() {
        check("<p>one<p>two<div>three</p>four", "one\ntwo\nthree\nfour", &[]);
        check("<b>bold<i>both</b>italic</i>", "boldbothitalic", &[]);
        check("a < b > c <", "a < b > c <", &[]);
        for hostile in ["<", "<<<>>>", "<div <p <img ", "<!-- never", "</div></div>", "<table><td>x", "\u{0}\u{feff}"] {
            let _ = body(hostile);
        }
    }

    #[test]
    fn element_reading() {
        let title = selector(".weui-msg__title");
        assert_eq!(
            selected_text(b"<div class=\"weui-msg__title-x\">no</div><h2 class='weui-msg__title warn'>\n  Deleted &amp; gone\n</h2>", &title)
                .as_deref(),
            Some("Deleted & gone")
        );
        let share = selector("#js_share_source[data-url]");
        assert_eq!(
            selected_attribute(
                b"<span data-url=\"http://a/?x=1&amp;y=2\" id=\"js_share_source\">x</span>",
                &share,
                "data-url"
            )
            .as_deref(),
            Some("http://a/?x=1&y=2")
        );
        assert_eq!(fragment_text(b"\n   <b>Name</b>  \n"), "Name");
    }

    #[test]
    fn meta_tags_by_property_then_name() {
        let meta = MetaTags::read([
            &br#"<meta name="og:title" content="by name">"#[..],
            br#"<meta property="og:title" content="A &amp; B" />"#,
            br#"<meta name='author' content='Ann'>"#,
            br#"<meta name="description">"#,
        ]);
        assert_eq!(meta.get("og:title"), Some("A & B"));
        assert_eq!(meta.get("author"), Some("Ann"));
        assert_eq!(meta.get("description"), None);
        assert_eq!(meta.get("og:image"), None);
    }

    #[test]
    fn small_pages_are_parsed_whole_and_big_ones_not() {
        let page = "<!DOCTYPE html><html><head><title>t</title></head><body><div class=\"weui-msg__desc\"><p>reason <a>rules</a></p></div></body></html>";
        let parsed = SmallPage::parse(page.as_bytes()).unwrap();
        assert_eq!(parsed.text(&selector(".weui-msg__desc")).as_deref(), Some("reason rules"));
        assert!(SmallPage::parse(&vec![b' '; MAX_DOCUMENT_BYTES + 1]).is_none());
    }
}
