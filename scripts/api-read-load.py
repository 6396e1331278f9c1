#!/usr/bin/env python3
"""Heavy API reads against one node while a bench runs (BENCHMARKS.md, "Heavy API reads").

Usage: scripts/api-read-load.py http://127.0.0.1:PORT SECONDS [THREADS]

Finds a subject attested in one of the node's last 50 blocks, then THREADS threads (default
4) ask, back to back until SECONDS have passed: the subject report with its proofs
(/v1/proofs/subjects/{uscc}), the status, and the block at the current height.
Prints how many rounds were done. Standard library only; talks only to the URL given.
"""
import json
import sys
import threading
import time
import urllib.request


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    base, secs = sys.argv[1].rstrip("/"), float(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4

    def get(path):
        with urllib.request.urlopen(base + path, timeout=30) as r:
            return json.loads(r.read())

    uscc = None
    deadline = time.time() + 60  # wait up to 60 s for an attestation to be committed
    while uscc is None and time.time() < deadline:
        try:
            height = get("/v1/status")["height"]
            for h in range(height, max(0, height - 50), -1):
                for tx in get("/v1/blocks/%d" % h)["transactions"]:
                    uscc = get("/v1/attestations/" + tx).get("subject")  # None for a revocation
                    if uscc:
                        break
                if uscc:
                    break
        except OSError:
            pass
        if uscc is None:
            time.sleep(0.5)
    if uscc is None:
        sys.exit("no attestation appeared in the last 50 blocks within 60 s")
    rounds, errors = [0], [0]
    lock = threading.Lock()
    stop = time.time() + secs

    def loop():
        while time.time() < stop:
            try:
                get("/v1/proofs/subjects/" + uscc)
                height = get("/v1/status")["height"]
                get("/v1/blocks/%d" % height)
                with lock:
                    rounds[0] += 1
            except OSError:
                with lock:
                    errors[0] += 1

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print("api-read-load: %d rounds (report + status + block), %d errors, in %.0f s against %s (subject %s)"
          % (rounds[0], errors[0], secs, base, uscc))


if __name__ == "__main__":
    main()
