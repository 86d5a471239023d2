"""Parses mpwatch's feeds with feedparser: Atom and RSS without a well-formedness error,
the same items as JSON Feed (which feedparser 6.0 does not read: checked against the
JSON Feed 1.1 required keys here), a counts line in each item's content, filters that
hold."""

import json
import sys
import urllib.request

import feedparser


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def main(base):
    titles = {}
    for extension in ("atom", "rss"):
        url = f"{base}/feeds/all.{extension}?limit=40"
        feed = feedparser.parse(fetch(url))
        if feed.bozo:
            sys.exit(f"{url}: feedparser says it is malformed: {feed.bozo_exception}")
        if len(feed.entries) != 40:
            sys.exit(f"{url}: {len(feed.entries)} entries, expected 40")
        for entry in feed.entries:
            content = entry.get("content", [{}])[0].get("value", "") or entry.get("summary", "")
            if extension != "rss" and "阅读 " not in content:
                sys.exit(f"{url}: entry {entry.get('id')} has no counts line")
            if not entry.get("link", "").startswith("https://mp.weixin.qq.com/"):
                sys.exit(f"{url}: entry link {entry.get('link')}")
        titles[extension] = [entry.title for entry in feed.entries]
        print(f"{url}: {len(feed.entries)} entries, well-formed ({feed.version})")
    url = f"{base}/feeds/all.json?limit=40"
    document = json.loads(fetch(url))
    if document.get("version") != "https://jsonfeed.org/version/1.1" or not document.get("title"):
        sys.exit(f"{url}: not JSON Feed 1.1")
    for item in document["items"]:
        if not item.get("id") or not (item.get("content_html") or item.get("content_text")):
            sys.exit(f"{url}: an item without id or content")
    titles["json"] = [item["title"] for item in document["items"]]
    print(f"{url}: {len(titles['json'])} items, JSON Feed 1.1")
    if not titles["atom"] == titles["rss"] == titles["json"]:
        sys.exit("the three formats list different items")
    # The counts in JSON Feed's extension, and min_reads keeping only what it says.
    document = json.loads(fetch(f"{base}/feeds/all.json?limit=1000&min_reads=5000"))
    reads = [item["_mpwatch"]["counts"]["reads"] for item in document["items"]]
    if not reads or min(reads) < 5000:
        sys.exit(f"min_reads=5000 kept reads {sorted(reads)[:5]}")
    print(f"min_reads=5000: {len(reads)} items, all with at least 5000 reads")


if __name__ == "__main__":
    main(sys.argv[1])
