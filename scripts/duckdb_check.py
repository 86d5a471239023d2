"""DuckDB reads every mpwatch view with the right types, and the documented recipe runs.

    python scripts/duckdb_check.py DATABASE docs/schema.md
"""

import pathlib
import re
import sqlite3
import sys

import duckdb
import duckdb_extension_sqlite_scanner as wheel

NUMERIC = ("BIGINT", "INTEGER", "DOUBLE", "HUGEINT", "SMALLINT", "TINYINT", "FLOAT")


def main() -> int:
    database, schema_doc = sys.argv[1], sys.argv[2]
    lite = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    views = [row[0] for row in lite.execute("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")]
    con = duckdb.connect()
    extension = next(pathlib.Path(wheel.__file__).parent.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))
    con.load_extension(str(extension))
    problems = []
    con.execute(f"ATTACH '{database}' AS mp (TYPE sqlite, READ_ONLY)")
    for view in views:
        described = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE mp.{view}").fetchall()}
        # What SQLite stores in each column: a column holding numbers must read as a number.
        for column, kind in described.items():
            stored = {t for (t,) in lite.execute(f'SELECT DISTINCT typeof("{column}") FROM {view}')} - {"null"}
            if stored and stored <= {"integer", "real"} and kind not in NUMERIC:
                problems.append(f"{view}.{column}: holds {sorted(stored)} but DuckDB reads {kind}")
            if stored == {"text"} and kind != "VARCHAR":
                problems.append(f"{view}.{column}: holds text but DuckDB reads {kind}")
        con.execute(f"SELECT * FROM mp.{view} LIMIT 100").fetchall()
        print(f"{view}: {len(described)} columns, types right")
    # The recipe of docs/schema.md, on this file.
    text = pathlib.Path(schema_doc).read_text()
    rows = 0
    recipe = next((block for block in re.findall(r"```sql\n(.*?)```", text, re.S) if "ATTACH" in block), None)
    if recipe is None:
        problems.append(f"{schema_doc}: no DuckDB recipe found")
    else:
        fresh = duckdb.connect()
        fresh.load_extension(str(extension))
        for statement in [s.strip() for s in recipe.split(";") if s.strip()]:
            if statement.upper().startswith(("INSTALL", "LOAD")):
                continue  # the extension is loaded from the PyPI wheel above
            statement = statement.replace("'mpwatch.db'", f"'{database}'")
            if statement.upper().startswith("SELECT"):
                # Counted in DuckDB: fetching time-zoned timestamps into Python needs pytz.
                (rows,) = fresh.execute(f"SELECT count(*) FROM ({statement})").fetchone()
            else:
                fresh.execute(statement)
        print(f"the recipe of {schema_doc} ran: {rows} rows")
        if not rows:
            problems.append("the recipe returned no rows")
    for problem in problems:
        print("problem:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
