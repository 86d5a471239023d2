"""What a Scrapy user would write to parse a WeChat article page: parsel (lxml)
selectors for the DOM, regular expressions for the `var` block. The peer for
`cargo bench -p mpwatch-wechat --bench parse` (see docs/benchmarks.md).

Run: python3 -m venv .venv && .venv/bin/pip install parsel lxml zstandard
     .venv/bin/python bench/parsel_peer.py crates/mpwatch-wechat/tests/fixtures/pages
"""
import pathlib
import re
import statistics
import sys
import time

import zstandard
from parsel import Selector

MODERN = [
    "article_2025_normal_a", "article_2025_normal_b", "article_2025_with_author",
    "picture_2025_a", "picture_2025_b", "repost_2025_a", "repost_2025_b",
    "text_2025_a", "text_2025_b",
]
VAR = r'var\s+{}\s*=\s*(?:htmlDecode\()?\s*["\']([^"\']*)["\']'
FIELDS = ["msg_title", "nickname", "user_name", "biz", "mid", "idx", "sn", "ct",
          "author", "msg_desc", "msg_cdn_url", "copyright_stat", "item_show_type",
          "comment_id", "msg_source_url"]
PATTERNS = {name: re.compile(VAR.format(name)) for name in FIELDS}


def parse(html: str) -> dict:
    sel = Selector(text=html)
    out = {}
    for name, pattern in PATTERNS.items():
        match = pattern.search(html)
        out[name] = match.group(1) if match else None
    out["og_title"] = sel.css('meta[property="og:title"]::attr(content)').get()
    body = sel.css("#js_content")
    out["text"] = " ".join(t.strip() for t in body.xpath(".//text()").getall() if t.strip())
    out["images"] = body.css("img::attr(data-src)").getall()
    return out


def parse_dom_only(html: str) -> dict:
    """The DOM part alone (no regular expressions over the page)."""
    sel = Selector(text=html)
    body = sel.css("#js_content")
    return {
        "og_title": sel.css('meta[property="og:title"]::attr(content)').get(),
        "text": " ".join(t.strip() for t in body.xpath(".//text()").getall() if t.strip()),
    }


def median_time(function, html: str, runs: int = 20) -> float:
    function(html)  # warm up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function(html)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    root = pathlib.Path(sys.argv[1])
    times = []
    dom_times = []
    for name in MODERN:
        raw = zstandard.ZstdDecompressor().decompress((root / f"{name}.html.zst").read_bytes(), max_output_size=64 << 20)
        html = raw.decode("utf-8", "replace")
        median = median_time(parse, html)
        dom = median_time(parse_dom_only, html)
        times.append(median)
        dom_times.append(dom)
        print(f"{name:<28} {len(raw) / 1e6:5.2f} MB  full {median * 1e3:7.2f} ms  "
              f"({len(raw) / median / 1e6:6.1f} MB/s)  DOM only {dom * 1e3:6.2f} ms")
    print(f"median over modern pages: full {statistics.median(times) * 1e3:.2f} ms, "
          f"DOM only {statistics.median(dom_times) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
