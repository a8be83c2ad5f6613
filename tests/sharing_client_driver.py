"""Run by the isolated interpreter (``tests/sharing_client.py``), never imported by the tests: it reads shares with
the official ``delta_sharing`` client as an analyst would and writes what it got to files for the test to compare.

argv[1] is a JSON list of jobs: ``{"op": "tables" | "table" | "changes", "profile", "table", "out", ...}``.
"""

import json
import sys

import delta_sharing  # type: ignore[import-not-found]  # only in the isolated environment
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    for job in json.loads(sys.argv[1]):
        url = f"{job['profile']}#{job.get('table', '')}"
        if job["op"] == "tables":
            tables = delta_sharing.SharingClient(job["profile"]).list_all_tables()
            names = [f"{t.share}.{t.schema}.{t.name}" for t in tables]
            with open(job["out"], "w", encoding="utf-8") as handle:
                json.dump(names, handle)
            continue
        if job["op"] == "table":
            frame = delta_sharing.load_as_pandas(url)
        else:
            frame = delta_sharing.load_table_changes_as_pandas(url, starting_version=job["starting_version"])
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), job["out"])


if __name__ == "__main__":
    main()
