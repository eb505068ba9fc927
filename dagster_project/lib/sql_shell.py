"""`ecomwh sql`: a read-only SQL shell on the published serving copy.

DuckDB's own CLI is not published for duckdb 2.0 (the `duckdb-cli` wheels stop at 1.5, and a 1.x
binary cannot open a 2.0 file), so this is a small shell over the same duckdb library the
pipeline pins: statements end with `;`, results print as DuckDB's boxes (or CSV), dot-commands
list tables and columns. The connection is read-only with external access disabled: no writes,
no reading or writing files on the server.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TextIO

import duckdb

from dagster_project.lib.ingest import sql_literal

HELP = """\
.tables               tables in the marts and docs schemas, with row counts
.schema TABLE         columns of a table, with their meaning from docs.columns
.mode box|csv         how results print (box is the default)
.reopen               open the copy the pipeline published most recently
.help                 this text
.quit                 leave (also Ctrl-D)
Statements end with `;`. Start with:  select * from docs.tables;"""


def connect(serving_path: Path) -> duckdb.DuckDBPyConnection:
    if not serving_path.exists():
        raise FileNotFoundError(
            f"no published copy at {serving_path}: run `ecomwh run` first (it publishes after the marts)")
    return duckdb.connect(str(serving_path), read_only=True, config={"enable_external_access": False})


class Shell:
    def __init__(self, serving_path: Path, out: TextIO = sys.stdout, mode: str = "box", max_rows: int = 20):
        self.serving_path = serving_path
        self.out = out
        self.mode = mode
        self.max_rows = max_rows
        self.con = connect(serving_path)

    def close(self) -> None:
        self.con.close()

    def run_sql(self, sql: str) -> bool:
        """Run one or more statements; print results or the error. Returns False on error."""
        try:
            rel = self.con.sql(sql)
        except duckdb.Error as exc:
            print(f"Error: {exc}", file=self.out)
            return False
        if rel is None:
            return True
        if self.mode == "csv":
            writer = csv.writer(self.out, lineterminator="\n")
            writer.writerow(rel.columns)
            writer.writerows(rel.fetchall())
        else:
            print(_boxed(rel, self.max_rows), file=self.out)
        return True

    def dot(self, line: str) -> bool:
        """Handle a dot-command; returns False when the shell should stop."""
        cmd, _, arg = line.strip().partition(" ")
        arg = arg.strip().rstrip(";")
        if cmd in (".quit", ".exit", ".q"):
            return False
        if cmd == ".help":
            print(HELP, file=self.out)
        elif cmd == ".tables":
            self.run_sql("select table_schema, table_name, row_count, description from docs.tables "
                         "union all select 'docs', table_name, null, 'what every mart and column means' "
                         "from information_schema.tables where table_schema = 'docs' order by 1, 2")
        elif cmd == ".schema":
            if not arg:
                print("usage: .schema TABLE", file=self.out)
            else:
                self.run_sql("select column_name, data_type, description from docs.columns "
                             f"where table_name = {sql_literal(arg.split('.')[-1])} order by ordinal_position")
        elif cmd == ".mode":
            if arg not in ("box", "csv"):
                print("usage: .mode box|csv", file=self.out)
            else:
                self.mode = arg
        elif cmd == ".reopen":
            self.con.close()
            self.con = connect(self.serving_path)
            print(f"reopened {self.serving_path}", file=self.out)
        else:
            print(f"unknown command {cmd}; try .help", file=self.out)
        return True

    def run_script(self, text: str) -> int:
        """Non-interactive: every statement and dot-command in `text`; exit code 1 if any failed."""
        ok = True
        buffer: list[str] = []
        for line in text.splitlines():
            if not buffer and line.strip().startswith("."):
                if not self.dot(line):
                    break
                continue
            buffer.append(line)
            if line.rstrip().endswith(";"):
                ok &= self.run_sql("\n".join(buffer))
                buffer = []
        if "\n".join(buffer).strip():
            ok &= self.run_sql("\n".join(buffer))
        return 0 if ok else 1

    def interactive(self, history: Path) -> int:
        try:
            import readline

            history.parent.mkdir(parents=True, exist_ok=True)
            if history.exists():
                readline.read_history_file(history)
        except (ImportError, OSError):
            readline = None
        print(f"ecom-warehouse SQL (duckdb {duckdb.__version__}, read-only) on {self.serving_path}\n"
              f"Enter .help for help; statements end with `;`.", file=self.out)
        buffer: list[str] = []
        try:
            while True:
                try:
                    line = input("ecomwh> " if not buffer else "   ...> ")
                except EOFError:
                    print(file=self.out)
                    break
                except KeyboardInterrupt:
                    print(file=self.out)
                    buffer = []
                    continue
                if not buffer and line.strip().startswith("."):
                    if not self.dot(line):
                        break
                    continue
                buffer.append(line)
                if line.rstrip().endswith(";"):
                    self.run_sql("\n".join(buffer))
                    buffer = []
        finally:
            if readline is not None:
                try:
                    readline.write_history_file(history)
                except OSError:
                    pass
        return 0


def _boxed(rel: duckdb.DuckDBPyRelation, max_rows: int) -> str:
    """DuckDB's box rendering of the first max_rows rows; the query runs once (max_rows + 1 rows)."""
    head = rel.limit(max_rows + 1).to_arrow_table()
    text = str(duckdb.from_arrow(head.slice(0, max_rows)))
    if head.num_rows > max_rows:
        text += f"\n(more than {max_rows} rows; add a LIMIT, or .mode csv prints every row)"
    return text
