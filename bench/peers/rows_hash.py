"""Count and SHA-256 of the stored articles' identity rows, to check that two crawlers
stored the same thing (issue 12's benchmark harness).

    python bench/peers/rows_hash.py mpwatch.db          # an mpwatch database
    python bench/peers/rows_hash.py peer.db --peer      # the Scrapy peer's database

Prints `<rows> <sha256>` over the rows (biz, mid, idx, title, published_at), sorted,
of the articles of tracked accounts: in an mpwatch database `articles` joined to
`accounts` on `account_id` (docs/schema.md), in the peer's `articles` joined to its
`accounts` on `biz`. Each row is serialised as tab-separated fields (NULL as `\\N`,
tabs, newlines and backslashes escaped) ending in a newline, UTF-8; equal outputs mean
equal row sets. Opens the file read-only.
"""

import argparse
import hashlib
import sqlite3
import sys

QUERIES = {
    "mpwatch": """SELECT a.biz, a.mid, a.idx, a.title, a.published_at
                  FROM articles a JOIN accounts c ON c.id = a.account_id""",
    "peer": """SELECT a.biz, a.mid, a.idx, a.title, a.published_at
               FROM articles a JOIN accounts c ON c.biz = a.biz""",
}
ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def field(value) -> str:
    if value is None:
        return "\\N"
    return str(value).translate(ESCAPES)


def rows_hash(path: str, layout: str) -> tuple[int, str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(QUERIES[layout]).fetchall()
    except sqlite3.OperationalError as error:
        other = "--peer" if layout == "mpwatch" else "no --peer"
        sys.exit(f"{path}: {error} (is it the other layout? try {other})")
    finally:
        db.close()
    # Sorted in Python, not by SQL collation, so both layouts sort alike whatever the
    # column types: biz as text, mid and idx as integers.
    rows.sort(key=lambda r: (r[0], int(r[1]), int(r[2])))
    digest = hashlib.sha256()
    for row in rows:
        digest.update(("\t".join(field(v) for v in row) + "\n").encode("utf-8"))
    return len(rows), digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", help="SQLite file")
    parser.add_argument("--peer", action="store_true", help="the Scrapy peer's layout (default: mpwatch's)")
    args = parser.parse_args()
    count, digest = rows_hash(args.db, "peer" if args.peer else "mpwatch")
    print(count, digest)


if __name__ == "__main__":
    main()
