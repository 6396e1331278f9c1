// The chain's key rule for Ed25519 public keys (docs/proofs.md §2; the Rust is
// consensus/src/sigrule.rs `check_key`), in plain BigInt arithmetic: WebCrypto
// imports any 32 bytes that decode to a curve point, including small-order and
// mixed-order ones, so the verifier checks the rule itself before it trusts a key.
//
//   import { keyProblem } from "/console/ed25519.js";
//   keyProblem(bytes32) // null, or why the key fails the rule
//
// The rule: the 32 bytes are the canonical encoding of a curve point (y < p; no
// sign bit on x = 0), the point is not of small order ([8]P ≠ O) and it lies in
// the prime-order subgroup ([L]P = O). Cost: one scalar multiplication by L per
// key, a few milliseconds; results are cached per key.

const P = (1n << 255n) - 19n;
/** The order of the prime-order subgroup. */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const mod = (a) => { const r = a % P; return r < 0n ? r + P : r; };
function pow(b, e) {
  let r = 1n;
  b = mod(b);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return r;
}
const inv = (a) => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

// Extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z.
const IDENTITY = [0n, 1n, 1n, 0n];
function add([X1, Y1, Z1, T1], [X2, Y2, Z2, T2]) {
  const A = mod((Y1 - X1) * (Y2 - X2));
  const B = mod((Y1 + X1) * (Y2 + X2));
  const C = mod(2n * D * T1 * T2);
  const Dd = mod(2n * Z1 * Z2);
  const E = B - A, F = Dd - C, G = Dd + C, H = B + A;
  return [mod(E * F), mod(G * H), mod(F * G), mod(E * H)];
}
function mul(pt, n) {
  let r = IDENTITY;
  let q = pt;
  while (n > 0n) {
    if (n & 1n) r = add(r, q);
    q = add(q, q);
    n >>= 1n;
  }
  return r;
}
const isIdentity = ([X, Y, Z]) => mod(X) === 0n && mod(Y - Z) === 0n;

/** The point `bytes` encodes, or a reason it encodes none / not canonically. */
function decompress(bytes) {
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i]);
  const sign = y >> 255n;
  y &= (1n << 255n) - 1n;
  const yr = mod(y);
  const u = mod(yr * yr - 1n);
  const v = mod(D * yr * yr + 1n);
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n));
  const vx2 = mod(v * x * x);
  if (vx2 === u) { /* x is a root */ } else if (vx2 === mod(-u)) x = mod(x * SQRT_M1);
  else return { error: "not the encoding of a curve point" };
  if ((x & 1n) !== sign) x = mod(-x);
  // Canonical: re-encoding gives the same bytes (y < p, and x = 0 never signed).
  if (y !== yr || (x === 0n && sign === 1n)) return { error: "a non-canonical encoding of a curve point" };
  return { point: [x, yr, 1n, mod(x * yr)] };
}

const cache = new Map();
/** Why the 32 bytes fail the key rule, or null when they pass. */
export function keyProblem(bytes) {
  if (bytes.length !== 32) return "not 32 bytes";
  const k = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  if (cache.has(k)) return cache.get(k);
  const d = decompress(bytes);
  let why = null;
  if (d.error) why = d.error;
  else if (isIdentity(mul(d.point, 8n))) why = "a point of small order (a weak key: signatures by it prove nothing)";
  else if (!isIdentity(mul(d.point, L))) why = "a point with a torsion component (not in the prime-order subgroup)";
  cache.set(k, why);
  return why;
}
