// The console: a single-page app over the node's public read routes (docs/console.md).
// Hash routes: #/chain, #/block/<height>, #/record/<id>, #/subject/<uscc>, #/verify.

import { t, kindName, reasonName, setLang, currentLang, applyStatic } from "/console/i18n.js";
import { verifyFile } from "/console/verify.js";

/** How often the chain page polls /status and /metrics. */
const POLL_INTERVAL_MS = 2000;
/** Samples kept for the charts: five minutes at one per POLL_INTERVAL_MS. */
const SAMPLES_MAX = 150;
/** Blocks listed on the chain page. */
const RECENT_BLOCKS = 10;
/** Transactions of a block whose details (type, kind, subject) are fetched. */
const BLOCK_TX_DETAILS_MAX = 50;

const main = document.getElementById("main");

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** An element: h("a", {href: "#/chain"}, "text", child, ...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

class ApiFailure extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

/** GET a JSON route of this node (same origin, anonymous). */
async function api(path) {
  const resp = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await resp.json(); } catch (_) { body = null; }
  if (!resp.ok) throw new ApiFailure(resp.status, body);
  return body;
}

function fmtTime(ms) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function short(hex) { return hex && hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex; }

function mono(text, full) { return h("code", { title: full || text, class: "mono" }, text); }

function statusBadge(status) {
  return h("span", { class: `badge st-${status}` }, t(status));
}

function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

function errorBox(e) {
  const msg = e instanceof ApiFailure && e.code === "restricted" ? t("forbidden") : e.message;
  return h("div", { class: "error", role: "alert" }, h("strong", {}, e.status === 404 ? t("not_found") : t("error")), ": ", msg,
    " ", h("a", { href: "#/chain" }, t("back_chain")));
}

let statusCache = null;
async function status(fresh) {
  if (fresh || !statusCache) statusCache = await api("/v1/status");
  const n = document.getElementById("node-name");
  if (n) n.textContent = `· ${t("node")}: ${statusCache.node} · ${statusCache.chain_name}`;
  return statusCache;
}

function regionOf(st, name) {
  const v = (st.validators || []).find((x) => x.name === name);
  return v ? v.region : "";
}

// ---------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------

let generation = 0;
let pollTimer = null;

function route() {
  const hash = window.location.hash || "#/chain";
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { page: parts[0] || "chain", arg: parts[1] };
}

async function render() {
  const gen = ++generation;
  if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  const { page, arg } = route();
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  main.replaceChildren(h("p", { class: "loading" }, t("loading")));
  const pages = { chain: chainPage, block: blockPage, record: recordPage, subject: subjectPage, verify: verifyPage };
  const fn = pages[page] || chainPage;
  let content;
  try {
    content = await fn(arg, gen);
  } catch (e) {
    content = errorBox(e);
  }
  if (gen !== generation) return; // navigated away meanwhile
  main.replaceChildren(content);
  main.dataset.page = page;
  document.title = `${t("brand")} · ${main.querySelector("h1") ? main.querySelector("h1").textContent : page}`;
}

// ---------------------------------------------------------------------------
// Chain page
// ---------------------------------------------------------------------------

/** Samples of /metrics: {t, committed, latencySum, latencyCount}. */
const samples = [];

function parseMetrics(text) {
  const want = {
    committed: /^yrd_transactions_committed(_total)?\s+([0-9.eE+-]+)/m,
    latencySum: /^yrd_commit_latency_seconds_sum\s+([0-9.eE+-]+)/m,
    latencyCount: /^yrd_commit_latency_seconds_count\s+([0-9.eE+-]+)/m,
  };
  const out = {};
  for (const [k, re] of Object.entries(want)) {
    const m = text.match(re);
    out[k] = m ? Number(m[m.length - 1]) : NaN;
  }
  return out;
}

async function sample() {
  const resp = await fetch("/metrics");
  if (!resp.ok) return;
  const m = parseMetrics(await resp.text());
  samples.push({ t: Date.now(), ...m });
  while (samples.length > SAMPLES_MAX) samples.shift();
}

/** Per-interval rates from consecutive samples. */
function series() {
  const tps = [];
  const lat = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0) continue;
    const dc = b.committed - a.committed;
    if (Number.isFinite(dc) && dc >= 0) tps.push([b.t, dc / dt]);
    const n = b.latencyCount - a.latencyCount;
    const sum = b.latencySum - a.latencySum;
    if (Number.isFinite(n) && n > 0 && sum >= 0) lat.push([b.t, (sum / n) * 1000]);
  }
  return { tps, lat };
}

/** A line chart of [time, value] points as inline SVG. */
function lineChart(points, title, id, enoughSamples) {
  const W = 560, H = 160, L = 48, B = 22, T = 10, R = 10;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title, id });
  svg.append(s("title", {}, title));
  if (points.length < 2) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted" }, enoughSamples ? t("chart_no_commits") : t("chart_wait")));
    return svg;
  }
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  const vmax = Math.max(1, ...points.map((p) => p[1])) * 1.1;
  const x = (tm) => L + ((tm - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    svg.append(s("line", { x1: L, x2: W - R, y1: y(vmax * f), y2: y(vmax * f), class: "grid" }));
    svg.append(s("text", { x: L - 6, y: y(vmax * f) + 4, "text-anchor": "end", class: "axis" }, (vmax * f).toFixed(vmax < 10 ? 1 : 0)));
  }
  const span = Math.round((t1 - t0) / 1000);
  svg.append(s("text", { x: L, y: H - 4, class: "axis" }, `−${span} s`));
  svg.append(s("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "axis" }, t("now")));
  svg.append(s("polyline", { points: points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "), class: "line" }));
  const last = points[points.length - 1];
  svg.append(s("circle", { cx: x(last[0]), cy: y(last[1]), r: 3, class: "dot" }));
  return svg;
}

function validatorTable(st) {
  const missing = new Set((st.liveness && st.liveness.validators_missing) || []);
  return h("table", { class: "grid-table", id: "validators" },
    h("thead", {}, h("tr", {}, [t("index"), t("name"), t("region"), t("liveness"), t("key")].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, (st.validators || []).map((v) => {
      const self = v.name === st.node;
      const up = self || !missing.has(v.name);
      return h("tr", { "data-validator": v.name },
        h("td", {}, v.index), h("td", {}, v.name), h("td", {}, v.region),
        h("td", {}, h("span", { class: `badge ${up ? "ok" : "bad"}` }, self ? t("self") : up ? t("up") : t("down"))),
        h("td", {}, mono(short(v.key), v.key)));
    })));
}

async function recentBlocks(height) {
  const hs = [];
  for (let x = height; x >= 1 && hs.length < RECENT_BLOCKS; x--) hs.push(x);
  const blocks = await Promise.all(hs.map((x) => api(`/v1/blocks/${x}`).catch(() => null)));
  return h("table", { class: "grid-table", id: "recent-blocks" },
    h("thead", {}, h("tr", {}, [t("height"), t("time"), t("txs"), t("proposer"), t("hash")].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, blocks.filter(Boolean).map((b) => h("tr", {},
      h("td", {}, h("a", { href: `#/block/${b.height}` }, b.height)),
      h("td", {}, fmtTime(b.timestamp_ms)), h("td", {}, b.tx_count),
      h("td", {}, b.proposer.name), h("td", {}, mono(short(b.hash), b.hash))))));
}

function chainSummary(st) {
  const q = st.liveness || {};
  return kv([
    [t("chain"), `${st.chain_name} (${short(st.chain_id)})`],
    [t("node"), st.node],
    [t("height"), h("a", { href: `#/block/${st.height}`, id: "chain-height" }, st.height)],
    [t("round"), st.round],
    [t("last_block"), `${fmtTime(st.last_block_time_ms)} · ${short(st.last_block_hash)}`],
    [t("log_size"), st.log_size],
    [t("mempool"), `${st.mempool_size} / ${st.mempool_capacity}`],
    [t("quorum"), h("span", { class: `badge ${q.quorum ? "ok" : "bad"}` }, q.quorum ? t("quorum_ok") : t("quorum_missing"))],
  ]);
}

async function chainPage(_arg, gen) {
  const st = await status(true);
  await sample().catch(() => {});
  const summary = h("div", { id: "chain-summary" }, chainSummary(st));
  const vals = h("div", { id: "validators-box" }, validatorTable(st));
  const blocks = h("div", { id: "blocks-box" }, await recentBlocks(st.height));
  const { tps, lat } = series();
  const charts = h("div", { class: "charts" },
    h("figure", {}, lineChart(tps, t("throughput"), "chart-tps"), h("figcaption", {}, t("throughput"))),
    h("figure", {}, lineChart(lat, t("latency"), "chart-latency", samples.length > 2), h("figcaption", {}, t("latency"))));
  const page = h("div", { class: "page" },
    h("h1", {}, t("chain")),
    h("div", { class: "cols" }, section(t("chain"), summary), section(t("validators"), vals)),
    section(`${t("throughput")} · ${t("latency")}`, h("p", { class: "muted" }, t("chart_window")), charts),
    section(t("recent_blocks"), blocks));
  let lastHeight = st.height;
  pollTimer = setInterval(async () => {
    if (gen !== generation) return;
    try {
      const fresh = await status(true);
      await sample();
      if (gen !== generation) return;
      summary.replaceChildren(chainSummary(fresh));
      vals.replaceChildren(validatorTable(fresh));
      const ser = series();
      charts.replaceChildren(
        h("figure", {}, lineChart(ser.tps, t("throughput"), "chart-tps"), h("figcaption", {}, t("throughput"))),
        h("figure", {}, lineChart(ser.lat, t("latency"), "chart-latency", samples.length > 2), h("figcaption", {}, t("latency"))));
      if (fresh.height !== lastHeight) {
        lastHeight = fresh.height;
        const b = await recentBlocks(fresh.height);
        if (gen === generation) blocks.replaceChildren(b);
      }
    } catch (_) { /* the next poll tries again */ }
  }, POLL_INTERVAL_MS);
  return page;
}

// ---------------------------------------------------------------------------
// Block page
// ---------------------------------------------------------------------------

async function blockPage(arg) {
  if (!/^[0-9]{1,19}$/.test(arg || "")) throw new ApiFailure(400, { error: `not a height: ${arg}` });
  const [b, st] = await Promise.all([api(`/v1/blocks/${arg}`), status(false)]);
  const signed = new Set(b.certificate.signers.map((x) => x.name));
  const rows = [];
  const ids = b.transactions.filter((x) => typeof x === "string").slice(0, BLOCK_TX_DETAILS_MAX);
  const details = new Map((await Promise.all(ids.map((id) => api(`/v1/attestations/${id}`).catch(() => null)))).filter(Boolean).map((a) => [a.id, a]));
  for (const tx of b.transactions) {
    if (typeof tx !== "string") {
      rows.push(h("tr", { class: "redacted" }, h("td", {}, tx.log_index), h("td", { colspan: 4 }, t("redacted"), " ", mono(short(tx.commitment), tx.commitment))));
      continue;
    }
    const a = details.get(tx);
    rows.push(h("tr", { "data-id": tx },
      h("td", {}, a ? a.log_index : ""),
      h("td", {}, h("a", { href: `#/record/${tx}` }, mono(short(tx), tx))),
      h("td", {}, a ? t(a.type) : ""),
      h("td", {}, a ? kindName(a.kind) || (a.reason ? reasonName(a.reason) : "") : ""),
      h("td", {}, a && a.subject ? h("a", { href: `#/subject/${a.subject}` }, a.subject) : "")));
  }
  const height = Number(b.height);
  return h("div", { class: "page" },
    h("h1", {}, `${t("block")} ${b.height}`),
    h("nav", { class: "pager", "aria-label": t("block") },
      height > 1 ? h("a", { href: `#/block/${height - 1}`, id: "prev-block" }, `← ${t("prev")}`) : null,
      h("a", { href: `#/block/${height + 1}`, id: "next-block" }, `${t("next")} →`)),
    h("div", { class: "cols" },
      section(t("header"), kv([
        [t("height"), b.height], [t("hash"), mono(short(b.hash), b.hash)],
        [t("parent"), height > 1 ? h("a", { href: `#/block/${height - 1}` }, mono(short(b.parent), b.parent)) : mono(short(b.parent), b.parent)],
        [t("time"), fmtTime(b.timestamp_ms)], [t("round"), b.round],
        [t("proposer"), `${b.proposer.name} (${regionOf(st, b.proposer.name)})`],
        [t("txs"), b.tx_count], [t("log_size"), b.log_size],
        [t("log_root"), mono(short(b.log_root), b.log_root)], [t("subjects_root"), mono(short(b.subjects_root), b.subjects_root)],
      ])),
      section(`${t("certificate")} · ${t("signers")}`,
        h("p", {}, `${t("round")} ${b.certificate.round} · ${b.certificate.signers.length} / ${(st.validators || []).length}`),
        h("ul", { class: "signers", id: "signers" }, (st.validators || []).map((v) =>
          h("li", { class: signed.has(v.name) ? "ok" : "muted", "data-signer": signed.has(v.name) ? v.name : null },
            h("span", { class: `badge ${signed.has(v.name) ? "ok" : "off"}` }, signed.has(v.name) ? "✓" : "–"), " ",
            `${v.name} · ${v.region} · ${signed.has(v.name) ? t("signed") : t("not_signed")}`))))),
    section(`${t("txs")} (${b.tx_count})`, b.transactions.length === 0 ? h("p", { class: "muted" }, t("no_txs")) :
      h("table", { class: "grid-table", id: "block-txs" },
        h("thead", {}, h("tr", {}, [t("log_index"), "ID", t("type"), t("kind"), t("subject")].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))));
}

// ---------------------------------------------------------------------------
// Record page
// ---------------------------------------------------------------------------

function timeline(events) {
  return h("ol", { class: "timeline", id: "timeline" }, events.map((e) =>
    h("li", { class: e.cls || "" }, h("span", { class: "when" }, fmtTime(e.ms)), " ", h("span", { class: "what" }, e.what))));
}

async function recordPage(arg) {
  if (!/^[0-9a-f]{64}$/.test(arg || "")) throw new ApiFailure(400, { error: `not a record id (64 lowercase hex digits): ${arg}` });
  const a = await api(`/v1/attestations/${arg}`);
  if (a.status === "pending") {
    return h("div", { class: "page" }, h("h1", {}, `${t("record")} ${short(a.id)}`), kv([[t("status"), statusBadge("pending")]]));
  }
  const [block, st] = await Promise.all([api(`/v1/blocks/${a.height}`), status(false)]);
  let revocation = null;
  if (a.revoked_by) revocation = await api(`/v1/attestations/${a.revoked_by}`).catch(() => null);
  const events = [];
  if (a.type === "attestation") {
    events.push({ ms: a.issued_at_ms, what: `${t("issued")} · ${a.issuer.name}` });
    events.push({ ms: a.block_time_ms, what: [`${t("committed")} `, h("a", { href: `#/block/${a.height}` }, a.height)] });
    events.push({ ms: a.valid_from_ms, what: t("valid_from") });
    if (a.revoked_by) {
      events.push({ ms: revocation ? revocation.block_time_ms : null, cls: "bad",
        what: [`${t("revoked_by")} `, h("a", { href: `#/record/${a.revoked_by}` }, mono(short(a.revoked_by), a.revoked_by)),
          ` · ${t("reason")}: ${reasonName(a.revocation_reason)}`, revocation ? ` · ${revocation.issuer.name}` : ""] });
    }
    if (a.valid_until_ms !== null) events.push({ ms: a.valid_until_ms, what: t("valid_until"), cls: a.status === "expired" ? "bad" : "" });
  } else {
    events.push({ ms: a.issued_at_ms, what: `${t("issued")} · ${a.issuer.name}` });
    events.push({ ms: a.block_time_ms, what: [`${t("committed")} `, h("a", { href: `#/block/${a.height}` }, a.height)] });
  }
  events.sort((x, y) => (x.ms ?? Infinity) - (y.ms ?? Infinity));
  const fields = a.fields ? Object.entries(a.fields) : [];
  const rows = [
    ["ID", mono(a.id)],
    [t("status"), statusBadge(a.status)],
    [t("type"), t(a.type)],
    a.subject ? [t("subject"), h("a", { href: `#/subject/${a.subject}` }, a.subject)] : null,
    a.kind ? [t("kind"), kindName(a.kind)] : null,
    a.grade ? [t("grade"), a.grade] : null,
    a.severity ? [t("severity"), a.severity] : null,
    a.evidence ? [t("evidence"), mono(a.evidence)] : null,
    a.target ? [t("target"), h("a", { href: `#/record/${a.target}` }, mono(short(a.target), a.target))] : null,
    a.reason ? [t("reason"), reasonName(a.reason)] : null,
    [t("issued_at"), fmtTime(a.issued_at_ms)],
    a.type === "attestation" ? [t("valid_from"), fmtTime(a.valid_from_ms)] : null,
    a.type === "attestation" ? [t("valid_until"), a.valid_until_ms === null ? "—" : fmtTime(a.valid_until_ms)] : null,
    [t("sequence"), a.sequence],
    fields.length ? [t("fields"), h("ul", { class: "plain" }, fields.map(([k, v]) => h("li", {}, h("code", {}, k), ": ", v)))] : null,
  ];
  return h("div", { class: "page" },
    h("h1", {}, `${t(a.type)} ${short(a.id)}`),
    h("div", { class: "cols" },
      section(t("record"), kv(rows)),
      section(t("timeline"), timeline(events))),
    section(t("provenance"), kv([
      [t("issuer"), `${a.issuer.name} · ${a.issuer.region}`],
      [t("key"), mono(short(a.issuer.key), a.issuer.key)],
      [t("block"), h("a", { href: `#/block/${a.height}` }, `${a.height} · ${short(a.block_hash)}`)],
      [t("log_index"), a.log_index],
      [t("signers"), h("ul", { class: "plain", id: "record-signers" }, block.certificate.signers.map((x) => h("li", {}, `${x.name} · ${regionOf(st, x.name)}`)))],
      a.type === "attestation" ? [t("proofs"), h("span", {},
        h("a", { href: `/v1/proofs/attestations/${a.id}`, download: `bundle-${a.id.slice(0, 12)}.json` }, t("bundle")), " · ",
        h("a", { href: `/v1/audit/attestations/${a.id}`, download: `trace-${a.id.slice(0, 12)}.json` }, t("trace")))] : null,
    ])));
}

// ---------------------------------------------------------------------------
// Subject page
// ---------------------------------------------------------------------------

function normaliseUscc(x) { return (x || "").trim().replace(/[\s-]/g, "").toUpperCase(); }

function subjectTimeline(records) {
  const full = records.filter((r) => !r.redacted);
  const kinds = [...new Set(full.map((r) => r.kind))].sort();
  if (full.length === 0) return null;
  const W = 760, rowH = 28, L = 190, R = 16, T = 8, B = 24;
  const H = T + B + rowH * kinds.length;
  const times = full.map((r) => r.valid_from_ms).concat(full.map((r) => r.block_time_ms), [Date.now()]);
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
  const x = (tm) => L + ((Math.min(Math.max(tm, t0), t1) - t0) / (t1 - t0)) * (W - L - R);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "timeline-chart", role: "img", "aria-label": t("timeline"), id: "subject-timeline" });
  svg.append(s("title", {}, t("timeline")));
  kinds.forEach((k, i) => {
    const y = T + i * rowH;
    svg.append(s("text", { x: L - 8, y: y + rowH / 2 + 4, "text-anchor": "end", class: "axis" }, kindName(k)));
    svg.append(s("line", { x1: L, x2: W - R, y1: y + rowH / 2, y2: y + rowH / 2, class: "grid" }));
  });
  for (const r of full) {
    const y = T + kinds.indexOf(r.kind) * rowH + rowH / 2;
    const end = r.valid_until_ms === null ? t1 : r.valid_until_ms;
    svg.append(s("line", { x1: x(r.valid_from_ms), x2: x(end), y1: y, y2: y, class: `span st-${r.status}` }));
    const dot = s("circle", { cx: x(r.valid_from_ms), cy: y, r: 5, class: `dot st-${r.status}` });
    dot.append(s("title", {}, `${kindName(r.kind)} · ${t(r.status)} · ${r.issuer.name} · ${fmtTime(r.valid_from_ms)}`));
    svg.append(dot);
  }
  svg.append(s("text", { x: L, y: H - 6, class: "axis" }, fmtTime(t0).slice(0, 10)));
  svg.append(s("text", { x: W - R, y: H - 6, "text-anchor": "end", class: "axis" }, fmtTime(t1).slice(0, 10)));
  return svg;
}

async function subjectPage(arg) {
  const uscc = normaliseUscc(arg);
  const r = await api(`/v1/subjects/${encodeURIComponent(uscc)}/attestations`);
  const recs = r.attestations || [];
  const rows = recs.map((a, i) => a.redacted
    ? h("tr", { class: "redacted", "data-redacted": a.commitment },
      h("td", {}, i + 1), h("td", { colspan: 3 }, t("redacted")), h("td", {}, h("a", { href: `#/block/${a.height}` }, a.height)), h("td", {}, mono(short(a.commitment), a.commitment)))
    : h("tr", { "data-id": a.id },
      h("td", {}, i + 1),
      h("td", {}, kindName(a.kind), a.grade ? ` (${a.grade})` : ""),
      h("td", {}, statusBadge(a.status), a.revocation_reason ? ` · ${reasonName(a.revocation_reason)}` : ""),
      h("td", {}, a.issuer.name),
      h("td", {}, h("a", { href: `#/block/${a.height}` }, a.height)),
      h("td", {}, h("a", { href: `#/record/${a.id}` }, mono(short(a.id), a.id)))));
  const chart = subjectTimeline(recs);
  return h("div", { class: "page" },
    h("h1", {}, `${t("subject_page")} ${r.subject}`),
    kv([[t("complete_as_of"), h("span", { id: "complete-height" }, r.height)], [t("records"), recs.length],
      [t("proofs"), h("a", { href: `/v1/proofs/subjects/${r.subject}`, download: `report-${r.subject}.json` }, t("report"))]]),
    chart ? section(t("timeline"), chart, h("p", { class: "legend" }, ["active", "not-yet-valid", "expired", "revoked"].map((x) => [statusBadge(x), " "]))) : null,
    section(t("records"), recs.length === 0 ? h("p", { class: "muted", id: "no-records" }, t("no_records")) :
      h("table", { class: "grid-table", id: "subject-records" },
        h("thead", {}, h("tr", {}, ["#", t("kind"), t("status"), t("issuer"), t("height"), "ID"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))));
}

// ---------------------------------------------------------------------------
// Verify page
// ---------------------------------------------------------------------------

function verdictView(result) {
  if (!result.verified) {
    return h("div", { class: "verdict bad", id: "verdict", "data-verdict": "reject", "data-check": result.check, role: "status" },
      h("h2", {}, `✗ ${t("verify_fail")}`),
      kv([[t("verify_check"), h("code", {}, result.check)], [t("reason"), result.error]]));
  }
  const v = result.verdict;
  const rows = [[t("type"), v.type], [t("chain"), `${v.chain_name} (${short(v.chain_id)})`],
    [t("anchor"), `${v.anchor.height} · ${fmtTime(v.anchor.time_ms)} · ${v.anchor.signers.map((x) => x.name).join(", ")}`],
    [t("age"), `${Math.round((Date.now() - v.anchor.time_ms) / 1000)} s`]];
  if (v.type === "yrd-subject-report" && v.count > 0) {
    rows.push([t("records"), v.complete ? t("records_complete").replace("{n}", v.count)
      : t("records_range").replace("{from}", v.from).replace("{to}", v.to).replace("{n}", v.count)]);
  }
  const recs = v.attestations || (v.attestation ? [v.attestation] : []);
  return h("div", { class: "verdict ok", id: "verdict", "data-verdict": "accept", role: "status" },
    h("h2", {}, `✓ ${t("verify_ok")}`), kv(rows),
    recs.length ? h("table", { class: "grid-table" },
      h("thead", {}, h("tr", {}, ["ID", t("kind"), t("status"), t("issuer"), t("height")].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, recs.map((r) => h("tr", {}, h("td", {}, mono(short(r.id), r.id)), h("td", {}, kindName(r.kind)),
        h("td", {}, statusBadge(r.status.state)),
        h("td", {}, r.issuer.name, r.issuer.retired ? ` (${t("key_retired").replace("{reason}", r.issuer.retired.reason).replace("{h}", r.issuer.retired.since)})` : ""),
        h("td", {}, r.height))))) : null,
    v.governance && v.governance.length ? h("div", { id: "verdict-governance" },
      h("h3", {}, t("gov_changes").replace("{n}", v.governance.length)),
      h("ul", { class: "plain" }, v.governance.map((g) => h("li", {},
        `${t("gov_change").replace("{e}", g.effective).replace("{a}", g.approved_at).replace("{p}", g.proposer)}: ${g.changes.join("; ")}`)))) : null,
    v.redacted && v.redacted.length ? kv([[t("positions_hidden"), v.redacted.map((x) => `${x.position}: ${short(x.commitment)}`).join(", ")]]) : null);
}

async function verifyPage() {
  const fileIn = h("input", { type: "file", id: "verify-file", accept: ".json,application/json" });
  const genIn = h("input", { type: "file", id: "verify-genesis", accept: ".json,application/json" });
  const out = h("div", { id: "verify-out" });
  const dropped = { file: null, genesis: null };
  const run = async () => {
    const f = fileIn.files[0] || dropped.file;
    const g = genIn.files[0] || dropped.genesis;
    if (!f || !g) { out.replaceChildren(h("p", { class: "error" }, t("verify_need"))); return; }
    out.replaceChildren(h("p", { class: "loading" }, t("loading")));
    const result = await verifyFile(await f.text(), await g.text(), Date.now());
    out.replaceChildren(verdictView(result));
  };
  const zone = h("div", { class: "drop", id: "drop", tabindex: "-1" }, t("verify_drop"));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    for (const f of e.dataTransfer.files) {
      const text = await f.text();
      if (/"chain_name"/.test(text) && /"validators"/.test(text) && !/"type"\s*:\s*"yrd-/.test(text)) dropped.genesis = f; else dropped.file = f;
    }
    zone.textContent = [dropped.file && dropped.file.name, dropped.genesis && dropped.genesis.name].filter(Boolean).join(" + ") || t("verify_drop");
  });
  return h("div", { class: "page" },
    h("h1", {}, t("verify_title")),
    h("p", {}, t("verify_intro")),
    h("form", { class: "verify-form", id: "verify-form", onsubmit: (e) => { e.preventDefault(); run(); } },
      h("label", { for: "verify-file" }, t("verify_file")), fileIn,
      h("label", { for: "verify-genesis" }, t("verify_genesis")), genIn,
      zone,
      h("button", { type: "submit", id: "verify-run" }, t("verify_run"))),
    h("p", { class: "muted", id: "verify-limits" }, t("verify_limits")),
    out);
}

// ---------------------------------------------------------------------------
// Search, language, start
// ---------------------------------------------------------------------------

/** Where the search box's text leads, or null. */
export function searchTarget(text) {
  const q = (text || "").trim();
  if (/^[0-9]{1,19}$/.test(q)) return `#/block/${Number(q)}`;
  if (/^[0-9a-fA-F]{64}$/.test(q)) return `#/record/${q.toLowerCase()}`;
  const u = normaliseUscc(q);
  if (/^[0-9A-HJ-NPQRTUWXY]{18}$/.test(u)) return `#/subject/${u}`;
  return null;
}

document.getElementById("search").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("q");
  const target = searchTarget(input.value);
  if (!target) {
    input.setCustomValidity(t("search_bad"));
    input.reportValidity();
    return;
  }
  input.setCustomValidity("");
  input.value = "";
  if (window.location.hash === target) render(); else window.location.hash = target;
});
document.getElementById("q").addEventListener("input", (e) => e.target.setCustomValidity(""));

document.getElementById("lang").addEventListener("click", () => {
  setLang(currentLang() === "zh" ? "en" : "zh");
  applyStatic(document);
  render();
});

document.getElementById("skip-link").addEventListener("click", (e) => { e.preventDefault(); main.focus(); });

window.addEventListener("hashchange", () => { render().then(() => main.focus({ preventScroll: true })); });
applyStatic(document);
render();
