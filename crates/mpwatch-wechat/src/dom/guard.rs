//! html5ever with bounds, so that reading a hostile page stays fast.
//!
//! html5ever follows the HTML standard literally, and some of its steps are not linear:
//!
//! - Most start tags scan the stack of open elements (`in_scope`), so a run of unclosed
//!   `<div>` or `<ul><li>` costs time quadratic in its depth (servo/html5ever#788: 40 KB
//!   of nested `<div>` took 0.26 s here, 160 KB 3.8 s). Browsers stop nesting at 512.
//! - Each attribute of a tag is compared with every earlier one to drop duplicates, so a
//!   single tag with many distinct attribute names is quadratic too (a 100 KB tag: 0.16 s,
//!   437 KB: 2.1 s).
//! - Markup made only of tags or of errors runs at 3 to 7 MB/s (1 MB of lone `<`: 0.15 to
//!   0.3 s, html5ever formatting an error message for each).
//!
//! [`parse`] therefore gives html5ever at most a given number of bytes, in pieces of
//! [`PIECE_BYTES`], through a sink that watches the tree it builds. It stops feeding when
//! an element would sit deeper than [`MAX_DEPTH`] or when [`MAX_QUIET_PIECES`] pieces in a
//! row changed nothing in the tree (html5ever is inside one tag or comment that long). The
//! tree read so far is kept: for a real page the limits are far out of reach (fixture
//! bodies: depth 20 at most, longest tag 1.7 KB).

use std::borrow::Cow;
use std::cell::Cell;

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, ParseOpts, QualName, driver, local_name, ns};
use scraper::{Html, HtmlTreeSink};

/// Deepest element kept, counted from the root of the tree. Real WeChat bodies nest about
/// 20 levels; at 128, 1 MB of list items that each rescan the stack parses in about
/// 0.4 s, against 1.4 s at the browsers' 512.
pub const MAX_DEPTH: usize = 128;

/// Bytes handed to html5ever at a time: the granularity of the checks between pieces.
pub const PIECE_BYTES: usize = 2 * 1024;

/// Pieces in a row that may leave the tree unchanged: html5ever builds nothing while it
/// reads one token, so this bounds a tag (and the quadratic cost of its attributes) to
/// about 8 KB, four times the longest tag of the fixture pages.
pub const MAX_QUIET_PIECES: usize = 3;

/// What to build.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A whole document (`<html>` with `<head>` and `<body>`).
    Document,
    /// Content of a `<body>`, such as the inner HTML of `#js_content`.
    Fragment,
}

/// Parses at most `max_bytes` of `html` (cut at a character boundary) into a tree,
/// stopping early at the limits described in the module documentation.
pub fn parse(html: &str, max_bytes: usize, kind: Kind) -> Html {
    let sink = GuardedSink::new(match kind {
        Kind::Document => Html::new_document(),
        Kind::Fragment => Html::new_fragment(),
    });
    let mut parser = match kind {
        Kind::Document => driver::parse_document(sink, ParseOpts::default()),
        Kind::Fragment => driver::parse_fragment(
            sink,
            ParseOpts::default(),
            QualName::new(None, ns!(html), local_name!("body")),
            Vec::new(),
            false,
        ),
    };
    let mut quiet_pieces = 0;
    for piece in pieces(prefix(html, max_bytes), PIECE_BYTES) {
        let changes_before = parser.tokenizer.sink.sink.changes.get();
        parser.process(StrTendril::from_slice(piece));
        let sink = &parser.tokenizer.sink.sink;
        if sink.too_deep.get() {
            break;
        }
        quiet_pieces = if sink.changes.get() == changes_before { quiet_pieces + 1 } else { 0 };
        if quiet_pieces >= MAX_QUIET_PIECES {
            break;
        }
    }
    parser.finish()
}

/// The first `max_bytes` of `text`, shortened so that no character is cut.
fn prefix(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` in pieces of about `size` bytes, each ending at a character boundary.
fn pieces(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (piece, after) = rest.split_at(end);
        rest = after;
        Some(piece)
    })
}

/// scraper's sink, plus what the guard watches: how often the tree changed and whether
/// an element was put deeper than [`MAX_DEPTH`].
struct GuardedSink {
    inner: HtmlTreeSink,
    changes: Cell<u64>,
    too_deep: Cell<bool>,
}

type Handle = <HtmlTreeSink as TreeSink>::Handle;

impl GuardedSink {
    fn new(html: Html) -> Self {
        GuardedSink { inner: HtmlTreeSink::new(html), changes: Cell::new(0), too_deep: Cell::new(false) }
    }

    fn changed(&self) {
        self.changes.set(self.changes.get() + 1);
    }

    /// Records that something was put under `parent`. The depth is walked on the tree
    /// itself each time rather than cached: html5ever moves subtrees (the adoption
    /// agency), which would make a cached depth wrong. The walk stops at the limit, so
    /// it costs at most [`MAX_DEPTH`] steps.
    fn inserted_under(&self, parent: &Handle) {
        self.changed();
        let html = self.inner.0.borrow();
        let depth = html.tree.get(*parent).map_or(0, |node| node.ancestors().take(MAX_DEPTH).count() + 1);
        if depth >= MAX_DEPTH {
            self.too_deep.set(true);
        }
    }

    /// Records that something was put beside `sibling`.
    fn inserted_beside(&self, sibling: &Handle) {
        let parent = self.inner.0.borrow().tree.get(*sibling).and_then(|node| node.parent()).map(|parent| parent.id());
        match parent {
            Some(parent) => self.inserted_under(&parent),
            None => self.changed(),
        }
    }
}

/// Every method hands over to scraper's sink; the ones that change the tree also tell
/// the guard. Parse errors do not count as changes: html5ever reports them in the middle
/// of a tag, and a tag must not look like progress.
impl TreeSink for GuardedSink {
    type Handle = Handle;
    type Output = Html;
    type ElemName<'a> = <HtmlTreeSink as TreeSink>::ElemName<'a>;

    fn finish(self) -> Html {
        self.inner.finish()
    }

    fn parse_error(&self, msg: Cow<'static, str>) {
        self.inner.parse_error(msg);
    }

    fn get_document(&self) -> Handle {
        self.inner.get_document()
    }

    fn elem_name<'a>(&'a self, target: &'a Handle) -> Self::ElemName<'a> {
        self.inner.elem_name(target)
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> Handle {
        self.changed();
        self.inner.create_element(name, attrs, flags)
    }

    fn create_comment(&self, text: StrTendril) -> Handle {
        self.changed();
        self.inner.create_comment(text)
    }

    fn create_pi(&self, target: StrTendril, data: StrTendril) -> Handle {
        self.changed();
        self.inner.create_pi(target, data)
    }

    fn append(&self, parent: &Handle, child: NodeOrText<Handle>) {
        self.inner.append(parent, child);
        self.inserted_under(parent);
    }

    fn append_based_on_parent_node(&self, element: &Handle, prev_element: &Handle, child: NodeOrText<Handle>) {
        // html5ever's rule: beside `element` when it has a parent, else under `prev_element`.
        let has_parent = self.inner.0.borrow().tree.get(*element).is_some_and(|node| node.parent().is_some());
        self.inner.append_based_on_parent_node(element, prev_element, child);
        if has_parent { self.inserted_beside(element) } else { self.inserted_under(prev_element) }
    }

    fn append_doctype_to_document(&self, name: StrTendril, public_id: StrTendril, system_id: StrTendril) {
        self.changed();
        self.inner.append_doctype_to_document(name, public_id, system_id);
    }

    fn mark_script_already_started(&self, node: &Handle) {
        self.inner.mark_script_already_started(node);
    }

    fn pop(&self, node: &Handle) {
        self.changed();
        self.inner.pop(node);
    }

    fn get_template_contents(&self, target: &Handle) -> Handle {
        self.inner.get_template_contents(target)
    }

    fn same_node(&self, x: &Handle, y: &Handle) -> bool {
        self.inner.same_node(x, y)
    }

    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode);
    }

    fn append_before_sibling(&self, sibling: &Handle, new_node: NodeOrText<Handle>) {
        self.inner.append_before_sibling(sibling, new_node);
        self.inserted_beside(sibling);
    }

    fn add_attrs_if_missing(&self, target: &Handle, attrs: Vec<Attribute>) {
        self.changed();
        self.inner.add_attrs_if_missing(target, attrs);
    }

    fn associate_with_form(&self, target: &Handle, form: &Handle, nodes: (&Handle, Option<&Handle>)) {
        self.inner.associate_with_form(target, form, nodes);
    }

    fn remove_from_parent(&self, target: &Handle) {
        self.changed();
        self.inner.remove_from_parent(target);
    }

    fn reparent_children(&self, node: &Handle, new_parent: &Handle) {
        self.inner.reparent_children(node, new_parent);
        self.inserted_under(new_parent);
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &Handle) -> bool {
        self.inner.is_mathml_annotation_xml_integration_point(handle)
    }

    fn set_current_line(&self, line_number: u64) {
        self.inner.set_current_line(line_number);
    }

    fn allow_declarative_shadow_roots(&self, intended_parent: &Handle) -> bool {
        self.inner.allow_declarative_shadow_roots(intended_parent)
    }

    fn attach_declarative_shadow(&self, location: &Handle, template: &Handle, attrs: &[Attribute]) -> bool {
        self.inner.attach_declarative_shadow(location, template, attrs)
    }

    fn maybe_clone_an_option_into_selectedcontent(&self, option: &Handle) {
        self.inner.maybe_clone_an_option_into_selectedcontent(option);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Elements in the tree (not counting the detached context element of a fragment).
    fn element_count(html: &Html) -> usize {
        html.tree.nodes().filter(|node| node.value().is_element() && node.parent().is_some()).count()
    }

    fn max_depth(html: &Html) -> usize {
        html.tree.nodes().map(|node| node.ancestors().count()).max().unwrap_or(0)
    }

    #[test]
    fn prefix_never_cuts_a_character() {
        let text = "ab中文";
        assert_eq!(prefix(text, 3), "ab");
        assert_eq!(prefix(text, 4), "ab");
        assert_eq!(prefix(text, 5), "ab中");
        assert_eq!(prefix(text, 100), text);
    }

    #[test]
    fn pieces_end_at_character_boundaries() {
        let text = "中".repeat(1000);
        let joined: String = pieces(&text, 100).inspect(|piece| assert!(piece.len() <= 102)).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn deep_nesting_stops_at_the_limit() {
        let html = parse(&"<div>".repeat(100_000), usize::MAX, Kind::Fragment);
        let depth = max_depth(&html);
        // Checked between pieces: the last piece may go a little deeper.
        assert!((MAX_DEPTH..MAX_DEPTH + PIECE_BYTES / 5 + 2).contains(&depth), "{depth}");
    }

    #[test]
    fn a_tag_longer_than_the_quiet_limit_stops_the_parse() {
        let names: String = (0..20_000).map(|i| format!(" a{i}")).collect();
        let html = parse(&format!("<p>kept</p><div{names}><p>lost</p>"), usize::MAX, Kind::Fragment);
        assert_eq!(element_count(&html), 2, "html and the first p");
    }

    #[test]
    fn ordinary_markup_is_parsed_whole() {
        let body: String =
            (0..2_000).map(|i| format!("<section><p style=\"color: red\">line {i}</p></section>")).collect();
        let html = parse(&body, usize::MAX, Kind::Fragment);
        assert_eq!(element_count(&html), 1 + 2 * 2_000);
        let long_text = "字".repeat(100_000);
        let html = parse(&format!("<p>{long_text}</p><p>after</p>"), usize::MAX, Kind::Fragment);
        assert_eq!(element_count(&html), 3);
    }

    #[test]
    fn input_beyond_the_byte_limit_is_not_read() {
        let html = parse("<p>one</p><p>two</p>", 10, Kind::Fragment);
        assert_eq!(element_count(&html), 2);
    }
}
