#!/usr/bin/env python3
"""chdb oracle for chgate's shipped migrations (driven by tests/it/chdb.rs).

Reads a JSON list of {"file", "statement", "sql", "twin", "checks"} from the path in argv[1]:
every `sql` must parse on modern ClickHouse (chdb-core, in-process 26.x) via
`SELECT formatQuery(...)`, and every `twin` (the statement without ON CLUSTER, with replicated
engines made plain and Distributed replaced by Merge) must execute, as must every `checks` query.
Prints one line per failure and exits 1 if there is any; exits 3 when chdb is not installed.
"""
import json
import sys


def literal(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main():
    try:
        from chdb import session
    except ImportError as e:  # fail loudly: the Rust test turns this into a failure
        print(f"chdb is not installed ({e}); run: pip install chdb-core", file=sys.stderr)
        return 3
    items = json.load(open(sys.argv[1]))
    sess = session.Session()
    version = sess.query("SELECT version()", "TSVRaw").bytes().decode().strip()
    failures = []
    for it in items:
        where = f"{it['file']} statement {it['statement']}"
        try:
            sess.query("SELECT formatQuery(" + literal(it["sql"]) + ")", "TSVRaw")
        except Exception as e:  # noqa: BLE001 - any chdb error is a finding
            failures.append(f"{where}: does not parse: {str(e).splitlines()[0]}")
            continue
        for q in [it["twin"]] + it.get("checks", []):
            if not q:
                continue
            try:
                sess.query(q)
            except Exception as e:  # noqa: BLE001
                failures.append(f"{where}: `{q[:80]}...` failed: {str(e).splitlines()[0]}")
    for f in failures:
        print(f)
    print(f"chdb {version}: {len(items)} statements, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
