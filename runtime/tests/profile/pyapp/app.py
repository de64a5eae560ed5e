"""The python test app: a small job an image would ship (see ../test_python_app.py).

It checksums its input records in worker threads, stores them as JSON in a temporary
directory, reads them back, has a child process (itself, with --child) count them, and
prints a summary. Its import closure, and nothing else of the standard library, goes into
the test bundle.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading

RECORDS = [{"name": f"item{i}", "size": i * 7} for i in range(12)]


def checksum(record, results, lock):
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    with lock:
        results[record["name"]] = digest[:12]


def main():
    if sys.argv[1:] == ["--child"]:
        print(len(json.load(sys.stdin)))
        return 0
    results, lock = {}, threading.Lock()
    workers = [threading.Thread(target=checksum, args=(r, results, lock)) for r in RECORDS]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "records.json")
        with open(path, "w") as stream:
            json.dump(results, stream)
        with open(path) as stream:
            stored = json.load(stream)
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"], input=json.dumps(stored),
                               capture_output=True, text=True, check=True)
    print(f"records {len(stored)} child {child.stdout.strip()} first {stored['item0']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
