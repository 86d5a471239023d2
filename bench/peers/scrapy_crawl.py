"""The Scrapy peer of `mpwatch crawl` (issue 12): the same job done the way a competent
Scrapy user would write it, so that the two can be timed against each other.

On a fresh database `mpwatch crawl` does, for every tracked account:

1. pages back through `/mp/profile_ext?action=getmsg` (client credentials, `count=10`,
   following `next_offset` while `can_msg_continue`) to the end of the list;
2. fetches every listed article page anonymously (deleted and blocked ones too: the page
   says what became of them) and parses it;
3. for every live article, POSTs `/mp/getappmsgext` (credentials in the query, cookie,
   the form mpwatch sends) and stores one count snapshot.

This spider does the same requests (one list request per page, one page request per
article, one count request per live article) and stores accounts, articles and one
snapshot each through a SQLite item pipeline (batched `executemany` in transactions).

Run (the simulator started with `mpwatch sim --write-config DIR`):

    python bench/peers/scrapy_crawl.py --config DIR/mpwatch.toml --out peer.db

The config gives `wechat.base_url`, the secrets file (the first `[[client]]` set is
used) and the database whose enabled `profile_ext` sources are the accounts to crawl
(opened read-only; `--accounts-db` names another file, `--biz` gives them directly).

Anti-crawl answers (`ret -6`, verification pages) are retried at once through Scrapy's
retry helper and an expired credential (`ret -3`) stops the crawl; mpwatch would cool
down or switch credentials instead. The benchmark scenario (sim-scenario.toml) has no
quotas and a long credential lifetime, so neither happens there.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sqlite3
import sys
import time
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import CloseSpider

# What mpwatch sends on credentialed requests (crates/mpwatch-crawl/src/fetch.rs).
MICROMESSENGER_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/120.0.6099.193 Mobile Safari/537.36 MicroMessenger/8.0.50.2701(0x28003253) "
    "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
CANONICAL = "https://mp.weixin.qq.com/s?__biz={biz}&mid={mid}&idx={idx}&sn={sn}"
LIST_PAGE = 10  # profile_ext `count` (its maximum), as mpwatch asks
READS_CAP = 100001  # "10万+"

# `var name = "value"` / `var name = htmlDecode("value")` / `var name = 'value'.html(false)`:
# one pass over the page for every wanted name (the page's bulk is script full of
# `var biz = opt.biz` decoys, which the quote requirement skips).
VAR_RE = re.compile(
    r"""var\s+(biz|sn|mid|idx|ct|create_time|nickname|user_name|msg_title|author|msg_desc|"""
    r"""comment_id|item_show_type|copyright_stat|_copyright_stat|msg_link)\s*=\s*"""
    r"""(?:htmlDecode\()?\s*(["'])(.*?)\2"""
)
# `window.cgiDataNew = {...}` of picture and text messages: `key: JsDecode('v')` or `key: 'v' * 1`.
CGI_RE = re.compile(r"""(\w+): (?:JsDecode\('((?:[^'\\]|\\.)*)'\)|'([^']*)' \* 1)""")
JS_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)")
JS_SIMPLE = {"n": "\n", "r": "\r", "t": "\t"}

KINDS = {5: "video", 7: "audio", 8: "picture", 10: "text"}
PAGE_COPYRIGHT = {"1": "original", "11": "original", "2": "repost", "12": "repost", "0": "none"}
LIST_COPYRIGHT = {1: "original", 11: "original", 2: "repost", 12: "repost", 101: "repost", 0: "none", 100: "none"}


# Settings of the crawl, passed to CrawlerProcess (command-line options override a few).
SETTINGS = {
    # One host (the simulator, as mp.weixin.qq.com would be): mpwatch's
    # `crawl.concurrency_per_host` is 8 in the config --write-config writes, so the same
    # number of requests in flight here (overridden by --concurrency).
    "CONCURRENT_REQUESTS": 8,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
    # No politeness delay: the benchmark lifts every limit on both sides.
    "DOWNLOAD_DELAY": 0,
    # AutoThrottle would adapt the delay to latency; off for a fixed-concurrency run.
    "AUTOTHROTTLE_ENABLED": False,
    # Every request must reach the server, as mpwatch's do.
    "HTTPCACHE_ENABLED": False,
    # mpwatch reads no robots.txt on WeChat's own host (only on feed hosts).
    "ROBOTSTXT_OBEY": False,
    # Article pages go out anonymously, as mpwatch's do; the credential's cookie is set
    # as a header on the credentialed requests only, so no cookie jar is needed.
    "COOKIES_ENABLED": False,
    # mpwatch's http.total_timeout in the simulator config.
    "DOWNLOAD_TIMEOUT": 30,
    # Transient failures retried in place (mpwatch: 3 quick attempts = 2 retries).
    "RETRY_ENABLED": True,
    "RETRY_TIMES": 2,
    # Real pages are 2-4 MB; refuse anything absurd (mpwatch caps bodies too).
    "DOWNLOAD_MAXSIZE": 64 * 1024 * 1024,
    "DOWNLOAD_WARNSIZE": 16 * 1024 * 1024,
    # Article pages as a generic crawler announces itself (mpwatch: "mpwatch/<version>");
    # the credentialed requests carry the MicroMessenger agent.
    "USER_AGENT": "mpwatch-bench-scrapy-peer",
    # The order comes from per-request priorities (counts 2, pages 1, lists 0: a fetched
    # page gets its snapshot at once and few pages wait in memory), not from depth.
    "DEPTH_PRIORITY": 0,
    # No telnet console nor remote-control HTTP server (Scrapy 2.19 starts one on a port)
    # for a one-shot script.
    "TELNETCONSOLE_ENABLED": False,
    "REMOTE_CONTROL_ENABLED": False,
    # Progress lines every 10 s and the stats dump at the end; no per-request lines.
    "LOG_LEVEL": "INFO",
    "LOGSTATS_INTERVAL": 10,
    # (ITEM_PIPELINES: SqlitePipeline below, set in main() where the class exists.)
    # Items processed in parallel per response (default 100; a page yields at most 2).
    "CONCURRENT_ITEMS": 100,
}


def js_unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape[0] in "xu" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        return JS_SIMPLE.get(escape, escape)

    return JS_ESCAPE_RE.sub(replace, text)


def clean(text: str | None) -> str | None:
    """Entities decoded, whitespace collapsed within lines, blank lines dropped, empty as None."""
    if text is None:
        return None
    lines = (" ".join(line.split()) for line in html.unescape(text).split("\n"))
    return "\n".join(line for line in lines if line) or None


def list_text(value) -> str | None:
    """A list field as mpwatch reads it: trimmed, entities decoded, empty as None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return html.unescape(value.strip())


def to_int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def canonical_key(content_url: str) -> tuple[str, int, int, str] | None:
    """(biz, mid, idx, sn) of a list's content_url (`&amp;`, tracking parameters)."""
    query = parse_qs(urlsplit(html.unescape(content_url)).query)
    try:
        return query["__biz"][0], int(query["mid"][0]), int(query["idx"][0]), query.get("sn", [""])[0]
    except (KeyError, ValueError, IndexError):
        return None


class WechatSpider(scrapy.Spider):
    name = "wechat"

    def __init__(self, base_url: str, credential: dict, bizs: list[str], **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self.bizs = bizs
        self.auth_query = {
            "uin": credential["uin"],
            "key": credential["key"],
            "pass_ticket": credential["pass_ticket"],
            "appmsg_token": credential["appmsg_token"],
        }
        self.auth_headers = {"User-Agent": credential.get("user_agent") or MICROMESSENGER_UA}
        if credential.get("cookie"):
            self.auth_headers["Cookie"] = credential["cookie"]

    async def start(self):
        for biz in self.bizs:
            yield {"type": "account", "biz": biz}
            yield self.list_request(biz, 0)

    # -- profile_ext lists --------------------------------------------------------------

    def list_request(self, biz: str, offset: int) -> scrapy.Request:
        query = {"action": "getmsg", "__biz": biz, "f": "json", "offset": offset, "count": LIST_PAGE,
                 "is_ok": 1, "scene": 124, **self.auth_query}
        return scrapy.Request(
            f"{self.base_url}/mp/profile_ext?{urlencode(query)}",
            headers=self.auth_headers,
            callback=self.parse_list,
            cb_kwargs={"biz": biz, "offset": offset},
            priority=0,
        )

    def parse_list(self, response, biz: str, offset: int):
        data = response.json()
        ret = data.get("ret", data.get("base_resp", {}).get("ret", 0))
        if ret == -3:
            raise CloseSpider("credential expired (profile_ext ret -3 no session)")
        if ret != 0:
            self.logger.warning("profile_ext %s offset %d: ret %s %s", biz, offset, ret, data.get("errmsg"))
            retry = get_retry_request(response.request, spider=self, reason=f"profile_ext ret {ret}")
            if retry:
                yield retry
            return
        messages = json.loads(data["general_msg_list"])["list"]
        for message in messages:
            published = (message.get("comm_msg_info") or {}).get("datetime")
            ext = message.get("app_msg_ext_info")
            if not ext:
                continue  # a non-article push (image, voice) has no app_msg_ext_info
            for entry in [ext, *ext.get("multi_app_msg_item_list", [])]:
                key = canonical_key(entry.get("content_url", ""))
                if key is None:
                    continue
                listed = {
                    "biz": key[0], "mid": key[1], "idx": key[2], "sn": key[3],
                    "title": list_text(entry.get("title")), "digest": list_text(entry.get("digest")),
                    "author": list_text(entry.get("author")), "published_at": published,
                    "item_show_type": entry.get("item_show_type"),
                    "copyright": LIST_COPYRIGHT.get(entry.get("copyright_stat")),
                }
                yield self.page_request(listed)
        next_offset = data.get("next_offset", offset + LIST_PAGE)
        if data.get("can_msg_continue") == 1 and next_offset > offset:
            yield self.list_request(biz, next_offset)

    # -- article pages --------------------------------------------------------------------

    def page_request(self, listed: dict) -> scrapy.Request:
        query = urlencode({"__biz": listed["biz"], "mid": listed["mid"], "idx": listed["idx"], "sn": listed["sn"]})
        return scrapy.Request(
            f"{self.base_url}/s?{query}",
            callback=self.parse_page,
            cb_kwargs={"listed": listed},
            priority=1,
        )

    def parse_page(self, response, listed: dict):
        text = response.text
        message = clean(response.css(".weui-msg__title::text").get())
        if "wappoc_appmsgcaptcha" in response.url or "secitptpage/verify" in text[:4096]:
            self.logger.warning("verification page for %s: retrying", response.url)
            retry = get_retry_request(response.request, spider=self, reason="verification page")
            if retry:
                yield retry
            return
        url = CANONICAL.format(**listed)
        base = {**listed, "url": url, "fetched_at": int(time.time())}
        base.pop("item_show_type")
        if message or "该内容暂时无法查看" in text[:2048]:
            if message and "删除" in message:
                status = "deleted"
            elif message and "违规" in message:
                status = "blocked"
            elif message is None:
                status = "unavailable"
            else:
                self.logger.warning("%s: %s", response.url, message)  # 参数错误 and the like
                return
            reason = clean(" ".join(response.css(".weui-msg__desc ::text").getall())) if status == "blocked" else None
            yield {"type": "article", **base, "status": status, "status_reason": reason,
                   "kind": KINDS.get(listed["item_show_type"], "article")}
            return

        found: dict[str, str] = {}
        for match in VAR_RE.finditer(text):
            found.setdefault(match.group(1), match.group(3))
        var = {name: html.unescape(js_unescape(value)) for name, value in found.items()}
        cgi: dict[str, str] = {}
        block = ""
        start = text.find("window.cgiDataNew")
        if start >= 0:
            block = text[start:text.find("</script>", start)]
            for match in CGI_RE.finditer(block):
                value = match.group(2) if match.group(2) is not None else match.group(3)
                cgi.setdefault(match.group(1), js_unescape(value))

        page_show_type = to_int(var.get("item_show_type") or cgi.get("item_show_type"))
        kind = KINDS.get(page_show_type if page_show_type is not None else listed["item_show_type"], "article")
        if KINDS.get(page_show_type) in ("picture", "text"):
            # Modern message pages: the text and pictures are in cgiDataNew, not
            # #js_content (2018 pages of messages say nothing of their type and have a body).
            content = clean(cgi.get("content_noencode") or cgi.get("content"))
            # picture_page_info_list entries, besides the cover's own cdn_url
            images = max(block.count("cdn_url: JsDecode") - 1, 0)
        else:
            body = response.css("#js_content")
            content = "\n".join(t.strip() for t in body.xpath(".//text()").getall() if t.strip()) or None
            images = len(body.css("img"))
        copyright_stat = var.get("copyright_stat") or var.get("_copyright_stat")
        if copyright_stat is None and "copyright_stat" in cgi:
            copyright_stat = cgi["copyright_stat"]
        comment_id = var.get("comment_id") or cgi.get("comment_id")
        article = {
            "type": "article",
            **base,
            "sn": var.get("sn") or cgi.get("sn") or listed["sn"],
            "title": clean(var.get("msg_title")) or clean(cgi.get("title"))
            or clean(response.css('meta[property="og:title"]::attr(content)').get())
            or clean(response.css("#activity-name::text").get()) or listed["title"],
            "digest": clean(var.get("msg_desc")) or clean(cgi.get("desc"))
            or clean(response.css('meta[property="og:description"]::attr(content)').get()) or listed["digest"],
            "author": clean(var.get("author")) or clean(cgi.get("author"))
            or clean(response.css('meta[name="author"]::attr(content)').get()) or listed["author"],
            "published_at": to_int(var.get("ct")) or to_int(cgi.get("ori_create_time"))
            or to_int(var.get("create_time")) or listed["published_at"],
            "kind": kind,
            "copyright": PAGE_COPYRIGHT.get(copyright_stat or "", listed["copyright"]),
            "comment_id": comment_id if comment_id and comment_id != "0" else None,
            "content_text": content,
            "word_count": len("".join((content or "").split())),
            "image_count": images,
            "status": "ok",
            "status_reason": None,
            "account_name": clean(var.get("nickname")) or clean(cgi.get("nick_name"))
            or clean(response.css("#js_name::text, #post-user::text").get()),
            "account_username": var.get("user_name") or cgi.get("user_name"),
            "account_alias": cgi.get("alias") or clean(response.css(".profile_meta_value::text").get()),
        }
        yield article
        yield self.counts_request(article)

    # -- counts ---------------------------------------------------------------------------

    def counts_request(self, article: dict) -> scrapy.FormRequest:
        query = urlencode({"appmsg_token": self.auth_query["appmsg_token"], "x5": 0, "f": "json",
                           "uin": self.auth_query["uin"], "key": self.auth_query["key"],
                           "pass_ticket": self.auth_query["pass_ticket"]})
        return scrapy.FormRequest(
            f"{self.base_url}/mp/getappmsgext?{query}",
            formdata={
                "__biz": article["biz"], "mid": str(article["mid"]), "sn": article["sn"] or "",
                "idx": str(article["idx"]), "comment_id": article["comment_id"] or "",
                "appmsg_type": "9", "is_only_read": "1", "is_temp_url": "0",
            },
            headers=self.auth_headers,
            callback=self.parse_counts,
            cb_kwargs={"key": (article["biz"], article["mid"], article["idx"])},
            priority=2,
        )

    def parse_counts(self, response, key: tuple[str, int, int]):
        data = response.json()
        ret = data.get("base_resp", {}).get("ret", data.get("ret", 0))
        if ret == -3:
            raise CloseSpider("credential expired (getappmsgext ret -3 no session)")
        stat = data.get("appmsgstat")
        if ret != 0 or not stat:
            self.logger.warning("getappmsgext %s: ret %s", key, ret)
            retry = get_retry_request(response.request, spider=self, reason=f"getappmsgext ret {ret}")
            if retry:
                yield retry
            return
        reads = stat.get("read_num")
        yield {
            "type": "snapshot",
            "biz": key[0], "mid": key[1], "idx": key[2],
            "observed_at": int(time.time()),
            "reads": reads,
            "reads_capped": int(reads is not None and reads >= READS_CAP),
            "likes": stat.get("old_like_num"),  # 赞
            "wows": stat.get("like_num"),  # 在看
            "shares": stat.get("share_num"),
            "comments": data.get("comment_count"),
        }


SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    biz TEXT PRIMARY KEY,
    nickname TEXT,
    username TEXT,
    alias TEXT
);
CREATE TABLE IF NOT EXISTS articles (
    biz TEXT NOT NULL,
    mid INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    sn TEXT,
    url TEXT NOT NULL,
    title TEXT,
    digest TEXT,
    author TEXT,
    published_at INTEGER,
    kind TEXT,
    copyright TEXT,
    comment_id TEXT,
    content_text TEXT,
    word_count INTEGER,
    image_count INTEGER,
    status TEXT NOT NULL,
    status_reason TEXT,
    fetched_at INTEGER,
    PRIMARY KEY (biz, mid, idx)
);
CREATE TABLE IF NOT EXISTS snapshots (
    biz TEXT NOT NULL,
    mid INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    observed_at INTEGER NOT NULL,
    reads INTEGER,
    reads_capped INTEGER,
    likes INTEGER,
    wows INTEGER,
    shares INTEGER,
    comments INTEGER,
    PRIMARY KEY (biz, mid, idx, observed_at)
);
"""

ARTICLE_COLUMNS = ["biz", "mid", "idx", "sn", "url", "title", "digest", "author", "published_at", "kind",
                   "copyright", "comment_id", "content_text", "word_count", "image_count", "status",
                   "status_reason", "fetched_at"]
SNAPSHOT_COLUMNS = ["biz", "mid", "idx", "observed_at", "reads", "reads_capped", "likes", "wows", "shares",
                    "comments"]


class SqlitePipeline:
    """Buffers items and writes them with executemany, one transaction per batch."""

    BATCH = 500

    def __init__(self, path: str):
        self.path = path
        self.accounts: list[tuple] = []
        self.articles: list[tuple] = []
        self.snapshots: list[tuple] = []

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.get("PEER_DB"))

    def open_spider(self):
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.executescript(SCHEMA)

    def process_item(self, item):
        kind = item["type"]
        if kind == "account":
            self.accounts.append((item["biz"], None, None, None))
        elif kind == "article":
            self.articles.append(tuple(item.get(c) for c in ARTICLE_COLUMNS))
            if item.get("account_name") or item.get("account_username"):
                self.accounts.append((item["biz"], item.get("account_name"), item.get("account_username"),
                                      item.get("account_alias")))
        else:
            self.snapshots.append(tuple(item[c] for c in SNAPSHOT_COLUMNS))
        if len(self.accounts) + len(self.articles) + len(self.snapshots) >= self.BATCH:
            self.flush()
        return item

    def flush(self):
        with self.db:  # one transaction
            self.db.executemany(
                "INSERT INTO accounts (biz, nickname, username, alias) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (biz) DO UPDATE SET nickname = coalesce(excluded.nickname, nickname), "
                "username = coalesce(excluded.username, username), alias = coalesce(excluded.alias, alias)",
                self.accounts,
            )
            self.db.executemany(
                f"INSERT OR REPLACE INTO articles ({', '.join(ARTICLE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(ARTICLE_COLUMNS))})",
                self.articles,
            )
            self.db.executemany(
                f"INSERT OR IGNORE INTO snapshots ({', '.join(SNAPSHOT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(SNAPSHOT_COLUMNS))})",
                self.snapshots,
            )
        self.accounts.clear()
        self.articles.clear()
        self.snapshots.clear()

    def close_spider(self):
        self.flush()
        self.db.close()


def read_setup(args) -> tuple[str, dict, list[str]]:
    """Base URL, credential set and account bizs from mpwatch's config, secrets and database."""
    config_path = Path(args.config)
    config = tomllib.loads(config_path.read_text())
    base_url = args.base_url or config["wechat"]["base_url"]
    secrets_path = config_path.parent / config.get("secrets_file", "secrets.toml")
    secrets = tomllib.loads(secrets_path.read_text())
    clients = secrets.get("client") or []
    if not clients:
        sys.exit(f"{secrets_path}: no [[client]] credential set")
    if args.biz:
        return base_url, clients[0], args.biz
    db_path = Path(args.accounts_db) if args.accounts_db else config_path.parent / config.get("database", "mpwatch.db")
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        bizs = [row[0] for row in db.execute(
            "SELECT s.locator FROM account_sources s JOIN accounts a ON a.id = s.account_id "
            "WHERE s.kind = 'profile_ext' AND s.enabled = 1 AND a.enabled = 1 ORDER BY a.id")]
    return base_url, clients[0], bizs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="mpwatch.toml written by `mpwatch sim --write-config`")
    parser.add_argument("--out", required=True, help="SQLite file to write (created if missing)")
    parser.add_argument("--base-url", help="override wechat.base_url of the config")
    parser.add_argument("--accounts-db", help="mpwatch database listing the accounts (default: the config's)")
    parser.add_argument("--biz", action="append", help="crawl this account (repeatable) instead of the database's")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8, as mpwatch)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args()
    base_url, credential, bizs = read_setup(args)
    process = CrawlerProcess(settings={
        **SETTINGS,
        # Items are written in batches by SqlitePipeline (the class itself, so that the
        # file also works when not run as __main__, e.g. under cProfile).
        "ITEM_PIPELINES": {SqlitePipeline: 300},
        "PEER_DB": args.out,
        "LOG_LEVEL": args.log_level,
        "CONCURRENT_REQUESTS": args.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
    })
    crawler = process.create_crawler(WechatSpider)
    process.crawl(crawler, base_url=base_url, credential=credential, bizs=bizs)
    started = time.monotonic()
    process.start()
    stats = crawler.stats.get_stats()
    print(
        f"accounts {len(bizs)}, requests {stats.get('downloader/request_count', 0)}, "
        f"items {stats.get('item_scraped_count', 0)}, finish reason {stats.get('finish_reason')}, "
        f"{time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    if stats.get("finish_reason") != "finished" or stats.get("log_count/ERROR", 0):
        sys.exit(1)


if __name__ == "__main__":
    main()
