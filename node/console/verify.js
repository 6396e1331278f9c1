// Offline verification of proof files in the browser, following docs/proofs.md step
// by step: the same verdict as `yrd verify` (accept, or reject naming the first failed
// check), with WebCrypto SHA-256 and Ed25519.
//
//   import { verifyFile } from "/console/verify.js";
//   const r = await verifyFile(fileText, genesisText, Date.now());
//   // { verified: true, verdict } | { verified: false, check, error }
//
// Bundles, subject reports, audit traces and consistency proofs are checked in
// full, governance section included: the membership changes since the genesis are
// replayed (steps 23-29, rules G1-G7 of §4.1, in governance.js) and every anchor,
// certificate and signer is judged by the membership in force at its height. Keys
// are held to the key rule (ed25519.js) before any signature by them counts.
// Query audit files (§4.2) too: each query record in its certified block, signed
// by a node in force, each listed entry's lender request signature checked.

import { keyProblem } from "./ed25519.js";
import {
  GovState, genesisMembership, encodeMembership, encodeParams, encodeAgency, encodeIssuer, encodeObserver, encodeLender,
  issuerOf, issuerAny, agencyOf, retiredKey, describe, paramsProblem, U64_MAX,
} from "./governance.js";

const TE = new TextEncoder();
const PREFIX = TE.encode("YRD-CREDIT-CHAIN/v1/");
const FORMAT_VERSION = 4n;
/** Most hashes in a record page's range proof (docs/proofs.md §1). */
const RANGE_PROOF_HASHES_MAX = 128;
const MAX_FILE_BYTES = 64 * 1024 * 1024;
const MAX_TX_BYTES = 4096;
const MAX_HEADER_BYTES = 1024;
const MAX_CERTIFICATE_BYTES = 16384;
const MAX_SUBJECT_RECORD_BYTES = 4 * 1024 * 1024;
const INCLUSION_PROOF_HASHES_MAX = 64;
const CONSISTENCY_PROOF_HASHES_MAX = 128;
const SUBJECT_PROOF_SIBLINGS_MAX = 256;
const MAX_VALIDATORS = 128;
/** Query records (§4.2, ledger/src/queries.rs): entries per record, request method and path sizes, the recording lag. */
const MAX_QUERY_ENTRIES = 64;
const MAX_METHOD_BYTES = 8;
const MAX_REQUEST_PATH_BYTES = 256;
const MAX_RECORD_LAG_BLOCKS = 600n;
const U32_MAX = (1n << 32n) - 1n;
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n;

export const KINDS = ["red-list", "serious-dishonesty", "administrative-penalty", "credit-rating", "tax-credit", "court-enforcement", "commitment"];
const GRADES = ["A", "B", "M", "C", "D"];
const SEVERITIES = ["minor", "general", "serious"];
const REASONS = ["repair", "dispute", "error"];
/** consent::RETIRED_KEY_GRACE_BLOCKS */
const RETIRED_KEY_GRACE_BLOCKS = 16n;
const TX_TYPES = ["attestation", "revocation", "proposal", "approval", "authorisation", "withdrawal", "query-records"];
const USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/** A failed check: `check` is one of docs/proofs.md's names (`yrd verify --json`). */
export class Fail extends Error {
  constructor(check, message) { super(message); this.check = check; }
}
const fail = (check, message) => { throw new Fail(check, message); };

// ---------------------------------------------------------------------------
// Bytes, hashes, signatures
// ---------------------------------------------------------------------------

function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
function unhexRaw(s) {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const u8 = (n) => Uint8Array.of(n);
function u32be(n) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, Number(n)); return b; }
function u64be(n) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n)); return b; }

function subtle() {
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    fail("unsupported", "WebCrypto is not available: the browser allows crypto.subtle only in a secure context (https, or http://127.0.0.1 / localhost). Use `yrd verify`, or open the console through localhost (e.g. an SSH tunnel).");
  }
  return globalThis.crypto.subtle;
}
async function sha256(...parts) { return new Uint8Array(await subtle().digest("SHA-256", concat(...parts))); }
const signingBytes = (tag, payload) => concat(PREFIX, TE.encode(tag), u8(0), payload);

const keyCache = new Map();
/** The chain's signature rule (docs/proofs.md §2): the key rule (ed25519.js), s < L
 * and R not the identity are checked here; WebCrypto's Ed25519 (BoringSSL) checks
 * the cofactorless equation and compares the encoding of R. */
async function ed25519Verify(key, sig, msg) {
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]);
  if (s >= ED25519_L) return false;
  if (sig[0] === 1 && sig.slice(1, 32).every((x) => x === 0)) return false;
  if (keyProblem(key)) return false;
  const k = hex(key);
  let ck = keyCache.get(k);
  if (!ck) {
    try {
      ck = await subtle().importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
    } catch (_) {
      return false;
    }
    keyCache.set(k, ck);
  }
  try {
    return await subtle().verify({ name: "Ed25519" }, ck, sig, msg);
  } catch (_) {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Strict JSON (docs/proofs.md §3): no duplicate key, integers exact (BigInt)
// ---------------------------------------------------------------------------

/** A JSON number with a fraction or exponent: never a valid integer field. */
class JsonFloat { constructor(v) { this.v = v; } }

function parseStrictJson(text) {
  let i = 0;
  const err = (m) => fail("format", `${m} at character ${i}`);
  const ws = () => { while (i < text.length && " \t\n\r".includes(text[i])) i++; };
  const value = (depth) => {
    if (depth > 128) err("nesting too deep");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj = Object.create(null);
      ws();
      if (text[i] === "}") { i++; return obj; }
      for (;;) {
        ws();
        if (text[i] !== "\"") err("expected a key");
        const k = string();
        if (Object.prototype.hasOwnProperty.call(obj, k)) fail("format", `key "${k}" appears twice in the same object`);
        ws();
        if (text[i] !== ":") err("expected ':'");
        i++;
        obj[k] = value(depth + 1);
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; return obj; }
        err("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const arr = [];
      ws();
      if (text[i] === "]") { i++; return arr; }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; return arr; }
        err("expected ',' or ']'");
      }
    }
    if (c === "\"") return string();
    if (text.startsWith("true", i)) { i += 4; return true; }
    if (text.startsWith("false", i)) { i += 5; return false; }
    if (text.startsWith("null", i)) { i += 4; return null; }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) err("unexpected character");
    i += m[0].length;
    if (!m[2] && !m[3]) return BigInt(m[0]);
    return new JsonFloat(Number(m[0]));
  };
  const string = () => {
    i++;
    let out = "";
    for (;;) {
      if (i >= text.length) err("unterminated string");
      const c = text[i];
      const code = c.charCodeAt(0);
      if (c === "\"") { i++; break; }
      if (code < 0x20) err("control character in string");
      if (c === "\\") {
        const e = text[i + 1];
        const map = { "\"": "\"", "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        if (e in map) { out += map[e]; i += 2; continue; }
        if (e === "u") {
          const h4 = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(h4)) err("bad \\u escape");
          const cp = parseInt(h4, 16);
          i += 6;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            const lo = text.slice(i, i + 6);
            if (!/^\\u[dD][c-fC-F][0-9a-fA-F]{2}$/.test(lo)) err("lone leading surrogate");
            out += String.fromCharCode(cp, parseInt(lo.slice(2), 16));
            i += 6;
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            err("lone trailing surrogate");
          } else {
            out += String.fromCharCode(cp);
          }
          continue;
        }
        err("bad escape");
      }
      out += c;
      i++;
    }
    return out;
  };
  const v = value(0);
  ws();
  if (i !== text.length) err("trailing characters");
  return v;
}

// Schema checks: exactly these keys, of these types.
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof JsonFloat);
function obj(v, path, keys, optional = []) {
  if (!isObj(v)) fail("format", `${path || "file"}: invalid type, expected an object`);
  for (const k of Object.keys(v)) if (!keys.includes(k) && !optional.includes(k)) fail("format", `${path ? path + "." : ""}${k}: unknown field`);
  for (const k of keys) if (!(k in v)) fail("format", `${path || "file"}: missing field \`${k}\``);
  return v;
}
function str(v, path) { if (typeof v !== "string") fail("format", `${path}: invalid type, expected a string`); return v; }
function int(v, path, max = U64_MAX) {
  if (typeof v !== "bigint" || v < 0n || v > max) fail("format", `${path}: invalid value, expected an integer 0..=${max}`);
  return v;
}
function arr(v, path) { if (!Array.isArray(v)) fail("format", `${path}: invalid type, expected an array`); return v; }
function hash(v, path) {
  if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) fail("format", `${path}: invalid hash (64 lowercase hex digits)`);
  return unhexRaw(v);
}
function boolean(v, path) { if (typeof v !== "boolean") fail("format", `${path}: invalid type, expected a boolean`); return v; }

const anchorShape = (v, p) => { obj(v, p, ["header", "certificate"]); str(v.header, `${p}.header`); str(v.certificate, `${p}.certificate`); return v; };
function includedShape(v, p) {
  obj(v, p, ["tx", "log_index", "inclusion"]);
  str(v.tx, `${p}.tx`);
  int(v.log_index, `${p}.log_index`);
  arr(v.inclusion, `${p}.inclusion`).forEach((x, i) => hash(x, `${p}.inclusion[${i}]`));
  return v;
}
function proofShape(v, p) {
  obj(v, p, ["siblings", "terminal"]);
  arr(v.siblings, `${p}.siblings`).forEach((x, i) => hash(x, `${p}.siblings[${i}]`));
  const t = v.terminal;
  if (!isObj(t) || !("type" in t)) fail("format", `${p}.terminal: missing field \`type\``);
  if (t.type === "present") { obj(t, `${p}.terminal`, ["type", "value"]); hash(t.value, `${p}.terminal.value`); }
  else if (t.type === "empty") obj(t, `${p}.terminal`, ["type"]);
  else if (t.type === "other") { obj(t, `${p}.terminal`, ["type", "key", "value"]); hash(t.key, `${p}.terminal.key`); hash(t.value, `${p}.terminal.value`); }
  else fail("format", `${p}.terminal.type: unknown variant`);
  return v;
}
function governanceShape(v, p) {
  arr(v, p).forEach((gb, i) => {
    const q = `${p}[${i}]`;
    obj(gb, q, ["block", "txs"]);
    anchorShape(gb.block, `${q}.block`);
    arr(gb.txs, `${q}.txs`).forEach((gt, j) => {
      obj(gt, `${q}.txs[${j}]`, ["tx", "position", "inclusion"]);
      str(gt.tx, `${q}.txs[${j}].tx`);
      int(gt.position, `${q}.txs[${j}].position`, U32_MAX);
      arr(gt.inclusion, `${q}.txs[${j}].inclusion`).forEach((x, k) => hash(x, `${q}.txs[${j}].inclusion[${k}]`));
    });
  });
  return v;
}
const nullable = (v, f) => (v === null ? null : f(v));
function bundleShape(v, p = "") {
  const q = (k) => (p ? `${p}.${k}` : k);
  obj(v, p, ["type", "version", "anchor", "attestation", "subject", "revocation", "governance"]);
  str(v.type, q("type")); int(v.version, q("version"), U32_MAX);
  anchorShape(v.anchor, q("anchor"));
  includedShape(v.attestation, q("attestation"));
  obj(v.subject, q("subject"), ["record", "proof"]); str(v.subject.record, q("subject.record")); proofShape(v.subject.proof, q("subject.proof"));
  nullable(v.revocation, (x) => includedShape(x, q("revocation")));
  governanceShape(v.governance, q("governance"));
}
function reportShape(v) {
  obj(v, "", ["type", "version", "subject", "anchor", "record", "proof", "entries", "governance"]);
  str(v.type, "type"); int(v.version, "version", U32_MAX); str(v.subject, "subject");
  anchorShape(v.anchor, "anchor");
  nullable(v.record, (x) => str(x, "record"));
  proofShape(v.proof, "proof");
  arr(v.entries, "entries").forEach((e, i) => {
    const p = `entries[${i}]`;
    if (isObj(e) && "redacted" in e) { obj(e, p, ["redacted"]); hash(e.redacted, `${p}.redacted`); }
    else { obj(e, p, ["attestation", "revocation"]); includedShape(e.attestation, `${p}.attestation`); nullable(e.revocation, (x) => includedShape(x, `${p}.revocation`)); }
  });
  governanceShape(v.governance, "governance");
}
function blockTxShape(v, p) { obj(v, p, ["block", "included"]); anchorShape(v.block, `${p}.block`); includedShape(v.included, `${p}.included`); }
function traceShape(v) {
  obj(v, "", ["type", "version", "origin", "revocations", "current"]);
  str(v.type, "type"); int(v.version, "version", U32_MAX);
  blockTxShape(v.origin, "origin");
  arr(v.revocations, "revocations").forEach((r, i) => blockTxShape(r, `revocations[${i}]`));
  bundleShape(v.current, "current");
}
function queryAuditShape(v) {
  obj(v, "", ["type", "version", "subject", "anchor", "governance", "records", "next_from"]);
  str(v.type, "type"); int(v.version, "version", U32_MAX); str(v.subject, "subject");
  anchorShape(v.anchor, "anchor");
  governanceShape(v.governance, "governance");
  arr(v.records, "records").forEach((r, i) => {
    const p = `records[${i}]`;
    obj(r, p, ["record", "entries"]);
    blockTxShape(r.record, `${p}.record`);
    arr(r.entries, `${p}.entries`).forEach((e, j) => int(e, `${p}.entries[${j}]`, 65535n));
  });
  nullable(v.next_from, (x) => int(x, "next_from"));
}
function consistencyShape(v) {
  obj(v, "", ["type", "version", "from", "to", "proof", "governance"]);
  str(v.type, "type"); int(v.version, "version", U32_MAX);
  anchorShape(v.from, "from"); anchorShape(v.to, "to");
  arr(v.proof, "proof").forEach((x, i) => hash(x, `proof[${i}]`));
  governanceShape(v.governance, "governance");
}

// ---------------------------------------------------------------------------
// Canonical decoding (docs/proofs.md §1): big-endian, fixed width, no trailing bytes
// ---------------------------------------------------------------------------

class Reader {
  constructor(bytes, field) { this.b = bytes; this.o = 0; this.field = field; }
  err(m) { fail("decode", `${this.field}: ${m}`); }
  take(n) {
    if (n > this.b.length - this.o) this.err("unexpected end of bytes");
    const out = this.b.subarray(this.o, this.o + n);
    this.o += n;
    return out;
  }
  u8() { return this.take(1)[0]; }
  u32() { const t = this.take(4); return new DataView(t.buffer, t.byteOffset, 4).getUint32(0); }
  u64() { const t = this.take(8); return new DataView(t.buffer, t.byteOffset, 8).getBigUint64(0); }
  bool() { const v = this.u8(); if (v > 1) this.err(`invalid bool ${v}`); return v === 1; }
  len() { const n = this.u64(); if (n > BigInt(this.b.length - this.o)) this.err(`length ${n} is more than the bytes left`); return Number(n); }
  string() {
    const bytes = this.take(this.len());
    try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch (_) { return this.err("invalid UTF-8"); }
  }
  opt(f) { const tag = this.u8(); if (tag === 0) return null; if (tag === 1) return f(); return this.err(`invalid option tag ${tag}`); }
  vec(f) { const n = this.len(); const out = []; for (let i = 0; i < n; i++) out.push(f()); return out; }
  variant(names) { const v = this.u32(); if (v >= names.length) this.err(`invalid variant ${v}`); return v; }
  h32() { return this.take(32).slice(); }
  uscc() {
    const b = this.take(18);
    const s = String.fromCharCode(...b);
    const why = usccProblem(s);
    if (why) this.err(`USCC: ${why}`);
    return s;
  }
  region() {
    const s = this.string();
    if (!/^[A-Z]{2,8}$/.test(s)) this.err(`region ${JSON.stringify(s)} is not 2-8 upper-case letters`);
    return s;
  }
  kinds() { return this.vec(() => KINDS[this.variant(KINDS)]); }
  end() { if (this.o !== this.b.length) this.err(`${this.b.length - this.o} trailing bytes`); }
}

/** Why `s` is not a canonical USCC (§1.1), or null. */
export function usccProblem(s) {
  if (s.length !== 18) return `length ${s.length}, expected 18`;
  let sum = 0;
  for (let i = 0; i < 18; i++) {
    const v = USCC_ALPHABET.indexOf(s[i]);
    if (v < 0) return `character ${JSON.stringify(s[i])} at position ${i + 1}`;
    if (i >= 2 && i <= 7 && v > 9) return `position ${i + 1} must be a digit`;
    if (i < 17) sum += v * USCC_WEIGHTS[i];
  }
  const expect = USCC_ALPHABET[(31 - (sum % 31)) % 31];
  if (s[17] !== expect) return `check character expected ${expect} got ${s[17]}`;
  return null;
}

function unhex(field, s, max) {
  if (s.length > 2 * max) fail("decode", `${field} is ${s.length} hex characters, more than ${max} bytes`);
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) fail("decode", `${field}: not lowercase hex of whole bytes`);
  return unhexRaw(s);
}

function decodeHeader(bytes, field) {
  const r = new Reader(bytes, field);
  const hd = {
    chain: r.h32(), height: r.u64(), parent: r.h32(), proposer: r.u32(), round: r.u32(), timestamp_ms: r.u64(),
    tx_count: r.u32(), log_size: r.u64(), log_root: r.h32(), subjects_root: r.h32(), membership: r.h32(),
  };
  r.end();
  hd.bytes = bytes;
  return hd;
}
function decodeCertificate(bytes, field) {
  const r = new Reader(bytes, field);
  const c = { height: r.u64(), round: r.u32(), block_hash: r.h32(), signatures: r.vec(() => [r.u32(), r.take(64).slice()]) };
  r.end();
  return c;
}
function agency(r) { return { name: r.string(), region: r.region(), key: r.h32() }; }
function chainParams(r) {
  return { max_block_txs: BigInt(r.u32()), max_block_bytes: BigInt(r.u32()),
    governance: { approval_num: BigInt(r.u32()), approval_den: BigInt(r.u32()), activation_delay_blocks: r.u64(), max_proposal_ttl_blocks: r.u64() },
    restricted_kinds: r.kinds() };
}
function change(r) {
  const v = r.variant(new Array(17).fill(0));
  const nameKey = () => ({ name: r.string(), key: r.h32() });
  const body = () => {
    switch (v) {
      case 0: case 3: return agency(r);
      case 1: case 4: case 7: case 10: case 12: case 15: return { name: r.string() };
      case 2: case 5: case 8: case 16: return nameKey();
      case 6: return { name: r.string(), region: r.region(), key: r.h32(), kinds: r.kinds(), may_revoke_any: r.bool() };
      case 9: return { name: r.string(), kinds: r.kinds(), may_revoke_any: r.bool() };
      case 11: return nameKey();
      case 13: return chainParams(r);
      case 14: return { name: r.string(), sponsor: r.string(), key: r.h32() };
      default: return r.err("invalid change");
    }
  };
  return { t: v, ...body() };
}
function decodeTx(bytes, field) {
  if (bytes.length > MAX_TX_BYTES) fail("decode", `${field}: ${bytes.length} bytes, more than ${MAX_TX_BYTES}`);
  const r = new Reader(bytes, field);
  const tx = { chain: r.h32(), issuer: r.h32(), sequence: r.u64() };
  tx.bodyType = r.variant(TX_TYPES);
  switch (tx.bodyType) {
    case 0:
      tx.body = { subject: r.uscc(), kind: KINDS[r.variant(KINDS)], grade: r.opt(() => GRADES[r.variant(GRADES)]),
        severity: r.opt(() => SEVERITIES[r.variant(SEVERITIES)]), evidence: r.h32(), issued_at_ms: r.u64(),
        valid_from_ms: r.u64(), valid_until_ms: r.opt(() => r.u64()), fields: r.vec(() => [r.string(), r.string()]) };
      break;
    case 1:
      tx.body = { target: r.h32(), reason: REASONS[r.variant(REASONS)], evidence: r.opt(() => r.h32()), issued_at_ms: r.u64() };
      break;
    case 2: tx.body = { changes: r.vec(() => change(r)), deadline: r.u64(), summary: r.string() }; break;
    case 3: tx.body = { proposal: r.h32() }; break;
    case 4: tx.body = { subject: r.uscc(), purpose: r.variant([0, 0, 0]), consent: r.h32(), issued_at_ms: r.u64(), valid_until_ms: r.u64() }; break;
    case 5: tx.body = { authorisation: r.h32(), reason: r.variant([0, 0, 0]), evidence: r.opt(() => r.h32()), issued_at_ms: r.u64() }; break;
    case 6:
      tx.body = { entries: r.vec(() => ({
        request: { key: r.h32(), method: r.string(), path: r.string(), body: r.h32(), timestamp_ms: r.u64(), nonce: r.take(16), signature: r.take(64) },
        subject: r.uscc(), authorisation: r.h32(), response: r.h32(), served_at_ms: r.u64(), height: r.u64() })) };
      break;
    default: r.err("invalid body");
  }
  tx.signature = r.take(64).slice();
  r.end();
  tx.payload = bytes.subarray(0, bytes.length - 64);
  tx.bytes = bytes;
  tx.type = TX_TYPES[tx.bodyType];
  return tx;
}
/** `RecordPage { subject, count, from, entries: Vec<EntryView>, proof: Vec<Hash32> }` (§1). */
function decodeRecordPage(bytes, field) {
  const r = new Reader(bytes, field);
  const subject = r.uscc();
  const count = r.u64();
  const from = r.u64();
  const entries = r.vec(() => {
    const tag = r.variant([0, 0]);
    if (tag === 1) return { redacted: r.h32() };
    const start = r.o;
    const e = { id: r.h32(), height: r.u64(), issuer: r.h32(), kind: KINDS[r.variant(KINDS)], valid_until_ms: r.opt(() => r.u64()),
      revoked: r.opt(() => ({ id: r.h32(), reason: REASONS[r.variant(REASONS)] })) };
    e.bytes = bytes.subarray(start, r.o);
    return e;
  });
  const proof = r.vec(() => r.h32());
  r.end();
  return { subject, count, from, entries, proof };
}

/**
 * The entries root a record page proves (§2, "The root of a RecordPage"): the
 * RFC 9162 tree over `count` commitments, the page's own hashed as leaves and
 * each subtree wholly outside the page taken from the range proof, left first.
 * Returns `{ root }` or `{ error }` (a malformed page).
 */
async function pageRoot(count, from, commitments, proof) {
  const to = from + BigInt(commitments.length);
  if (commitments.length < 1) return { error: "the page holds no entry" };
  if (to > count) return { error: `records ${from}..${to} run past the record's ${count}` };
  if (proof.length > RANGE_PROOF_HASHES_MAX) return { error: `range proof has ${proof.length} hashes, at most ${RANGE_PROOF_HASHES_MAX}` };
  let j = 0;
  const walk = async (lo, hi) => {
    if (hi <= from || to <= lo) {
      if (j === proof.length) throw new Error("range proof too short");
      return proof[j++];
    }
    if (hi - lo === 1n) return sha256(u8(0), commitments[Number(lo - from)]);
    let k = 1n;
    while (k * 2n < hi - lo) k *= 2n;
    const left = await walk(lo, lo + k);
    const right = await walk(lo + k, hi);
    return sha256(u8(1), left, right);
  };
  let root;
  try {
    root = await walk(0n, count);
  } catch (e) {
    return { error: e.message };
  }
  if (j !== proof.length) return { error: `range proof has ${proof.length} hashes, the page uses ${j}` };
  return { root };
}

// ---------------------------------------------------------------------------
// Genesis (§1.2), the chain id and the membership hash
// ---------------------------------------------------------------------------

const encStr = (s) => { const b = TE.encode(s); return concat(u64be(b.length), b); };
const encVec = (xs, f) => concat(u64be(xs.length), ...xs.map(f));

function genesisFail(m) { fail("genesis", `genesis: ${m}`); }
function kindsList(v, p) {
  const ks = arr(v, p).map((k, i) => { if (!KINDS.includes(k)) genesisFail(`${p}[${i}]: unknown kind ${JSON.stringify(k)}`); return k; });
  for (let i = 1; i < ks.length; i++) if (KINDS.indexOf(ks[i]) <= KINDS.indexOf(ks[i - 1])) genesisFail(`${p}: kinds not strictly increasing`);
  return ks;
}
function name(v, p) {
  str(v, p);
  const n = [...v].length;
  // Rust's `str::trim` strips White_Space only (not U+FEFF, which JavaScript's trim also strips).
  if (n < 1 || n > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(v) || /^\p{White_Space}|\p{White_Space}$/u.test(v)) genesisFail(`${p}: bad name ${JSON.stringify(v)}`);
  return v;
}
function region(v, p) { str(v, p); if (!/^[A-Z]{2,8}$/.test(v)) genesisFail(`${p}: region ${JSON.stringify(v)} is not 2-8 upper-case letters`); return v; }

/** Reads the genesis file (strict JSON, defaults filled in) and derives what the
 * verifier trusts: the chain id and the genesis membership with its hash. */
export async function readGenesis(text) {
  let g;
  try {
    if (text.length > 1024 * 1024) genesisFail("more than 1 MiB");
    g = parseStrictJson(text);
    obj(g, "", ["chain_name", "genesis_time_ms", "params", "validators", "issuers"], ["observers", "agencies", "lenders"]);
  } catch (e) {
    if (e instanceof Fail) genesisFail(e.message);
    throw e;
  }
  const chain_name = name(g.chain_name, "chain_name");
  const genesis_time_ms = int(g.genesis_time_ms, "genesis_time_ms");
  const pp = obj(g.params, "params", ["max_block_txs", "max_block_bytes"], ["governance", "restricted_kinds"]);
  let gov = { approval_num: 2n, approval_den: 3n, activation_delay_blocks: 4n, max_proposal_ttl_blocks: 1000000n };
  if ("governance" in pp) {
    const gp = obj(pp.governance, "params.governance", ["approval_num", "approval_den", "activation_delay_blocks", "max_proposal_ttl_blocks"]);
    gov = { approval_num: int(gp.approval_num, "approval_num", U32_MAX), approval_den: int(gp.approval_den, "approval_den", U32_MAX),
      activation_delay_blocks: int(gp.activation_delay_blocks, "activation_delay_blocks"), max_proposal_ttl_blocks: int(gp.max_proposal_ttl_blocks, "max_proposal_ttl_blocks") };
  }
  const params = { max_block_txs: int(pp.max_block_txs, "params.max_block_txs", U32_MAX), max_block_bytes: int(pp.max_block_bytes, "params.max_block_bytes", U32_MAX),
    governance: gov, restricted_kinds: "restricted_kinds" in pp ? kindsList(pp.restricted_kinds, "params.restricted_kinds") : ["credit-rating", "tax-credit", "commitment"] };
  const validators = arr(g.validators, "validators").map((v, i) => { const p = `validators[${i}]`; obj(v, p, ["name", "region", "key"]); return { name: name(v.name, `${p}.name`), region: region(v.region, `${p}.region`), key: hash(v.key, `${p}.key`) }; });
  const issuers = arr(g.issuers, "issuers").map((v, i) => {
    const p = `issuers[${i}]`;
    obj(v, p, ["name", "region", "key", "kinds"], ["may_revoke_any"]);
    const kinds = kindsList(v.kinds, `${p}.kinds`);
    if (kinds.length === 0) genesisFail(`${p}: no kind`);
    return { name: name(v.name, `${p}.name`), region: region(v.region, `${p}.region`), key: hash(v.key, `${p}.key`), kinds, may_revoke_any: "may_revoke_any" in v ? boolean(v.may_revoke_any, `${p}.may_revoke_any`) : false };
  });
  const observers = ("observers" in g ? arr(g.observers, "observers") : []).map((v, i) => { const p = `observers[${i}]`; obj(v, p, ["name", "key"]); return { name: name(v.name, `${p}.name`), key: hash(v.key, `${p}.key`) }; });
  const agencies = ("agencies" in g ? arr(g.agencies, "agencies") : []).map((v, i) => { const p = `agencies[${i}]`; obj(v, p, ["name", "region", "key"]); return { name: name(v.name, `${p}.name`), region: region(v.region, `${p}.region`), key: hash(v.key, `${p}.key`) }; });
  const lenders = ("lenders" in g ? arr(g.lenders, "lenders") : []).map((v, i) => { const p = `lenders[${i}]`; obj(v, p, ["name", "sponsor", "key"]); return { name: name(v.name, `${p}.name`), sponsor: name(v.sponsor, `${p}.sponsor`), key: hash(v.key, `${p}.key`) }; });
  if (validators.length < 1 || validators.length > 16) genesisFail(`${validators.length} validators, expected 1 to 16`);
  if (issuers.length > 1024 || observers.length > 1024 || agencies.length > 64 || lenders.length > 4096) genesisFail("too many issuers, observers, agencies or lenders");
  // Names: validators, issuers and observers share one namespace; agencies and
  // lenders have their own (Genesis::validate).
  for (const group of [[...validators, ...issuers, ...observers], agencies, lenders]) {
    const seen = new Set();
    for (const x of group) {
      if (seen.has(x.name)) genesisFail(`name ${JSON.stringify(x.name)} is used twice`);
      seen.add(x.name);
    }
  }
  const keys = new Set();
  for (const x of [...validators, ...issuers, ...observers, ...agencies, ...lenders]) {
    const k = hex(x.key);
    if (keys.has(k)) genesisFail(`key ${k} is used twice`);
    const weak = keyProblem(x.key);
    if (weak) genesisFail(`${x.name}'s key ${k} fails the key rule: ${weak}`);
    keys.add(k);
  }
  const why = paramsProblem(params);
  if (why) genesisFail(`params: ${why}`);
  for (const l of lenders) if (!agencies.some((a) => a.name === l.sponsor)) genesisFail(`lender ${l.name}'s sponsor ${l.sponsor} is not an agency`);
  const canonical = concat(encStr(chain_name), u64be(genesis_time_ms), encodeParams(params), encVec(validators, encodeAgency),
    encVec(issuers, encodeIssuer), encVec(observers, encodeObserver), encVec(agencies, encodeAgency), encVec(lenders, encodeLender));
  const chain = await sha256(PREFIX, TE.encode("genesis"), u8(0), canonical);
  const g0 = { chain_name, chain, params, validators, issuers, observers, agencies, lenders };
  g0.membership = genesisMembership(g0);
  return g0;
}

/** The membership hash (§2) a header commits to, cached per membership object. */
const membershipHashes = new WeakMap();
async function membershipHash(m) {
  let h = membershipHashes.get(m);
  if (!h) {
    h = await sha256(signingBytes("ledger/membership", encodeMembership(m)));
    membershipHashes.set(m, h);
  }
  return h;
}

// ---------------------------------------------------------------------------
// Merkle proofs: RFC 9162 log, subject map
// ---------------------------------------------------------------------------

const nodeHash = (l, r) => sha256(u8(1), l, r);

async function verifyInclusion(leaf, index, size, proof, root) {
  if (proof.length > INCLUSION_PROOF_HASHES_MAX) return "inclusion proof too long";
  if (index >= size) return `index ${index} out of range of size ${size}`;
  let fn = index, sn = size - 1n, r = leaf;
  for (const p of proof) {
    if (sn === 0n) return "left-over hashes";
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) return "proof too short";
  if (!eq(r, root)) return "root mismatch";
  return null;
}

async function verifyConsistency(size1, size2, root1, root2, proof) {
  if (proof.length > CONSISTENCY_PROOF_HASHES_MAX) return "proof too long";
  if (size1 > size2) return "sizes out of order";
  if (size1 === size2) return proof.length === 0 && eq(root1, root2) ? null : "equal sizes need an empty proof and equal roots";
  if (size1 === 0n) return proof.length === 0 ? null : "proof must be empty";
  if (proof.length === 0) return "empty proof";
  const pow2 = (size1 & (size1 - 1n)) === 0n;
  const path = pow2 ? [root1, ...proof] : proof;
  let fn = size1 - 1n, sn = size2 - 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return "left-over hashes";
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr); sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) return "proof too short";
  if (!eq(fr, root1) || !eq(sr, root2)) return "root mismatch";
  return null;
}

const bit = (key, d) => (key[d >> 3] >> (7 - (d & 7))) & 1;

/** The subject-map root a proof gives for `key` (docs/proofs.md §2, "The subject map"). */
async function subjectRoot(proof, key) {
  const sib = proof.siblings.map((x) => unhexRaw(x));
  const t = proof.terminal;
  let h;
  if (t.type === "present") h = await sha256(u8(0), key, unhexRaw(t.value));
  else if (t.type === "empty") h = new Uint8Array(32);
  else {
    const other = unhexRaw(t.key);
    if (eq(other, key)) return { error: "the other key is the key itself" };
    for (let d = 0; d < sib.length; d++) if (bit(other, d) !== bit(key, d)) return { error: "the other key is off the path" };
    h = await sha256(u8(0), other, unhexRaw(t.value));
  }
  for (let d = sib.length - 1; d >= 0; d--) h = bit(key, d) ? await nodeHash(sib[d], h) : await nodeHash(h, sib[d]);
  return { root: h };
}

// ---------------------------------------------------------------------------
// The steps
// ---------------------------------------------------------------------------

class Ctx {
  constructor(genesis) {
    this.g = genesis;
    this.chain = genesis.chain;
    this.upto = 0n;
    /** The governance replayed from the file; the genesis alone until `replay`. */
    this.gov = new GovState(genesis.membership);
  }

  /** M(h), as replayed. */
  membership(h) { return this.gov.membershipAt(h); }

  /** Whether `key` was retired at or before the anchor, and when (a verdict's `retired`). */
  retired(key) {
    const r = retiredKey(this.membership(this.upto), key);
    return r ? { reason: r.reason, since: Number(r.since) } : null;
  }

  /** The issuer holding `key` at height `h` (frozen or not), as a verdict's Party. */
  issuerParty(h, key) {
    const i = issuerAny(this.membership(h), key);
    return { name: i ? i.name : "", region: i ? i.region : "", key: hex(key), retired: this.retired(key) };
  }

  /**
   * Steps 23-29: replays the governance section `section` from the genesis up to
   * height `upto` (the file's highest anchor); every anchor and transaction of the
   * file is then judged by the membership of its height.
   */
  async replay(field, section, upto) {
    const gov = this.gov;
    let last = 0n;
    for (let i = 0; i < section.length; i++) {
      const bf = `${field}[${i}]`;
      const gb = section[i];
      // Step 23: blocks in increasing height, none above the anchor.
      const header = this.header(`${bf}.block`, gb.block);
      const h = header.height;
      if (h <= last) fail("governance", `${bf}: block ${h} is not after the previous governance block ${last}`);
      if (h > upto) fail("governance", `${bf}: block ${h} is after the file's anchor (block ${upto})`);
      // Steps 24-25: the changes due by then, then the block certified by the
      // replayed validators and committing to the replayed membership.
      gov.advanceTo(h);
      const m = gov.membershipAt(h);
      await this.certify(`${bf}.block`, gb.block, header, m);
      if (gb.txs.length === 0) fail("governance", `${bf}: lists no transaction`);
      // Steps 26-28: each transaction checked and applied in position order.
      const block = gov.beginBlock(h);
      let previous = null;
      for (let j = 0; j < gb.txs.length; j++) {
        const tf = `${bf}.txs[${j}]`;
        const gt = gb.txs[j];
        if ((previous !== null && gt.position <= previous) || gt.position >= BigInt(header.tx_count)) {
          fail("governance", `${tf}: position ${gt.position} is not after the previous one and below the block's ${header.tx_count} transactions`);
        }
        previous = gt.position;
        const { tx, id } = await this.govTx(tf, gt, header, m);
        const why = block.apply(tx, hex(id), gt.position);
        if (why) fail("governance", `${tf}: ${tx.type} refused at height ${h}: ${why}`);
      }
      // Step 28: the changes taking effect at the next height.
      gov.apply(block.finish());
      last = h;
    }
    // Step 29.
    gov.advanceTo(upto);
    this.upto = upto;
  }

  /** Steps 26-27 for one transaction: canonical, a proposal or approval for this
   * chain signed by an agency of `m`, the signature, and inclusion at its position. */
  async govTx(field, gt, header, m) {
    const bytes = unhex(`${field}.tx`, gt.tx, MAX_TX_BYTES);
    const tx = decodeTx(bytes, `${field}.tx`);
    if (tx.bodyType !== 2 && tx.bodyType !== 3) fail("governance", `${field}.tx is not a governance proposal or approval: its type is ${tx.type}`);
    if (!eq(tx.chain, this.chain)) fail("governance", `${field}.tx at height ${header.height}: transaction is for chain ${hex(tx.chain)}, this chain is ${hex(this.chain)}`);
    if (!agencyOf(m, tx.issuer)) fail("governance", `${field}.tx at height ${header.height}: key ${hex(tx.issuer)} is not the governance key of any agency in force`);
    if (!(await ed25519Verify(tx.issuer, tx.signature, signingBytes("ledger/transaction", tx.payload)))) {
      fail("governance", `${field}.tx: the agency's signature does not verify`);
    }
    if (gt.inclusion.length > INCLUSION_PROOF_HASHES_MAX) {
      fail("governance", `${field}: inclusion proof has ${gt.inclusion.length} hashes, at most ${INCLUSION_PROOF_HASHES_MAX}`);
    }
    const first = header.log_size > BigInt(header.tx_count) ? header.log_size - BigInt(header.tx_count) : 0n;
    const index = first + gt.position;
    const why = await verifyInclusion(await sha256(u8(0), bytes), index, header.log_size, gt.inclusion.map((x) => unhexRaw(x)), header.log_root);
    if (why) fail("governance", `${field}: not at position ${gt.position} of block ${header.height} (log index ${index}): ${why}`);
    return { tx, id: await sha256(bytes) };
  }

  /** The proposals the replay found in force at the anchor, in the order applied. */
  applied() {
    return this.gov.appliedUpTo(this.upto).map((r) => ({
      proposal: r.id, proposer: r.proposer, summary: r.proposal.summary, approved_at: Number(r.outcome.height),
      effective: Number(r.outcome.effective), changes: r.proposal.changes.map(describe),
    }));
  }

  /** Steps 2-3. */
  header(field, a) {
    const hb = unhex(`${field}.header`, a.header, MAX_HEADER_BYTES);
    const header = decodeHeader(hb, `${field}.header`);
    if (!eq(header.chain, this.chain)) fail("chain", `${field}: header is for chain ${hex(header.chain)}, the genesis is chain ${hex(this.chain)}`);
    return header;
  }

  /** Steps 4-5 and 25: the certificate proves `header` final under the validators
   * of `m` (the membership in force at its height), and the header commits to `m`. */
  async certify(field, a, header, m) {
    const hash = await sha256(signingBytes("ledger/block-header", header.bytes));
    const cb = unhex(`${field}.certificate`, a.certificate, MAX_CERTIFICATE_BYTES);
    const cert = decodeCertificate(cb, `${field}.certificate`);
    const vals = m.validators;
    const n = vals.length;
    if (n === 0 || n > MAX_VALIDATORS) fail("governance", `${field}: the validators in force at height ${header.height} do not form a validator set`);
    const q = n - Math.floor((n - 1) / 3);
    const bad = (why) => fail("certificate", `${field}: the certificate does not prove block ${header.height} final under the ${n} validators in force at that height: ${why}`);
    if (cert.height !== header.height) bad(`height ${cert.height}, expected ${header.height}`);
    if (!eq(cert.block_hash, hash)) bad("it certifies another block");
    if (cert.signatures.length > MAX_VALIDATORS) bad("too many signatures");
    cert.signatures.forEach(([idx], pos) => {
      if (idx >= n) bad(`unknown signer ${idx}`);
      if (pos > 0 && cert.signatures[pos - 1][0] >= idx) bad(`signers unsorted or duplicate at ${pos}`);
    });
    if (cert.signatures.length < q) bad(`${cert.signatures.length} signatures, ${q} needed`);
    for (const [idx, sig] of cert.signatures) {
      // Vote { chain, Precommit (1), height, round, Some(block_hash), validator }
      const vote = concat(this.chain, u32be(1), u64be(cert.height), u32be(cert.round), u8(1), cert.block_hash, u32be(idx));
      if (!(await ed25519Verify(vals[idx].key, sig, signingBytes("consensus/vote", vote)))) bad(`bad signature of validator ${idx}`);
    }
    const replayed = await membershipHash(m);
    if (!eq(header.membership, replayed)) {
      fail("governance", `${field}: block ${header.height} commits to membership ${hex(header.membership)}, but the governance section gives ${hex(replayed)} at that height (a change is left out or added)`);
    }
    return { cert, hash };
  }

  /** Steps 1-5 for one anchor. */
  async anchor(field, a) {
    const header = this.header(field, a);
    if (header.height > this.upto) fail("governance", `${field}: block ${header.height} is after block ${this.upto}, the highest the governance section is replayed to`);
    const m = this.membership(header.height);
    const { cert, hash } = await this.certify(field, a, header, m);
    const signers = cert.signatures.map(([i]) => {
      const v = m.validators[i];
      return { name: v.name, region: v.region, key: hex(v.key), retired: this.retired(v.key) };
    });
    return { header, info: { height: Number(header.height), hash: hex(hash), time_ms: Number(header.timestamp_ms), log_size: Number(header.log_size), signers } };
  }

  /** Steps 6-8. */
  async tx(field, hexed, txCheck) {
    const bytes = unhex(field, hexed, MAX_TX_BYTES);
    const tx = decodeTx(bytes, field);
    const check = txCheck || "transaction";
    if (!eq(tx.chain, this.chain)) fail(check, `${field}: transaction is for chain ${hex(tx.chain)}, this chain is ${hex(this.chain)}`);
    if (tx.bodyType === 2 || tx.bodyType === 3) fail(check, `${field} is a governance ${tx.type}, not a credit record`);
    const why = formatProblem(tx);
    if (why) fail(check, `${field}: malformed ${tx.type}: ${why}`);
    if (!(await ed25519Verify(tx.issuer, tx.signature, signingBytes("ledger/transaction", tx.payload)))) {
      fail(txCheck || "issuer-signature", `${field}: the signature of issuer ${this.keyName(tx.issuer)} does not verify`);
    }
    // A query record: every entry's request is signed by its lender for the
    // recording node (`SignedTransaction::verify_signature`).
    if (tx.bodyType === 6) {
      for (let e = 0; e < tx.body.entries.length; e++) {
        const rq = tx.body.entries[e].request;
        const { payload } = requestBytes(this.chain, tx.issuer, rq);
        if (!(await ed25519Verify(rq.key, rq.signature, signingBytes("api/request", payload)))) {
          fail("query-record", `${field}: entry ${e}: the lender's signature over its request to node ${this.keyName(tx.issuer)} does not verify`);
        }
      }
    }
    const id = await sha256(bytes);
    return { tx, id, bytes };
  }

  /** The name of the issuer that ever held `key`, for messages. */
  keyName(key) {
    for (const [, m] of this.gov.timeline) { const i = issuerAny(m, key); if (i) return JSON.stringify(i.name); }
    return hex(key);
  }

  /** Step 30 (check_stateless with the membership `m` of the height). */
  inForceProblem(m, tx) {
    if (!eq(tx.chain, this.chain)) return "wrong chain";
    if (tx.bodyType === 2 || tx.bodyType === 3) return agencyOf(m, tx.issuer) ? null : "not an agency";
    if (tx.bodyType >= 4) return "a consent or query record is not a credit record";
    const issuer = issuerOf(m, tx.issuer);
    if (!issuer) {
      const r = retiredKey(m, tx.issuer);
      return r ? `key ${hex(tx.issuer)} of ${r.name} was ${r.reason} at height ${r.since}` : `key ${hex(tx.issuer)} is not an issuer in force`;
    }
    const why = formatProblem(tx);
    if (why) return why;
    if (tx.bodyType === 0 && !issuer.kinds.includes(tx.body.kind)) return `issuer ${issuer.name} may not issue ${tx.body.kind}`;
    return null;
  }
  inForce(field, tx, h, check) { const why = this.inForceProblem(this.membership(h), tx); if (why) fail(check, `${field}: at height ${h}: ${why}`); }
  /** Whether `m` lets the revocation's signer revoke an attestation of the issuer named `targetIssuer`. */
  mayRevoke(m, tx, targetIssuer) {
    const why = this.inForceProblem(m, tx);
    if (why) return why;
    const revoker = issuerOf(m, tx.issuer);
    if (revoker.name !== targetIssuer && !revoker.may_revoke_any) return `issuer ${revoker.name} may not revoke an attestation of issuer ${targetIssuer}`;
    return null;
  }
  /** Step 31: some height `h` with `after < h <= upto` lets the signer revoke; returns the first. */
  revokerHeight(field, tx, targetIssuer, after) {
    const first = after + 1n;
    const starts = [first, ...this.gov.timeline.map(([h]) => h).filter((h) => h > first && h <= this.upto)];
    let why = `block ${after} is the anchor: there is no later height`;
    for (const h of starts.filter((x) => x <= this.upto)) {
      const e = this.mayRevoke(this.membership(h), tx, targetIssuer);
      if (!e) return h;
      why = `at height ${h}: ${e}`;
    }
    return fail("revocation", `${field}: at no height from ${first} to ${this.upto} could the signer revoke this attestation (${why})`);
  }

  async inclusion(field, inc, bytes, header, check) {
    const path = inc.inclusion.map((x) => unhexRaw(x));
    if (path.length > INCLUSION_PROOF_HASHES_MAX) fail(check, `${field}: inclusion proof has ${path.length} hashes, at most ${INCLUSION_PROOF_HASHES_MAX}`);
    const why = await verifyInclusion(await sha256(u8(0), bytes), inc.log_index, header.log_size, path, header.log_root);
    if (why) fail(check, `${field}: not leaf ${inc.log_index} of the log of size ${header.log_size} in block ${header.height}: ${why}`);
  }

  /** Steps 11-12. */
  async record(field, hexed, proof, subject, header) {
    const bytes = unhex(field, hexed, MAX_SUBJECT_RECORD_BYTES);
    const record = decodeRecordPage(bytes, field);
    if (record.subject !== subject) fail("subject-map", `${field} is about ${record.subject}, not ${subject}`);
    if (proof.siblings.length > SUBJECT_PROOF_SIBLINGS_MAX) fail("subject-map", "subject-map proof has more than 256 siblings");
    const commitments = [];
    for (const e of record.entries) commitments.push(e.redacted ? e.redacted : await sha256(signingBytes("ledger/subject-entry", e.bytes)));
    const page = await pageRoot(record.count, record.from, commitments, record.proof);
    if (page.error) fail("subject-map", `${field}: malformed page: ${page.error}`);
    record.root = page.root;
    const value = await sha256(signingBytes("ledger/subject-record", concat(TE.encode(subject), u64be(record.count), page.root)));
    const key = await sha256(TE.encode(subject));
    const notIn = (m) => fail("subject-map", `the record of ${subject} is not in the subject map of block ${header.height}: ${m}`);
    if (proof.terminal.type !== "present") notIn("the proof shows absence");
    if (!eq(unhexRaw(proof.terminal.value), value)) notIn("value mismatch");
    const r = await subjectRoot(proof, key);
    if (r.error) notIn(r.error);
    if (!eq(r.root, header.subjects_root)) notIn("root mismatch");
    return record;
  }

  /** Steps 9-10, 13-14 for one attestation against its record. */
  async attestation(field, inc, [revField, revGiven], header, recordOf, expectedId, nowMs) {
    const { tx, id, bytes } = await this.tx(`${field}.tx`, inc.tx, null);
    if (tx.bodyType !== 0) fail("transaction", `${field}.tx is a ${tx.type}, not an attestation`);
    const a = tx.body;
    if (expectedId && !eq(id, expectedId)) fail("completeness", `${field} is ${hex(id)}, the record lists ${hex(expectedId)} here`);
    await this.inclusion(field, inc, bytes, header, "log-inclusion");
    const record = await recordOf(a.subject);
    const entry = record.entries.find((e) => !e.redacted && eq(e.id, id));
    if (!entry) fail("status", `the subject record of ${a.subject} does not show attestation ${hex(id)}`);
    if (!eq(entry.issuer, tx.issuer) || entry.kind !== a.kind || entry.valid_until_ms !== a.valid_until_ms) {
      fail("status", `the record entry for ${hex(id)} differs from the transaction (issuer, kind or validity)`);
    }
    if (entry.height === 0n || entry.height > header.height) fail("status", `the record says ${hex(id)} was committed at height ${entry.height}, outside 1..=${header.height}`);
    this.inForce(`${field}.tx`, tx, entry.height, "transaction");
    const now = BigInt(nowMs);
    let status;
    if (entry.revoked) status = { state: "revoked", by: hex(entry.revoked.id), reason: entry.revoked.reason };
    else if (now < a.valid_from_ms) status = { state: "not-yet-valid" };
    else if (a.valid_until_ms !== null && a.valid_until_ms <= now) status = { state: "expired" };
    else status = { state: "active" };
    const revocation = await this.revocation(revField, entry, revGiven, tx, header);
    return {
      id: hex(id), issuer: this.issuerParty(entry.height, tx.issuer),
      sequence: Number(tx.sequence), subject: a.subject, kind: a.kind, grade: a.grade, severity: a.severity, evidence: hex(a.evidence),
      issued_at_ms: Number(a.issued_at_ms), valid_from_ms: Number(a.valid_from_ms), valid_until_ms: a.valid_until_ms === null ? null : Number(a.valid_until_ms),
      fields: a.fields, height: Number(entry.height), log_index: Number(inc.log_index), status, revocation,
    };
  }

  async revocation(rf, entry, given, target, header) {
    if (!entry.revoked && !given) return null;
    if (!entry.revoked) fail("revocation", `${rf} is given but the record says ${hex(entry.id)} is not revoked`);
    if (!given) fail("revocation", `the record says ${hex(entry.id)} is revoked by ${hex(entry.revoked.id)}, but ${rf} is missing`);
    const { tx, id, bytes } = await this.tx(`${rf}.tx`, given.tx, "revocation");
    if (!eq(id, entry.revoked.id)) fail("revocation", `${rf}.tx is ${hex(id)}, the record says revoked by ${hex(entry.revoked.id)}`);
    if (tx.bodyType !== 1) fail("revocation", `${rf}.tx is not a revocation`);
    if (!eq(tx.body.target, entry.id)) fail("revocation", `${rf}.tx revokes ${hex(tx.body.target)}, not ${hex(entry.id)}`);
    if (tx.body.reason !== entry.revoked.reason) fail("revocation", `${rf}.tx gives reason ${tx.body.reason}, the record says ${entry.revoked.reason}`);
    const targetIssuer = this.issuerParty(entry.height, target.issuer).name;
    const at = this.revokerHeight(`${rf}.tx`, tx, targetIssuer, entry.height);
    await this.inclusion(rf, given, bytes, header, "revocation");
    return { id: hex(id), reason: tx.body.reason, by: this.issuerParty(at, tx.issuer),
      evidence: tx.body.evidence ? hex(tx.body.evidence) : null, issued_at_ms: Number(tx.body.issued_at_ms), log_index: Number(given.log_index) };
  }
}

/** `SignedRequest::check_format` (sizes and characters of a lender's request), or null. */
function requestProblem(r) {
  if (!/^[A-Z]+$/.test(r.method) || r.method.length > MAX_METHOD_BYTES) return `method ${JSON.stringify(r.method)} must be 1 to ${MAX_METHOD_BYTES} upper-case letters`;
  const n = TE.encode(r.path).length;
  if (!r.path.startsWith("/") || n > MAX_REQUEST_PATH_BYTES) return `path must start with '/' and be at most ${MAX_REQUEST_PATH_BYTES} bytes (it is ${n})`;
  if (!/^[\x21-\x7e]*$/.test(r.path)) return "path must be printable ASCII (percent-encode the rest)";
  return null;
}

/** Step 7's well-formedness (Transaction::check_format), or null. */
function formatProblem(tx) {
  if (tx.bodyType === 6) {
    const es = tx.body.entries;
    if (es.length === 0 || es.length > MAX_QUERY_ENTRIES) return `${es.length} entries, 1 to ${MAX_QUERY_ENTRIES} allowed`;
    for (let i = 0; i < es.length; i++) {
      const why = requestProblem(es[i].request);
      if (why) return `entry ${i}: ${why}`;
    }
    return null;
  }
  if (tx.bodyType !== 0) {
    if (tx.bodyType === 4) {
      const b = tx.body;
      return b.valid_until_ms <= b.issued_at_ms ? "authorisation ends before it starts" : null;
    }
    return null;
  }
  const a = tx.body;
  const grades = { "credit-rating": ["A", "B", "C", "D"], "tax-credit": ["A", "B", "M", "C", "D"] }[a.kind] || [];
  if (a.grade === null && grades.length) return `${a.kind} needs a grade`;
  if (a.grade !== null && !grades.includes(a.grade)) return `grade ${a.grade} not allowed for ${a.kind}`;
  if (a.severity !== null && !["administrative-penalty", "serious-dishonesty", "court-enforcement"].includes(a.kind)) return `${a.kind} has no severity`;
  if (a.valid_until_ms !== null && a.valid_until_ms <= a.valid_from_ms) return "empty validity";
  if (a.fields.length > 8) return "more than 8 fields";
  for (let i = 0; i < a.fields.length; i++) {
    const [n, v] = a.fields[i];
    const nb = TE.encode(n).length;
    if (nb < 1 || nb > 32 || !/^[a-z0-9_-]+$/.test(n)) return `bad field name ${JSON.stringify(n)}`;
    if (TE.encode(v).length > 256) return `field ${n} too long`;
    if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return `field ${n} has control characters`;
    if (i > 0 && !(a.fields[i - 1][0] < n)) return `fields not sorted at ${n}`;
  }
  return null;
}

function checkFormat(kind, version, expected) {
  if (kind !== expected) fail("format", `type is ${JSON.stringify(kind)}, expected ${JSON.stringify(expected)}`);
  if (version !== FORMAT_VERSION) fail("format", `version ${version} is not supported (this verifier reads version 4)`);
}

/** The context of a file with one anchor: its header decoded (steps 2-3), then the
 * governance section replayed up to its height (steps 23-29). */
async function ctxFor(genesis, field, anchor, govField, gov) {
  const ctx = new Ctx(genesis);
  const header = ctx.header(field, anchor);
  await ctx.replay(govField, gov, header.height);
  return ctx;
}

async function bundleWith(ctx, b, nowMs) {
  const { header, info } = await ctx.anchor("anchor", b.anchor);
  const recordOf = (subject) => ctx.record("subject.record", b.subject.record, b.subject.proof, subject, header);
  const attestation = await ctx.attestation("attestation", b.attestation, ["revocation", b.revocation], header, recordOf, null, nowMs);
  return { type: "yrd-proof-bundle", chain_name: ctx.g.chain_name, chain_id: hex(ctx.chain), anchor: info, attestation, governance: ctx.applied() };
}

async function verifyBundle(g, b, nowMs) {
  checkFormat(b.type, b.version, "yrd-proof-bundle");
  const ctx = await ctxFor(g, "anchor", b.anchor, "governance", b.governance);
  return bundleWith(ctx, b, nowMs);
}

async function verifyReport(g, r, nowMs) {
  checkFormat(r.type, r.version, "yrd-subject-report");
  const canon = r.subject.trim().replace(/[\s-]/g, "").toUpperCase();
  const why = usccProblem(canon);
  if (why) fail("decode", `subject ${JSON.stringify(r.subject)}: ${why}`);
  if (canon !== r.subject) fail("decode", `subject ${JSON.stringify(r.subject)} is not in canonical form (${canon})`);
  const subject = canon;
  const ctx = await ctxFor(g, "anchor", r.anchor, "governance", r.governance);
  const { header, info } = await ctx.anchor("anchor", r.anchor);
  const key = await sha256(TE.encode(subject));
  const out = { type: "yrd-subject-report", chain_name: g.chain_name, chain_id: hex(ctx.chain), subject, anchor: info,
    count: 0, from: 0, to: 0, complete: true, entries_root: null, attestations: [], redacted: [], governance: ctx.applied() };
  if (r.record === null) {
    if (r.proof.siblings.length > SUBJECT_PROOF_SIBLINGS_MAX) fail("subject-map", "subject-map proof has more than 256 siblings");
    const absent = (m) => fail("subject-map", `no proof that ${subject} is absent from the subject map of block ${header.height}: ${m}`);
    if (r.proof.terminal.type === "present") absent("the proof shows presence");
    const res = await subjectRoot(r.proof, key);
    if (res.error) absent(res.error);
    if (!eq(res.root, header.subjects_root)) absent("root mismatch");
    if (r.entries.length !== 0) fail("completeness", `the subject has no record, but the report carries ${r.entries.length} entries`);
    return out;
  }
  const record = await ctx.record("record", r.record, r.proof, subject, header);
  if (r.entries.length !== record.entries.length) fail("completeness", `the record page lists ${record.entries.length} attestations, the report carries ${r.entries.length}`);
  const to = record.from + BigInt(record.entries.length);
  Object.assign(out, { count: Number(record.count), from: Number(record.from), to: Number(to),
    complete: record.from === 0n && to === record.count, entries_root: hex(record.root) });
  for (let i = 0; i < record.entries.length; i++) {
    const field = `entries[${i}]`;
    const e = record.entries[i];
    const given = r.entries[i];
    const givenRedacted = "redacted" in given;
    if (e.redacted && givenRedacted) {
      if (!eq(e.redacted, unhexRaw(given.redacted))) fail("completeness", `${field} is redacted as ${given.redacted}, the record has commitment ${hex(e.redacted)} here`);
      out.redacted.push({ position: Number(record.from) + i, commitment: hex(e.redacted) });
      continue;
    }
    if (e.redacted) fail("completeness", `${field} is given in full, but the record has only a commitment here`);
    if (givenRedacted) fail("completeness", `${field} is redacted, but the record shows attestation ${hex(e.id)} here`);
    const recordOf = async (s) => (s === subject ? record : fail("completeness", `${field} is about ${s}, not ${subject}`));
    out.attestations.push(await ctx.attestation(`${field}.attestation`, given.attestation, [`${field}.revocation`, given.revocation], header, recordOf, e.id, nowMs));
  }
  return out;
}

async function verifyBlockTx(ctx, field, bt, check) {
  const { header, info } = await ctx.anchor(`${field}.block`, bt.block);
  const { tx, id, bytes } = await ctx.tx(`${field}.tx`, bt.included.tx, check === "revocation" ? "revocation" : null);
  const first = header.log_size > BigInt(header.tx_count) ? header.log_size - BigInt(header.tx_count) : 0n;
  const incCheck = check === "revocation" ? "revocation" : "log-inclusion";
  if (bt.included.log_index < first || bt.included.log_index >= header.log_size) {
    fail(incCheck, `${field}: log index ${bt.included.log_index} is not in block ${header.height} (its leaves are ${first}..${header.log_size})`);
  }
  await ctx.inclusion(field, bt.included, bytes, header, incCheck);
  return { header, info, tx, id };
}

async function verifyTrace(g, t, nowMs) {
  checkFormat(t.type, t.version, "yrd-audit-trace");
  checkFormat(t.current.type, t.current.version, "yrd-proof-bundle");
  const ctx = await ctxFor(g, "current.anchor", t.current.anchor, "current.governance", t.current.governance);
  const o = await verifyBlockTx(ctx, "origin", t.origin, "transaction");
  if (o.tx.bodyType !== 0) fail("transaction", "origin.tx is a revocation, not an attestation");
  ctx.inForce("origin.tx", o.tx, o.header.height, "transaction");
  const originIssuer = ctx.issuerParty(o.header.height, o.tx.issuer).name;
  const revocations = [];
  const revIds = [];
  for (let i = 0; i < t.revocations.length; i++) {
    const field = `revocations[${i}]`;
    const r = await verifyBlockTx(ctx, field, t.revocations[i], "revocation");
    if (r.tx.bodyType !== 1) fail("revocation", `${field}.tx is not a revocation`);
    if (!eq(r.tx.body.target, o.id)) fail("revocation", `${field}.tx revokes ${hex(r.tx.body.target)}, not ${hex(o.id)}`);
    if (r.header.height <= o.header.height) fail("revocation", `${field} is in block ${r.header.height}, not after block ${o.header.height}`);
    const why = ctx.mayRevoke(ctx.membership(r.header.height), r.tx, originIssuer);
    if (why) fail("revocation", `${field}.tx at height ${r.header.height}: ${why}`);
    revocations.push(r.info);
    revIds.push(hex(r.id));
  }
  const current = await bundleWith(ctx, t.current, nowMs);
  const ca = current.attestation;
  if (ca.id !== hex(o.id) || BigInt(ca.height) !== o.header.height || BigInt(ca.log_index) !== t.origin.included.log_index) {
    fail("provenance", "the current-status bundle is about another attestation or place than the origin");
  }
  const revokedBy = ca.revocation ? [ca.revocation.id] : [];
  if (revokedBy.length !== revIds.length || revokedBy.some((x, i) => x !== revIds[i])) {
    fail("revocation", `the trace lists ${revIds.length} revocation(s), the current record names ${revokedBy.length}`);
  }
  if (revocations.some((r) => r.height > current.anchor.height)) fail("provenance", "a revocation is after the current-status anchor");
  delete current.type;
  return { type: "yrd-audit-trace", origin: o.info, revocations, current, chain_name: current.chain_name, chain_id: current.chain_id, anchor: current.anchor };
}

async function verifyConsistencyFile(g, c) {
  checkFormat(c.type, c.version, "yrd-consistency-proof");
  const ctx = new Ctx(g);
  const a = ctx.header("from", c.from).height;
  const b = ctx.header("to", c.to).height;
  await ctx.replay("governance", c.governance, a > b ? a : b);
  const from = await ctx.anchor("from", c.from);
  const to = await ctx.anchor("to", c.to);
  if (from.header.height > to.header.height) fail("consistency", `from is block ${from.header.height}, after to (block ${to.header.height})`);
  if (from.header.height === to.header.height && !eq(from.header.bytes, to.header.bytes)) fail("consistency", `two different certified headers at height ${from.header.height}`);
  const why = await verifyConsistency(from.header.log_size, to.header.log_size, from.header.log_root, to.header.log_root, c.proof.map((x) => unhexRaw(x)));
  if (why) fail("consistency", `the log of block ${to.header.height} does not provably extend the log of block ${from.header.height}: ${why}`);
  return { type: "yrd-consistency-proof", chain_name: g.chain_name, chain_id: hex(ctx.chain), from: from.info, to: to.info, anchor: to.info,
    from_log_root: hex(from.header.log_root), to_log_root: hex(to.header.log_root), governance: ctx.applied() };
}

/** `canonical(SignedRequest)` without its signature, and the payload the lender signed (§4.2 step 6). */
/** A lender's request to `node`: the bytes it signed (`RequestPayload`: chain,
 * node, then the request's fields) and its canonical bytes as stored. */
function requestBytes(chain, node, r) {
  const fields = concat(encStr(r.method), encStr(r.path), r.body, u64be(r.timestamp_ms), r.nonce);
  return { payload: concat(chain, node, fields), record: concat(r.key, fields, r.signature) };
}

/** `Uscc::parse`: a USCC as people type it (§1.1) — ASCII white space trimmed,
 * spaces and hyphens dropped, upper-cased — then checked: `{ uscc }` or `{ error }`. */
function parseUscc(input) {
  let out = "";
  for (const c of input.replace(/^[ \t\n\f\r]+|[ \t\n\f\r]+$/g, "")) {
    if (c === " " || c === "-") continue;
    if (c.codePointAt(0) > 0x7f) return { error: `non-ASCII character ${JSON.stringify(c)}` };
    out += c.toUpperCase();
  }
  const why = usccProblem(out);
  return why ? { error: why } : { uscc: out };
}

/** §4.2: who read a subject's restricted records (`proof_queries::verify_query_audit`). */
async function verifyQueryAudit(g, q) {
  checkFormat(q.type, q.version, "yrd-query-audit");
  const subject = parseUscc(q.subject);
  if (subject.error) fail("format", `subject ${JSON.stringify(q.subject)}: ${subject.error}`);
  const ctx = await ctxFor(g, "anchor", q.anchor, "governance", q.governance);
  const { info: anchor } = await ctx.anchor("anchor", q.anchor);
  const seen = new Set();
  let lastHeight = 0n;
  const queries = [];
  for (let i = 0; i < q.records.length; i++) {
    const field = `records[${i}]`;
    const r = q.records[i];
    const { header, info, tx, id } = await verifyBlockTx(ctx, `${field}.record`, r.record, "transaction");
    const h = header.height;
    if (h < lastHeight) fail("format", `${field} is in block ${h}, before the previous record's block ${lastHeight}`);
    lastHeight = h;
    if (tx.bodyType !== 6) fail("query-record", `${field}.record is a ${tx.type}, not a query record`);
    const m = ctx.membership(h);
    const nodeOf = m.validators.find((v) => eq(v.key, tx.issuer)) || m.observers.find((o) => eq(o.key, tx.issuer));
    if (!nodeOf) fail("query-record", `${field}.record is signed by ${hex(tx.issuer)}, not a validator or observer in force at height ${h}`);
    if (r.entries.length === 0) fail("format", `${field}.entries is empty`);
    for (const e of r.entries) {
      const at = `${field}.entries[${e}]`;
      const entry = tx.body.entries[Number(e)];
      if (!entry) fail("query-record", `${at}: the record holds ${tx.body.entries.length} entries`);
      const key = `${hex(id)}/${e}`;
      if (seen.has(key)) fail("format", `${at} is listed twice`);
      seen.add(key);
      if (entry.subject !== subject.uscc) fail("query-record", `${at} is about ${entry.subject}, not ${subject.uscc}`);
      const rq = entry.request;
      const inForce = m.lenders.find((l) => eq(l.key, rq.key));
      const retired = (() => { const x = retiredKey(m, rq.key); return x && x.role === "lender" ? x : null; })();
      const lender = inForce || retired;
      if (!lender) fail("query-record", `${at}: request key ${hex(rq.key)} is not a lender's key at height ${h}`);
      // A key retired more than RETIRED_KEY_GRACE_BLOCKS before the height the
      // request was served at could not have been served (consent::request_lender).
      if (!inForce && !(BigInt(entry.height) < BigInt(retired.since) + RETIRED_KEY_GRACE_BLOCKS)) {
        fail("query-record", `${at}: key ${hex(rq.key)} of lender ${JSON.stringify(retired.name)} was retired at height ${retired.since}, more than ${RETIRED_KEY_GRACE_BLOCKS} blocks before the height ${entry.height} the request was served at`);
      }
      const why = requestProblem(rq);
      if (why) fail("query-record", `${at}: ${why}`);
      // Its signature was verified with the record's (Ctx.tx: every entry).
      const { record } = requestBytes(ctx.chain, tx.issuer, rq);
      if (entry.height >= h || h > entry.height + MAX_RECORD_LAG_BLOCKS) {
        fail("query-record", `${at}: served at height ${entry.height} and recorded at ${h} (at most ${MAX_RECORD_LAG_BLOCKS} blocks later)`);
      }
      queries.push({ height: Number(h), block_time_ms: info.time_ms, record: hex(id), entry: Number(e), node: nodeOf.name, lender: lender.name,
        lender_key: hex(rq.key), request: hex(await sha256(record)), method: rq.method, path: rq.path,
        requested_at_ms: Number(rq.timestamp_ms), authorisation: hex(entry.authorisation), response: hex(entry.response),
        served_at_ms: Number(entry.served_at_ms), served_height: Number(entry.height) });
    }
  }
  return { type: "yrd-query-audit", chain_name: g.chain_name, chain_id: hex(ctx.chain), subject: subject.uscc, anchor, queries,
    next_from: q.next_from === null ? null : Number(q.next_from) };
}

/**
 * Verifies a proof file against a genesis, both given as text, at `nowMs`.
 * Returns `{verified: true, verdict}` or `{verified: false, check, error}`, where
 * `check` is the name `yrd verify --json` gives ("format", "decode", "chain", ...),
 * "genesis" for a genesis it refuses, or "unsupported" when the browser lacks WebCrypto.
 */
export async function verifyFile(fileText, genesisText, nowMs) {
  try {
    const genesis = await readGenesis(genesisText);
    if (fileText.length > MAX_FILE_BYTES) fail("format", `file is more than the ${MAX_FILE_BYTES}-byte limit`);
    const file = parseStrictJson(fileText);
    if (!isObj(file)) fail("format", "not a JSON object");
    const kind = typeof file.type === "string" ? file.type : "";
    let verdict;
    switch (kind) {
      case "yrd-proof-bundle": bundleShape(file); verdict = await verifyBundle(genesis, file, nowMs); break;
      case "yrd-subject-report": reportShape(file); verdict = await verifyReport(genesis, file, nowMs); break;
      case "yrd-audit-trace": traceShape(file); verdict = await verifyTrace(genesis, file, nowMs); break;
      case "yrd-consistency-proof": consistencyShape(file); verdict = await verifyConsistencyFile(genesis, file); break;
      case "yrd-query-audit": queryAuditShape(file); verdict = await verifyQueryAudit(genesis, file); break;
      default: fail("format", `unknown file type ${JSON.stringify(kind)}`);
    }
    return { verified: true, verdict };
  } catch (e) {
    if (e instanceof Fail) return { verified: false, check: e.check, error: e.message };
    return { verified: false, check: "internal", error: String(e && e.stack ? e.stack : e) };
  }
}
