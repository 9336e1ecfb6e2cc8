#!/usr/bin/env python3
"""Modern-ClickHouse oracle for the starter dashboards (driven by tests/it/dashboards.rs).

Reads {"ddl": [...], "inserts": [...], "queries": [{"name", "sql"}]} from the path in argv[1] and
runs it on chdb-core (ClickHouse 26.x in-process): the DDL creates non-replicated twins of the
shipped modern schema, then every panel query must execute. Queries that need Keeper
(system.zookeeper) cannot execute in-process; they must at least parse (`formatQuery`).
Prints one line per failure; exits 1 on any failure, 3 when chdb is not installed.
"""
import json
import sys


def literal(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main():
    try:
        from chdb import session
    except ImportError as e:
        print(f"chdb is not installed ({e}); run: pip install chdb-core", file=sys.stderr)
        return 3
    job = json.load(open(sys.argv[1]))
    sess = session.Session()
    for stmt in job["ddl"] + job["inserts"]:
        sess.query(stmt)
    failures, parsed_only = [], 0
    for q in job["queries"]:
        try:
            sess.query(q["sql"], "TSV")
        except Exception as e:  # noqa: BLE001 - any chdb error is a finding
            msg = str(e).splitlines()[0] if str(e) else repr(e)
            if "system.zookeeper" in q["sql"] and "zookeeper" in msg.lower():
                try:
                    sess.query("SELECT formatQuery(" + literal(q["sql"]) + ")")
                    parsed_only += 1
                    continue
                except Exception as e2:  # noqa: BLE001
                    msg = str(e2).splitlines()[0]
            failures.append(f"{q['name']}: {msg}")
    version = sess.query("SELECT version()", "TSVRaw").bytes().decode().strip()
    for f in failures:
        print(f)
    print(f"chdb {version}: {len(job['queries'])} queries, {parsed_only} parse-only, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
