"""A second, independent check of subject reports (full or redacted, whole or one
page), written from docs/proofs.md alone, to keep the document precise: the header
layout, the RecordPage decoding, entry commitments, the page's range proof and the
entries root, the subject value (steps 11-12), the
subject-map proof, completeness with redacted entries (step 17) and each shown
attestation's RFC 9162 inclusion (step 10), and the strict JSON rules of §3
(no duplicate key, exactly the report's keys, lowercase hex). It does NOT check signatures,
certificates or the governance section (no ed25519 here): use `yrd verify`.

    YRD_DUMP_PROOFS=/tmp/p cargo test -p yrd-ledger --test proof dump
    python3 scripts/check-report-hashes.py /tmp/p/report.json /tmp/p/report-redacted.json /tmp/p/report-page-*.json
"""
import hashlib, json, re, sys
H = lambda *p: hashlib.sha256(b"".join(p)).digest()
PREFIX = b"YRD-CREDIT-CHAIN/v1/"
sb = lambda tag, payload: PREFIX + tag + b"\x00" + payload

class R:
    def __init__(s, b): s.b, s.i = b, 0
    def take(s, n):
        if s.i + n > len(s.b): raise ValueError("short")
        v = s.b[s.i:s.i+n]; s.i += n; return v
    def u32(s): return int.from_bytes(s.take(4), "big")
    def u64(s): return int.from_bytes(s.take(8), "big")
    def opt(s, f):
        t = s.take(1)[0]
        if t == 0: return None
        if t == 1: return f()
        raise ValueError("option tag")

def header(b):
    r = R(b); h = {}
    h["chain"] = r.take(32); h["height"] = r.u64(); h["parent"] = r.take(32)
    h["proposer"] = r.u32(); h["round"] = r.u32(); h["timestamp_ms"] = r.u64()
    h["tx_count"] = r.u32(); h["log_size"] = r.u64(); h["log_root"] = r.take(32)
    h["subjects_root"] = r.take(32); h["membership"] = r.take(32)
    assert r.i == len(b) == 196
    return h

def entry(r):
    start = r.i
    eid = r.take(32); height = r.u64(); issuer = r.take(32); kind = r.u32()
    assert kind < 7
    until = r.opt(r.u64)
    def rev():
        t = r.take(32); reason = r.u32(); assert reason < 3; return (t, reason)
    revoked = r.opt(rev)
    return dict(id=eid, height=height, issuer=issuer, kind=kind, until=until, revoked=revoked, raw=r.b[start:r.i])

def record_page(b):  # RecordPage { subject, count, from, entries: Vec<EntryView>, proof: Vec<Hash32> }
    r = R(b); subject = r.take(18); count = r.u64(); start = r.u64(); n = r.u64(); entries = []
    for _ in range(n):
        tag = r.u32()
        if tag == 0: entries.append(("full", entry(r)))
        elif tag == 1: entries.append(("redacted", r.take(32)))
        else: raise ValueError("EntryView tag")
    proof = [r.take(32) for _ in range(r.u64())]
    assert r.i == len(b), "trailing bytes"
    return subject, count, start, entries, proof

def page_root(count, start, commitments, proof):  # docs/proofs.md §2, "The root of a RecordPage"
    end = start + len(commitments)
    if not commitments or end > count or len(proof) > 128: raise ValueError("subject-map: malformed page")
    j = [0]
    def T(lo, hi):
        if hi <= start or end <= lo:
            if j[0] == len(proof): raise ValueError("subject-map: range proof too short")
            j[0] += 1; return proof[j[0] - 1]
        if hi - lo == 1: return H(b"\x00", commitments[lo - start])
        k = 1
        while k * 2 < hi - lo: k *= 2
        return H(b"\x01", T(lo, lo + k), T(lo + k, hi))
    root = T(0, count)
    if j[0] != len(proof): raise ValueError("subject-map: range proof hashes left over")
    return root

def no_duplicates(pairs):  # docs/proofs.md §3, "Strict JSON"
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup: raise ValueError("format: key %r appears twice in the same object" % dup[0])
    return dict(pairs)

HEX = re.compile(r"(?:[0-9a-f]{2})*")
def unhex(s, n=None):  # canonical hex only: lower case, nothing else, n bytes if given
    if not isinstance(s, str) or not HEX.fullmatch(s) or (n is not None and len(s) != 2 * n):
        raise ValueError("format: not canonical hex: %r" % (s[:70] if isinstance(s, str) else s))
    return bytes.fromhex(s)

def keys(obj, want, where):
    if not isinstance(obj, dict) or set(obj) != set(want):
        raise ValueError("format: %s must have exactly the keys %s" % (where, sorted(want)))

def bit(k, d): return (k[d // 8] >> (7 - d % 8)) & 1

def map_root(key, proof):
    keys(proof, {"siblings", "terminal"}, "proof")
    t = proof["terminal"]; sib = [unhex(x, 32) for x in proof["siblings"]]
    if t["type"] == "present": keys(t, {"type", "value"}, "terminal"); h = H(b"\x00", key, unhex(t["value"], 32))
    elif t["type"] == "empty": keys(t, {"type"}, "terminal"); h = b"\x00" * 32
    else: keys(t, {"type", "key", "value"}, "terminal"); h = H(b"\x00", unhex(t["key"], 32), unhex(t["value"], 32))
    for d in range(len(sib) - 1, -1, -1):
        h = H(b"\x01", sib[d], h) if bit(key, d) else H(b"\x01", h, sib[d])
    return h

def inclusion_root(index, size, leaf, path):  # RFC 9162 2.1.3.2
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0: return None
        if fn & 1 or fn == sn:
            r = H(b"\x01", p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0: fn >>= 1; sn >>= 1
        else:
            r = H(b"\x01", r, p)
        fn >>= 1; sn >>= 1
    return r if sn == 0 else None

def check(path):
    f = json.load(open(path), object_pairs_hook=no_duplicates)
    keys(f, {"type", "version", "subject", "anchor", "record", "proof", "entries", "governance"}, "report")
    assert f["type"] == "yrd-subject-report" and f["version"] == 4
    keys(f["anchor"], {"header", "certificate"}, "anchor")
    h = header(unhex(f["anchor"]["header"]))
    key = H(f["subject"].encode())
    subject, count, start, entries, proof = record_page(unhex(f["record"]))
    assert subject.decode() == f["subject"], "subject"
    commitments = [H(sb(b"ledger/subject-entry", e["raw"])) if k == "full" else e for k, e in entries]
    root = page_root(count, start, commitments, proof)
    value = H(sb(b"ledger/subject-record", subject + count.to_bytes(8, "big") + root))
    assert f["proof"]["terminal"] == {"type": "present", "value": value.hex()}, "value"
    assert map_root(key, f["proof"]) == h["subjects_root"], "subject-map"
    assert len(f["entries"]) == len(entries), "completeness: count"
    shown = hidden = 0
    for (k, e), given in zip(entries, f["entries"]):
        if k == "redacted":
            keys(given, {"redacted"}, "redacted entry"); unhex(given["redacted"], 32)
            assert given == {"redacted": e.hex()}, "completeness: commitment"
            hidden += 1
            continue
        assert set(given) == {"attestation", "revocation"}, "completeness: full"
        keys(given["attestation"], {"tx", "log_index", "inclusion"}, "attestation")
        tx = unhex(given["attestation"]["tx"])
        assert H(tx) == e["id"], "completeness: id"
        root = inclusion_root(given["attestation"]["log_index"], h["log_size"], H(b"\x00", tx),
                              [unhex(x, 32) for x in given["attestation"]["inclusion"]])
        assert root == h["log_root"], "log-inclusion"
        assert (given["revocation"] is None) == (e["revoked"] is None), "revocation"
        shown += 1
    return shown, hidden, start, start + len(entries), count

for p in sys.argv[1:]:
    try:
        print(p, "OK shown=%d redacted=%d records %d..%d of %d" % check(p))
    except (AssertionError, ValueError, KeyError) as ex:
        print(p, "FAILED", repr(ex))
