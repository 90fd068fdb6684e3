"""Load a MongoDB Extended JSON seed into database ``core_provision``.

Runs with the interop DB virtualenv's python (it needs pymongo, which the library's own
environment does not have): ``python seed_db.py MONGO_URI SEED_FILE``. Each top-level key of the
seed, except ``_comment``, is one collection.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bson import json_util
from pymongo import MongoClient


def main(uri: str, seed_file: str) -> None:
    """Insert every collection of the seed file, replacing what was there."""
    seed = json_util.loads(Path(seed_file).read_text(encoding="utf-8"))
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=10000)
    try:
        database = client["core_provision"]
        for name, records in seed.items():
            if name.startswith("_"):
                continue
            database[name].delete_many({})
            database[name].insert_many(records)
    finally:
        client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
