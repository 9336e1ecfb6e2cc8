"""Reads a file of ClickHouse input-format bytes with chdb (ClickHouse 26.9 in-process) and prints
the rows as TSV with every value rendered by ClickHouse itself (toString of each column).

usage: chdb_read.py FILE FORMAT STRUCTURE COLUMN...
Exit 2 when chdb is missing: the oracle test must fail loudly, never skip.
"""
import sys

try:
    import chdb
except ImportError:
    sys.stderr.write("chdb is not installed: pip install chdb-core\n")
    sys.exit(2)

path, fmt, structure, *columns = sys.argv[1:]
select = ", ".join(f"toString({c})" for c in columns)
structure = structure.replace("\\", "\\\\").replace("'", "\\'")
query = f"SELECT {select} FROM file('{path}', {fmt}, '{structure}') FORMAT TSVRaw"
try:
    print(chdb.query(query).bytes().decode(), end="")
except Exception as e:  # noqa: BLE001 - report whatever chdb says
    sys.stderr.write(f"chdb failed: {e}\n")
    sys.exit(1)
