// Labels in English and Chinese. The choice is remembered in localStorage.

const STRINGS = {
  brand: ["YRD Credit Chain", "长三角信用链"],
  skip: ["Skip to content", "跳到正文"],
  nav_chain: ["Chain", "链概览"],
  nav_verify: ["Verify", "验证"],
  search_label: ["Height, record id or USCC", "区块高度、记录编号或统一社会信用代码"],
  search_placeholder: ["Height, record id or USCC", "高度 / 记录编号 / 信用代码"],
  search_go: ["Go", "查询"],
  search_bad: ["Not a height, a record id (64 hex digits) or a USCC (18 characters)", "不是区块高度、记录编号（64 位十六进制）或统一社会信用代码（18 位）"],
  footer: ["Read-only view of this node's public API, as an anonymous caller sees it.", "本页面只读，显示本节点公开接口对匿名访问者提供的内容。"],
  loading: ["Loading…", "加载中…"],
  error: ["Error", "错误"],
  chain: ["Chain", "链"],
  node: ["Node", "节点"],
  height: ["Height", "高度"],
  round: ["Round", "轮次"],
  last_block: ["Last block", "最新区块"],
  log_size: ["Log size", "日志大小"],
  mempool: ["Mempool", "交易池"],
  validators: ["Validators", "验证节点"],
  index: ["Index", "序号"],
  name: ["Name", "名称"],
  region: ["Region", "地区"],
  key: ["Key", "公钥"],
  liveness: ["Liveness", "在线状态"],
  up: ["connected", "在线"],
  down: ["missing", "离线"],
  self: ["this node", "本节点"],
  quorum: ["Quorum", "法定人数"],
  quorum_ok: ["present", "满足"],
  quorum_missing: ["missing", "不足"],
  recent_blocks: ["Recent blocks", "最近区块"],
  time: ["Time", "时间"],
  txs: ["Transactions", "交易"],
  proposer: ["Proposer", "提议者"],
  hash: ["Hash", "哈希"],
  parent: ["Parent", "父区块"],
  log_root: ["Log root", "日志根"],
  subjects_root: ["Subject-map root", "主体映射根"],
  throughput: ["Throughput (transactions/s)", "吞吐量（笔/秒）"],
  latency: ["Commit latency (ms, mean per interval)", "提交延迟（毫秒，区间均值）"],
  chart_wait: ["Collecting samples…", "正在采样…"],
  now: ["now", "现在"],
  chart_no_commits: ["No transaction committed while sampling", "采样期间无交易提交"],
  chart_window: ["last minutes, sampled every 2 s from /metrics", "最近几分钟，每 2 秒从 /metrics 采样"],
  block: ["Block", "区块"],
  header: ["Header", "区块头"],
  certificate: ["Certificate", "提交证书"],
  signers: ["Signers by agency", "签名机构"],
  signed: ["signed", "已签名"],
  not_signed: ["did not sign", "未签名"],
  prev: ["Previous block", "上一区块"],
  next: ["Next block", "下一区块"],
  redacted: ["restricted (commitment only)", "受限记录（仅承诺值）"],
  no_txs: ["No transactions", "无交易"],
  record: ["Record", "记录"],
  status: ["Status", "状态"],
  type: ["Type", "类型"],
  subject: ["Subject", "主体"],
  kind: ["Kind", "类别"],
  grade: ["Grade", "等级"],
  severity: ["Severity", "严重程度"],
  evidence: ["Evidence digest", "证据摘要"],
  issued_at: ["Issued at", "签发时间"],
  valid_from: ["Valid from", "生效时间"],
  valid_until: ["Valid until", "失效时间"],
  sequence: ["Sequence", "序列号"],
  fields: ["Public fields", "公开字段"],
  issuer: ["Issuer", "签发机构"],
  log_index: ["Log index", "日志位置"],
  timeline: ["Life", "生命周期"],
  issued: ["issued", "签发"],
  committed: ["committed in block", "上链于区块"],
  revoked_by: ["revoked by", "被撤销，撤销记录"],
  reason: ["Reason", "原因"],
  target: ["Revokes", "撤销对象"],
  provenance: ["Provenance", "来源"],
  proofs: ["Files to verify offline", "可离线验证的文件"],
  bundle: ["proof bundle", "证明包"],
  trace: ["audit trace", "审计追踪"],
  report: ["subject report", "主体报告"],
  subject_page: ["Subject", "主体"],
  complete_as_of: ["Complete as of height", "截至高度，记录完整"],
  records: ["Records", "记录"],
  no_records: ["No records about this subject", "无关于该主体的记录"],
  restricted: ["Restricted", "受限"],
  forbidden: ["This record is restricted: only its issuer and authorised lenders may read it.", "该记录受限：仅签发机构和已获授权的贷款机构可查看。"],
  verify_title: ["Verify a file offline", "离线验证文件"],
  verify_intro: ["Choose or drop a proof bundle, subject report, audit trace, consistency proof or query audit, and the chain's genesis file. The check runs in this browser (WebCrypto SHA-256 and Ed25519), following docs/proofs.md step by step; nothing is sent to the node.", "选择或拖入证明包、主体报告、审计追踪、一致性证明或查询审计文件，以及本链的创世文件。验证在本浏览器中进行（WebCrypto SHA-256 与 Ed25519），按 docs/proofs.md 逐步检查，不向节点发送任何内容。"],
  verify_file: ["Proof file", "证明文件"],
  verify_genesis: ["Genesis file", "创世文件"],
  verify_run: ["Verify", "验证"],
  verify_drop: ["or drop both files here", "或将两个文件拖到此处"],
  verify_need: ["Choose both files first.", "请先选择两个文件。"],
  verify_ok: ["Verified", "验证通过"],
  verify_fail: ["Rejected", "验证失败"],
  verify_check: ["Failed check", "未通过的检查"],
  verify_limits: ["Every file `yrd verify` reads is checked here in full, including files of a chain whose membership changed (the page replays the governance changes from the genesis) and query audit files. Verification needs a secure context: open the console as http://127.0.0.1 or localhost (e.g. through an SSH tunnel) or over https; elsewhere the page refuses to verify (check \"unsupported\") and never shows a file as valid.", "`yrd verify` 可读取的所有文件均在此完整检查，包括成员变更过的链的文件（本页面从创世起重放治理变更）和查询审计文件。验证需要安全上下文：请通过 http://127.0.0.1 或 localhost（例如 SSH 隧道）或 https 打开控制台；否则本页面拒绝验证（检查项 \"unsupported\"），绝不显示文件为有效。"],
  gov_changes: ["Membership: the genesis and {n} change(s)", "成员：创世及 {n} 项变更"],
  gov_change: ["from block {e} (approved in block {a}, proposed by {p})", "自区块 {e} 起（区块 {a} 批准，{p} 提议）"],
  key_retired: ["key {reason} at block {h}", "密钥于区块 {h} {reason}"],
  anchor: ["Anchor", "锚定区块"],
  age: ["Age", "时效"],
  active: ["active", "有效"],
  expired: ["expired", "已过期"],
  revoked: ["revoked", "已撤销"],
  "not-yet-valid": ["not yet valid", "尚未生效"],
  revocation: ["revocation", "撤销记录"],
  pending: ["pending", "待上链"],
  attestation: ["attestation", "信用记录"],
  not_found: ["Not found", "未找到"],
  back_chain: ["Back to the chain", "返回链概览"],
  positions_hidden: ["Redacted entries (position, commitment)", "受限条目（位置、承诺值）"],
  records_complete: ["all {n} records about the subject (complete)", "该主体的全部 {n} 条记录（完整）"],
  records_range: ["records {from}..{to} of exactly {n} (one page, not the complete list)", "共 {n} 条中的第 {from}..{to} 条（单页，非完整列表）"],
  none: ["none", "无"],
};

const KINDS = {
  "red-list": "守信红名单",
  "serious-dishonesty": "严重失信主体名单",
  "administrative-penalty": "行政处罚",
  "credit-rating": "公共信用评价",
  "tax-credit": "纳税信用等级",
  "court-enforcement": "失信被执行人",
  "commitment": "信用承诺",
};

const REASONS = { repair: ["credit repair", "信用修复"], dispute: ["upheld dispute", "异议处理"], error: ["issuer error", "签发错误"] };

const STORE_KEY = "yrd-console-lang";

let lang = "en";
try {
  const saved = window.localStorage.getItem(STORE_KEY);
  if (saved === "zh" || saved === "en") lang = saved;
} catch (_) { /* storage blocked: English */ }

export function currentLang() { return lang; }

export function setLang(l) {
  lang = l === "zh" ? "zh" : "en";
  try { window.localStorage.setItem(STORE_KEY, lang); } catch (_) { /* not remembered */ }
}

/** The label `key` in the current language (the key itself when unknown). */
export function t(key) {
  const s = STRINGS[key];
  if (!s) return key;
  return lang === "zh" ? s[1] : s[0];
}

/** A kind's name: kebab-case in English with the Chinese name in Chinese. */
export function kindName(kind) {
  if (!kind) return "";
  return lang === "zh" && KINDS[kind] ? KINDS[kind] : kind;
}

export function reasonName(r) {
  if (!r) return "";
  const s = REASONS[r];
  return s ? (lang === "zh" ? s[1] : s[0]) : r;
}

/** Applies the language to the static parts of the page. */
export function applyStatic(doc) {
  doc.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of doc.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of doc.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  const b = doc.getElementById("lang");
  if (b) b.textContent = lang === "zh" ? "English" : "中文";
}
