"""Seed and read database ``core_provision`` of the interop DB.

Runs with the interop DB virtualenv's python, which has pymongo (the library's own environment
does not):

* ``python dbtool.py seed MONGO_URI SEED_FILE``: each top-level key of the MongoDB Extended
  JSON seed, except ``_comment``, is one collection; its records replace what was there.
* ``python dbtool.py find MONGO_URI COLLECTION [FILTER_JSON]``: print the matching records as
  relaxed Extended JSON (a JSON list).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bson import json_util
from pymongo import MongoClient

DATABASE = "core_provision"


def seed(uri: str, seed_file: str) -> None:
    """Insert every collection of the seed file, replacing what was there."""
    records_by_collection = json_util.loads(Path(seed_file).read_text(encoding="utf-8"))
    with MongoClient(uri, serverSelectionTimeoutMS=10000) as client:
        database = client[DATABASE]
        for name, records in records_by_collection.items():
            if name.startswith("_"):
                continue
            database[name].delete_many({})
            database[name].insert_many(records)


def find(uri: str, collection: str, query: str = "{}") -> str:
    """The records of ``collection`` matching ``query``, as relaxed Extended JSON."""
    with MongoClient(uri, serverSelectionTimeoutMS=10000) as client:
        records = list(client[DATABASE][collection].find(json.loads(query)))
    return json_util.dumps(records, json_options=json_util.RELAXED_JSON_OPTIONS)


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "seed":
        seed(*arguments)
    elif command == "find":
        sys.stdout.write(find(*arguments) + "\n")
    else:
        sys.exit(f"unknown command {command!r}: use 'seed' or 'find'")
