// The governance replay of docs/proofs.md §4.1 (rules G1–G7): how the membership
// in force at every height follows from the genesis and the governance blocks a
// proof file carries. A port of ledger/src/governance.rs (`Membership::apply`,
// `GovState`, `BlockGov`), used by verify.js for steps 23–29.
//
// Pure and synchronous: no hashing, no signatures (verify.js checks those). A rule
// that refuses returns the reason as a string; verify.js reports it under the
// check "governance", as `yrd verify` does.
//
// Values: keys are Uint8Array(32); heights and parameters BigInt; a change is the
// decoded `Change` with `t` its variant index (docs/proofs.md §1).

import { keyProblem } from "./ed25519.js";

/** Most changes in one proposal (G2). */
export const MAX_CHANGES = 16;
/** Longest proposal summary, in UTF-8 bytes (G2). */
export const MAX_SUMMARY_BYTES = 256;
/** Most validators a membership may have (G7). */
const MAX_MEMBER_VALIDATORS = 16;
/** Most retired keys a membership keeps (G7). */
const MAX_RETIRED_KEYS = 4096;
/** Genesis limits, also applied by G7. */
const MAX_AGENCIES = 64;
const MAX_ISSUERS = 1024;
const MAX_OBSERVERS = 1024;
const MAX_LENDERS = 4096;
export const U64_MAX = (1n << 64n) - 1n;

export const ROLES = ["agency", "validator", "issuer", "observer", "lender"];
export const RETIRE_REASONS = ["removed", "rotated", "frozen"];
export const CHANGE = {
  AddAgency: 0, RemoveAgency: 1, RotateAgencyKey: 2, AddValidator: 3, RemoveValidator: 4, RotateValidatorKey: 5,
  AddIssuer: 6, RemoveIssuer: 7, RotateIssuerKey: 8, SetIssuerRights: 9, FreezeIssuer: 10, AddObserver: 11,
  RemoveObserver: 12, SetParams: 13, AddLender: 14, RemoveLender: 15, RotateLenderKey: 16,
};
const KIND_ORDER = ["red-list", "serious-dishonesty", "administrative-penalty", "credit-rating", "tax-credit", "court-enforcement", "commitment"];

const TE = new TextEncoder();
const hexOf = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const keq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const short = (k) => hexOf(k).slice(0, 12);
/** Unicode category Cc. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const EDGE_SPACE = /^\p{White_Space}|\p{White_Space}$/u;

// ---------------------------------------------------------------------------
// Canonical encoding of a Membership (docs/proofs.md §1): what headers commit to
// ---------------------------------------------------------------------------

function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
function u32(n) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, Number(n)); return b; }
function u64(n) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n)); return b; }
const str = (s) => { const b = TE.encode(s); return concat([u64(b.length), b]); };
const vec = (xs, f) => concat([u64(xs.length), ...xs.map(f)]);
const kinds = (ks) => vec(ks, (k) => u32(KIND_ORDER.indexOf(k)));

export function encodeParams(p) {
  const g = p.governance;
  return concat([u32(p.max_block_txs), u32(p.max_block_bytes), u32(g.approval_num), u32(g.approval_den),
    u64(g.activation_delay_blocks), u64(g.max_proposal_ttl_blocks), kinds(p.restricted_kinds)]);
}
export const encodeAgency = (a) => concat([str(a.name), str(a.region), a.key]);
export const encodeIssuer = (i) => concat([str(i.name), str(i.region), i.key, kinds(i.kinds), Uint8Array.of(i.may_revoke_any ? 1 : 0)]);
export const encodeObserver = (o) => concat([str(o.name), o.key]);
export const encodeLender = (l) => concat([str(l.name), str(l.sponsor), l.key]);
const encodeRetired = (r) => concat([r.key, u32(ROLES.indexOf(r.role)), str(r.name), u64(r.since), u32(RETIRE_REASONS.indexOf(r.reason))]);

/** `canonical(Membership)`: the bytes its hash (`ledger/membership`) is over. */
export function encodeMembership(m) {
  return concat([encodeParams(m.params), vec(m.agencies, encodeAgency), vec(m.validators, encodeAgency), vec(m.issuers, encodeIssuer),
    vec(m.frozen, str), vec(m.observers, encodeObserver), vec(m.retired, encodeRetired), vec(m.lenders, encodeLender)]);
}

// ---------------------------------------------------------------------------
// The membership and G7 (one change)
// ---------------------------------------------------------------------------

/** The membership M₀ of a genesis (frozen and retired empty). */
export function genesisMembership(g) {
  return { params: g.params, agencies: g.agencies, validators: g.validators, issuers: g.issuers, frozen: [],
    observers: g.observers, retired: [], lenders: g.lenders };
}

const copy = (m) => ({ ...m, agencies: [...m.agencies], validators: [...m.validators], issuers: [...m.issuers], frozen: [...m.frozen],
  observers: [...m.observers], retired: [...m.retired], lenders: [...m.lenders] });

export const isFrozen = (m, name) => m.frozen.includes(name);
/** The issuer whose current, unfrozen key is `key`. */
export const issuerOf = (m, key) => m.issuers.find((i) => keq(i.key, key) && !isFrozen(m, i.name)) || null;
/** The issuer whose current key is `key`, frozen or not. */
export const issuerAny = (m, key) => m.issuers.find((i) => keq(i.key, key)) || null;
export const agencyOf = (m, key) => m.agencies.find((a) => keq(a.key, key)) || null;
export const retiredKey = (m, key) => m.retired.find((r) => keq(r.key, key)) || null;

/** The name rule of docs/proofs.md §4.1 (G7), or why it fails. */
function nameProblem(what, name) {
  const n = [...name].length;
  if (n < 1 || n > 64 || CONTROL.test(name) || EDGE_SPACE.test(name)) return `invalid ${what} name ${JSON.stringify(name)}`;
  return null;
}
function kindsProblem(ks) {
  if (ks.length === 0) return "an issuer must be allowed at least one kind";
  for (let i = 1; i < ks.length; i++) if (KIND_ORDER.indexOf(ks[i]) <= KIND_ORDER.indexOf(ks[i - 1])) return "kinds must be sorted and unique";
  return null;
}
/** `ChainParams::validate` (the ranges of `SetParams`). */
export function paramsProblem(p) {
  const g = p.governance;
  if (p.max_block_txs < 1n || p.max_block_txs > 100000n) return `max_block_txs = ${p.max_block_txs} must be 1..=100000`;
  if (p.max_block_bytes < 65536n || p.max_block_bytes > 16777216n) return `max_block_bytes = ${p.max_block_bytes} must be 65536..=16777216`;
  if (g.approval_den === 0n || g.approval_num >= g.approval_den) return `governance approval threshold ${g.approval_num}/${g.approval_den} must be a fraction below 1`;
  if (g.approval_den > 1000n) return `governance approval_den = ${g.approval_den} must be at most 1000`;
  if (g.activation_delay_blocks < 2n || g.activation_delay_blocks > 10000n) return `governance activation_delay_blocks = ${g.activation_delay_blocks} must be 2..=10000`;
  if (g.max_proposal_ttl_blocks < 1n || g.max_proposal_ttl_blocks > 100000000n) return `governance max_proposal_ttl_blocks = ${g.max_proposal_ttl_blocks} must be 1..=100000000`;
  for (let i = 1; i < p.restricted_kinds.length; i++) {
    if (KIND_ORDER.indexOf(p.restricted_kinds[i]) <= KIND_ORDER.indexOf(p.restricted_kinds[i - 1])) return "restricted_kinds must be sorted and unique";
  }
  return null;
}

function holder(m, key) {
  for (const [role, list] of [["agency", m.agencies], ["validator", m.validators], ["issuer", m.issuers], ["observer", m.observers], ["lender", m.lenders]]) {
    const x = list.find((y) => keq(y.key, key));
    if (x) return `${role} ${JSON.stringify(x.name)}`;
  }
  return null;
}
function newKeyProblem(m, key) {
  const weak = keyProblem(key);
  if (weak) return `key cannot be used: ${weak}`;
  const h = holder(m, key);
  if (h) return `key ${hexOf(key)} is already in use by ${h}`;
  const r = retiredKey(m, key);
  if (r) return `key ${hexOf(key)} was retired at height ${r.since} (${r.reason} ${r.role} ${JSON.stringify(r.name)}) and can never be used again`;
  return null;
}
// G4: whether an approval still counts: its agency is in force and no rotation of
// that agency's key took effect after the approval (governance.rs `approval_counts`).
function approvalCounts(m, e) {
  return m.agencies.some((a) => a.name === e.agency)
    && !m.retired.some((r) => r.role === "agency" && r.reason === "rotated" && r.name === e.agency && r.since > e.height);
}

// Whether a member of `role` named `name` was removed (its retired key says so):
// removed agency, issuer and lender names are never reused.
function removedName(m, role, name) {
  return m.retired.some((r) => r.role === role && r.name === name && r.reason === "removed");
}

function retire(m, key, role, name, since, reason) {
  if (!retiredKey(m, key)) m.retired.push({ key, role, name, since, reason });
}
function nodeNameTaken(m, name) {
  if (m.validators.some((v) => v.name === name)) return "validator";
  if (m.issuers.some((i) => i.name === name)) return "issuer";
  if (m.observers.some((o) => o.name === name)) return "observer";
  return null;
}

/** G7 on `m` in place (a copy: it may be left half changed on error); the reason or null. */
function applyChange(m, c, at) {
  const unknown = (what, name) => `there is no ${what} named ${JSON.stringify(name)}`;
  const idx = (list, name) => list.findIndex((x) => x.name === name);
  let why = null;
  switch (c.t) {
    case CHANGE.AddAgency: {
      if ((why = nameProblem("agency", c.name))) return why;
      if (m.agencies.some((x) => x.name === c.name)) return `an agency named ${JSON.stringify(c.name)} already exists`;
      if (removedName(m, "agency", c.name)) {
        return `agency name ${JSON.stringify(c.name)} belonged to a removed agency; approvals on chain name it, so it is never reused`;
      }
      if (m.agencies.length >= MAX_AGENCIES) return `too many agency: at most ${MAX_AGENCIES}`;
      if ((why = newKeyProblem(m, c.key))) return why;
      m.agencies.push({ name: c.name, region: c.region, key: c.key });
      break;
    }
    case CHANGE.RemoveAgency: {
      const i = idx(m.agencies, c.name);
      if (i < 0) return unknown("agency", c.name);
      if (m.agencies.length === 1) return "the change would leave no agency";
      const l = m.lenders.find((x) => x.sponsor === c.name);
      if (l) return `agency ${JSON.stringify(c.name)} sponsors lender ${JSON.stringify(l.name)}; remove its lenders first`;
      const [gone] = m.agencies.splice(i, 1);
      retire(m, gone.key, "agency", gone.name, at, "removed");
      break;
    }
    case CHANGE.RotateAgencyKey: {
      if ((why = newKeyProblem(m, c.key))) return why;
      const i = idx(m.agencies, c.name);
      if (i < 0) return unknown("agency", c.name);
      const old = m.agencies[i].key;
      m.agencies[i] = { ...m.agencies[i], key: c.key };
      retire(m, old, "agency", c.name, at, "rotated");
      break;
    }
    case CHANGE.AddValidator: {
      if ((why = nameProblem("validator", c.name))) return why;
      const taken = nodeNameTaken(m, c.name);
      if (taken) return `a ${taken} named ${JSON.stringify(c.name)} already exists`;
      if (m.validators.length >= MAX_MEMBER_VALIDATORS) return `too many validator: at most ${MAX_MEMBER_VALIDATORS}`;
      if ((why = newKeyProblem(m, c.key))) return why;
      m.validators.push({ name: c.name, region: c.region, key: c.key });
      break;
    }
    case CHANGE.RemoveValidator: {
      const i = idx(m.validators, c.name);
      if (i < 0) return unknown("validator", c.name);
      if (m.validators.length === 1) return "the change would leave no validator";
      const [gone] = m.validators.splice(i, 1);
      retire(m, gone.key, "validator", gone.name, at, "removed");
      break;
    }
    case CHANGE.RotateValidatorKey: {
      if ((why = newKeyProblem(m, c.key))) return why;
      const i = idx(m.validators, c.name);
      if (i < 0) return unknown("validator", c.name);
      const old = m.validators[i].key;
      m.validators[i] = { ...m.validators[i], key: c.key };
      retire(m, old, "validator", c.name, at, "rotated");
      break;
    }
    case CHANGE.AddIssuer: {
      if ((why = nameProblem("issuer", c.name))) return why;
      if ((why = kindsProblem(c.kinds))) return why;
      const taken = nodeNameTaken(m, c.name);
      if (taken) return `a ${taken} named ${JSON.stringify(c.name)} already exists`;
      if (removedName(m, "issuer", c.name)) {
        return `issuer name ${JSON.stringify(c.name)} belonged to a removed issuer; its records on chain name it, so it is never reused`;
      }
      if (m.issuers.length >= MAX_ISSUERS) return `too many issuer: at most ${MAX_ISSUERS}`;
      if ((why = newKeyProblem(m, c.key))) return why;
      m.issuers.push({ name: c.name, region: c.region, key: c.key, kinds: c.kinds, may_revoke_any: c.may_revoke_any });
      break;
    }
    case CHANGE.RemoveIssuer: {
      const i = idx(m.issuers, c.name);
      if (i < 0) return unknown("issuer", c.name);
      const [gone] = m.issuers.splice(i, 1);
      m.frozen = m.frozen.filter((n) => n !== c.name);
      retire(m, gone.key, "issuer", gone.name, at, "removed");
      break;
    }
    case CHANGE.RotateIssuerKey: {
      if ((why = newKeyProblem(m, c.key))) return why;
      const i = idx(m.issuers, c.name);
      if (i < 0) return unknown("issuer", c.name);
      const old = m.issuers[i].key;
      m.issuers[i] = { ...m.issuers[i], key: c.key };
      m.frozen = m.frozen.filter((n) => n !== c.name);
      retire(m, old, "issuer", c.name, at, "rotated");
      break;
    }
    case CHANGE.SetIssuerRights: {
      if ((why = kindsProblem(c.kinds))) return why;
      const i = idx(m.issuers, c.name);
      if (i < 0) return unknown("issuer", c.name);
      m.issuers[i] = { ...m.issuers[i], kinds: c.kinds, may_revoke_any: c.may_revoke_any };
      break;
    }
    case CHANGE.FreezeIssuer: {
      const i = idx(m.issuers, c.name);
      if (i < 0) return unknown("issuer", c.name);
      if (isFrozen(m, c.name)) return `issuer ${JSON.stringify(c.name)}'s key is already frozen`;
      m.frozen.push(c.name);
      // Sorted by bytes (Rust's String order): compare the UTF-8 encodings.
      m.frozen.sort((a, b) => byteCompare(TE.encode(a), TE.encode(b)));
      retire(m, m.issuers[i].key, "issuer", c.name, at, "frozen");
      break;
    }
    case CHANGE.AddObserver: {
      if ((why = nameProblem("observer", c.name))) return why;
      const taken = nodeNameTaken(m, c.name);
      if (taken) return `a ${taken} named ${JSON.stringify(c.name)} already exists`;
      if (m.observers.length >= MAX_OBSERVERS) return `too many observer: at most ${MAX_OBSERVERS}`;
      if ((why = newKeyProblem(m, c.key))) return why;
      m.observers.push({ name: c.name, key: c.key });
      break;
    }
    case CHANGE.RemoveObserver: {
      const i = idx(m.observers, c.name);
      if (i < 0) return unknown("observer", c.name);
      const [gone] = m.observers.splice(i, 1);
      retire(m, gone.key, "observer", gone.name, at, "removed");
      break;
    }
    case CHANGE.SetParams: {
      const p = { max_block_txs: c.max_block_txs, max_block_bytes: c.max_block_bytes, governance: c.governance, restricted_kinds: c.restricted_kinds };
      if ((why = paramsProblem(p))) return `invalid parameters: ${why}`;
      m.params = p;
      break;
    }
    case CHANGE.AddLender: {
      if ((why = nameProblem("lender", c.name))) return why;
      if (m.lenders.some((x) => x.name === c.name)) return `a lender named ${JSON.stringify(c.name)} already exists`;
      if (removedName(m, "lender", c.name)) {
        return `lender name ${JSON.stringify(c.name)} belonged to a removed lender; authorisations on chain name it, so it is never reused`;
      }
      if (!m.agencies.some((a) => a.name === c.sponsor)) return unknown("agency", c.sponsor);
      if (m.lenders.length >= MAX_LENDERS) return `too many lender: at most ${MAX_LENDERS}`;
      if ((why = newKeyProblem(m, c.key))) return why;
      m.lenders.push({ name: c.name, sponsor: c.sponsor, key: c.key });
      break;
    }
    case CHANGE.RemoveLender: {
      const i = idx(m.lenders, c.name);
      if (i < 0) return unknown("lender", c.name);
      const [gone] = m.lenders.splice(i, 1);
      retire(m, gone.key, "lender", gone.name, at, "removed");
      break;
    }
    case CHANGE.RotateLenderKey: {
      if ((why = newKeyProblem(m, c.key))) return why;
      const i = idx(m.lenders, c.name);
      if (i < 0) return unknown("lender", c.name);
      const old = m.lenders[i].key;
      m.lenders[i] = { ...m.lenders[i], key: c.key };
      retire(m, old, "lender", c.name, at, "rotated");
      break;
    }
    default:
      return `unknown change ${c.t}`;
  }
  if (m.retired.length > MAX_RETIRED_KEYS) return `too many retired keys: at most ${MAX_RETIRED_KEYS}`;
  return null;
}
function byteCompare(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Every change of a proposal at `at`, whole or nothing: `{ m }` or `{ index, error }`. */
export function applyAll(m, changes, at) {
  const next = copy(m);
  for (let i = 0; i < changes.length; i++) {
    const why = applyChange(next, changes[i], at);
    if (why) return { index: i, error: why };
  }
  return { m: next };
}

/** A change described as `yrd verify` lists it. */
export function describe(c) {
  switch (c.t) {
    case CHANGE.AddAgency: return `add agency ${c.name} (${c.region})`;
    case CHANGE.RemoveAgency: return `remove agency ${c.name}`;
    case CHANGE.RotateAgencyKey: return `rotate agency ${c.name}'s admin key to ${short(c.key)}`;
    case CHANGE.AddValidator: return `add validator ${c.name} (${c.region}, key ${short(c.key)})`;
    case CHANGE.RemoveValidator: return `remove validator ${c.name}`;
    case CHANGE.RotateValidatorKey: return `rotate validator ${c.name}'s key to ${short(c.key)}`;
    case CHANGE.AddIssuer: return `add issuer ${c.name} (${c.region}, key ${short(c.key)})`;
    case CHANGE.RemoveIssuer: return `remove issuer ${c.name}`;
    case CHANGE.RotateIssuerKey: return `rotate issuer ${c.name}'s key to ${short(c.key)}`;
    case CHANGE.SetIssuerRights: return `set issuer ${c.name}'s kinds to ${c.kinds.join(",")}${c.may_revoke_any ? " (may revoke any)" : ""}`;
    case CHANGE.FreezeIssuer: return `freeze issuer ${c.name}'s key`;
    case CHANGE.AddObserver: return `add observer ${c.name} (key ${short(c.key)})`;
    case CHANGE.RemoveObserver: return `remove observer ${c.name}`;
    case CHANGE.SetParams: {
      const g = c.governance;
      return `set parameters: max_block_txs ${c.max_block_txs}, max_block_bytes ${c.max_block_bytes}, approval > ${g.approval_num}/${g.approval_den}, delay ${g.activation_delay_blocks} blocks, proposal ttl ${g.max_proposal_ttl_blocks} blocks, restricted kinds ${c.restricted_kinds.length ? c.restricted_kinds.join(",") : "none"}`;
    }
    case CHANGE.AddLender: return `add lender ${c.name} (sponsored by ${c.sponsor}, key ${short(c.key)})`;
    case CHANGE.RemoveLender: return `remove lender ${c.name}`;
    case CHANGE.RotateLenderKey: return `rotate lender ${c.name}'s key to ${short(c.key)}`;
    default: return `change ${c.t}`;
  }
}

// ---------------------------------------------------------------------------
// The replay state (G1–G6)
// ---------------------------------------------------------------------------

const effectiveOf = (r) => (r.outcome.state === "open" ? null : r.outcome.effective);
const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** G5's settlement: the proposals due at one height applied in order onto `base`. */
function settle(base, due) {
  let m = null;
  const settled = [];
  for (const rec of due) {
    const o = rec.outcome;
    if (o.state !== "approved") continue;
    const r = applyAll(m || base, rec.proposal.changes, o.effective);
    if (r.m) {
      m = r.m;
      settled.push({ ...rec, outcome: { ...o, state: "applied" } });
    } else {
      settled.push({ ...rec, outcome: { ...o, state: "failed", change: r.index, reason: r.error } });
    }
  }
  return { m, settled };
}

export class GovState {
  constructor(m0) {
    /** [effective height, membership from then on], by height; height 1 is the genesis. */
    this.timeline = [[1n, m0]];
    /** Proposal id (hex) → record { id, height, proposer, proposal, approvals: [{ agency, height }], outcome }. */
    this.proposals = new Map();
    /** Effective height (as a decimal string) → proposal ids due then, in approval order. */
    this.scheduled = new Map();
  }

  /** M(h): the membership in force at height `h` (≥ 1). */
  membershipAt(h) {
    const x = h < 1n ? 1n : h;
    let m = this.timeline[0][1];
    for (const [e, mm] of this.timeline) {
      if (e > x) break;
      m = mm;
    }
    return m;
  }

  setMembership(h, m) {
    const i = this.timeline.findIndex(([e]) => e >= h);
    if (i < 0) this.timeline.push([h, m]);
    else if (this.timeline[i][0] === h) this.timeline[i] = [h, m];
    else this.timeline.splice(i, 0, [h, m]);
  }

  dueHeights(upto) {
    return [...this.scheduled.keys()].map(BigInt).filter((e) => e <= upto).sort(cmp);
  }

  /** Takes in what a block did (`GovState::apply`). */
  apply(delta) {
    const approved = delta.records.filter((r) => r.outcome.state === "approved")
      .sort((a, b) => cmp(a.outcome.height, b.outcome.height) || cmp(a.outcome.index, b.outcome.index) || cmp(a.outcome.effective, b.outcome.effective) || cmp(a.id, b.id));
    for (const r of approved) {
      const k = String(r.outcome.effective);
      const list = this.scheduled.get(k) || [];
      if (!list.includes(r.id)) list.push(r.id);
      this.scheduled.set(k, list);
    }
    for (const r of delta.records) {
      if (r.outcome.state === "applied" || r.outcome.state === "failed") {
        const k = String(r.outcome.effective);
        const list = this.scheduled.get(k);
        if (list) {
          const rest = list.filter((id) => id !== r.id);
          if (rest.length) this.scheduled.set(k, rest); else this.scheduled.delete(k);
        }
      }
      this.proposals.set(r.id, r);
    }
    if (delta.membership) this.setMembership(delta.membership[0], delta.membership[1]);
  }

  /** G6: the proposals due at or below `h` take effect, height by height. */
  advanceTo(h) {
    for (const e of this.dueHeights(h)) {
      const ids = this.scheduled.get(String(e)) || [];
      const records = ids.map((id) => this.proposals.get(id)).filter(Boolean);
      const { m, settled } = settle(this.membershipAt(e - 1n), records);
      this.apply({ records: settled, membership: m ? [e, m] : null });
    }
  }

  beginBlock(h) { return new BlockGov(this, h); }

  /** The proposals in force at `h`, in the order applied. */
  appliedUpTo(h) {
    return [...this.proposals.values()].filter((r) => r.outcome.state === "applied" && r.outcome.effective <= h)
      .sort((a, b) => cmp(a.outcome.effective, b.outcome.effective) || cmp(a.outcome.height, b.outcome.height) || cmp(a.outcome.index, b.outcome.index));
  }
}

/** G1–G5 for one block: its governance transactions in position order, then its end. */
class BlockGov {
  constructor(state, h) {
    this.state = state;
    this.h = h;
    this.m = state.membershipAt(h);
    this.changed = new Map();
    this.completed = [];
  }

  record(id) { return this.changed.get(id) || this.state.proposals.get(id) || null; }

  /** G2 / G3: why the transaction is invalid here, or null. `tx.bodyType` 2 = Propose, 3 = Approve. */
  check(tx, id) {
    const agency = agencyOf(this.m, tx.issuer);
    if (!agency) return `key ${hexOf(tx.issuer)} is not the governance key of any agency in force`;
    const h = this.h;
    if (tx.bodyType === 2) {
      const p = tx.body;
      if (p.changes.length === 0 || p.changes.length > MAX_CHANGES) return `a proposal needs 1 to ${MAX_CHANGES} changes, this one has ${p.changes.length}`;
      const bytes = TE.encode(p.summary).length;
      if (bytes > MAX_SUMMARY_BYTES || CONTROL.test(p.summary)) return `the summary is ${bytes} bytes, at most ${MAX_SUMMARY_BYTES} allowed (and no control characters)`;
      let max = h + this.m.params.governance.max_proposal_ttl_blocks;
      if (max > U64_MAX) max = U64_MAX;
      if (p.deadline < h || p.deadline > max) return `deadline ${p.deadline} must be between this height ${h} and ${max}`;
      const r = applyAll(this.m, p.changes, h);
      if (r.error) return `change ${r.index} does not apply: ${r.error}`;
      if (this.record(id)) return `proposal ${id} is already on the ledger`;
      return null;
    }
    if (tx.bodyType === 3) {
      const pid = hexOf(tx.body.proposal);
      const r = this.record(pid);
      if (!r || r.height >= h) return `proposal ${pid} is not on the ledger (approve a proposal committed in an earlier block)`;
      if (r.outcome.state !== "open") return `proposal ${pid} is already ${r.outcome.state}; no more approvals are taken`;
      if (h > r.proposal.deadline) return `proposal ${pid} expired at height ${r.proposal.deadline} (this is height ${h})`;
      if (r.approvals.some((x) => x.agency === agency.name && approvalCounts(this.m, x))) return `agency ${JSON.stringify(agency.name)} already approved proposal ${pid}`;
      return null;
    }
    return "not a governance transaction";
  }

  /** Checks and applies one transaction at position `index` (G2/G3, then G4). */
  apply(tx, id, index) {
    const why = this.check(tx, id);
    if (why) return why;
    const agency = agencyOf(this.m, tx.issuer).name;
    let target;
    if (tx.bodyType === 2) {
      this.changed.set(id, { id, height: this.h, proposer: agency, proposal: tx.body, approvals: [{ agency, height: this.h }], outcome: { state: "open" } });
      target = id;
    } else {
      target = hexOf(tx.body.proposal);
      const rec = this.record(target);
      this.changed.set(target, { ...rec, approvals: [...rec.approvals, { agency, height: this.h }] });
    }
    // G4: the threshold: distinct agencies in force whose approval still counts.
    const inForce = new Set(this.m.agencies.map((a) => a.name));
    const rec = this.changed.get(target);
    const approving = BigInt(new Set(rec.approvals.filter((a) => approvalCounts(this.m, a)).map((a) => a.agency)).size);
    const g = this.m.params.governance;
    if (approving * g.approval_den > g.approval_num * BigInt(inForce.size)) {
      const delay = rec.proposal.changes.every((c) => c.t === CHANGE.FreezeIssuer) ? 1n : g.activation_delay_blocks;
      this.changed.set(target, { ...rec, outcome: { state: "approved", height: this.h, index: BigInt(index), effective: this.h + delay } });
      this.completed.push(target);
    }
    return null;
  }

  /** G5: the end of the block; returns the delta for `GovState.apply`. */
  finish() {
    const next = this.h + 1n;
    const due = [...(this.state.scheduled.get(String(next)) || [])];
    for (const id of this.completed) {
      const r = this.record(id);
      if (r && effectiveOf(r) === next && !due.includes(id)) due.push(id);
    }
    const { m, settled } = settle(this.m, due.map((id) => this.record(id)).filter(Boolean));
    for (const r of settled) this.changed.set(r.id, r);
    return { records: [...this.changed.values()], membership: m ? [next, m] : null };
  }
}
