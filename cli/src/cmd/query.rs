//! `yrd query`: attestations by subject, by id or by issuer, as a table or JSON.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use serde_json::{json, Map, Value};
use yrd_ledger::tx::TxId;
use yrd_ledger::uscc::Uscc;

use super::client::{path_segment, text_field, Client, NodeArgs};
use crate::EXIT_CHECK_FAILED;

/// Most attestations one issuer query asks for (the API's limit).
const ISSUER_PAGE_MAX: u32 = 1000;
/// Hex digits of a block hash shown in the table (`--json` has all 64).
const TABLE_HASH_HEX_DIGITS: usize = 16;

#[derive(clap::Args)]
#[command(
    long_about = "\
Query a node for attestations (and revocations): every record about one enterprise
(--subject USCC), one record by its id (--id ID), or the records signed by one issuer
(--issuer NAME, or the issuer's public key in hex; in sequence order, a page at a
time).

The table shows for each record its id, status (active, expired, revoked, revocation, or
pending if still in the mempool), block height, block hash (first 16 hex digits), kind,
subject and issuer; on a terminal it fits the width (COLUMNS, or 120): ids are
shortened to 16 hex digits and long cells cut with `…` (--json has everything). --id
shows the one record field by field. --json prints one object {\"attestations\": [..], ..}: each element
is the node's attestation object (docs/api.md) with at least id, status, height and
block_hash (null while pending); for --subject the object also has subject and height
(the node's height), for --issuer the issuer and last_sequence.

Exit status: 0 success (also when a subject has no records); 1 --id names no record on
the node; 2 usage error (e.g. an invalid USCC, with the reason), unknown issuer,
unreachable node.",
    after_help = "\
Examples:
  yrd query --subject 91350100M000100Y43
  yrd query --node http://10.0.0.2:8601 --id 5f2c…e81a --json
  yrd query --issuer shanghai-credit --limit 1000 --after 1767225600000000"
)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(false)))]
pub struct Args {
    #[command(flatten)]
    node: NodeArgs,

    #[command(flatten)]
    read_key: super::client::ReadKeyArgs,

    /// Every record about this enterprise (Unified Social Credit Code)
    #[arg(long, value_name = "USCC", group = "what")]
    subject: Option<String>,

    /// The record with this id (64 hex digits)
    #[arg(long, value_name = "ID", group = "what")]
    id: Option<String>,

    /// Records signed by this issuer (its name in the genesis, or its public key in hex)
    #[arg(long, value_name = "NAME", group = "what")]
    issuer: Option<String>,

    /// With --issuer: only records with a sequence number greater than SEQ
    #[arg(long, value_name = "SEQ", requires = "issuer")]
    after: Option<u64>,

    /// With --issuer: at most N records (1 to 1000; default 100)
    #[arg(long, value_name = "N", requires = "issuer", value_parser = clap::value_parser!(u32).range(1..=ISSUER_PAGE_MAX as i64))]
    limit: Option<u32>,

    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::signing(&args.node.node, args.read_key.key.as_ref())?;
    let (mut answer, heading) = if let Some(subject) = &args.subject {
        let uscc = Uscc::parse(subject).map_err(|e| anyhow!("--subject {subject:?}: {e}"))?;
        let answer = client.get(&format!("/v1/subjects/{}/attestations", uscc.as_str()))?;
        let count = answer.get("attestations").and_then(Value::as_array).map_or(0, Vec::len);
        let height = answer.get("height").map(Value::to_string).unwrap_or_else(|| "?".into());
        (answer, format!("subject {uscc}: {count} record(s) at height {height}"))
    } else if let Some(id) = &args.id {
        let id = TxId::from_hex(id).map_err(|e| anyhow!("--id must be 64 hex digits: {e}"))?.to_hex();
        match client.get(&format!("/v1/attestations/{id}")) {
            Ok(record) => (json!({ "attestations": [record] }), String::new()),
            Err(e) if e.status() == Some(404) => {
                eprintln!("yrd: error: no attestation {id} on the node at {}", client.base());
                return Ok(ExitCode::from(EXIT_CHECK_FAILED));
            }
            Err(e) => return Err(e.into()),
        }
    } else if let Some(issuer) = &args.issuer {
        let mut path = format!("/v1/issuers/{}/attestations?limit={}", path_segment(issuer), args.limit.unwrap_or(100));
        if let Some(after) = args.after {
            path.push_str(&format!("&after={after}"));
        }
        let answer = client.get(&path)?;
        let count = answer.get("attestations").and_then(Value::as_array).map_or(0, Vec::len);
        (answer, format!("issuer {issuer}: {count} record(s)"))
    } else {
        bail!("give one of --subject, --id or --issuer");
    };

    let records = normalise(&mut answer)?;
    if args.json {
        println!("{answer}");
        return Ok(ExitCode::SUCCESS);
    }
    if !heading.is_empty() {
        println!("{heading}");
    }
    if args.id.is_some() {
        if let Some(record) = records.first() {
            print_detail(record);
        }
    } else if !records.is_empty() {
        print_table(&records, table_width());
    }
    if args.issuer.is_some() {
        let limit = args.limit.unwrap_or(100) as usize;
        if let (true, Some(last)) = (records.len() >= limit, records.last().and_then(|r| r.get("sequence"))) {
            println!("(more may follow: add --after {last})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes sure `answer.attestations` is an array whose elements all have `height` and
/// `block_hash` (null while pending); returns a copy of the records.
fn normalise(answer: &mut Value) -> anyhow::Result<Vec<Value>> {
    let list = answer
        .get_mut("attestations")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| anyhow!("unexpected answer from node: no \"attestations\" list"))?;
    for record in list.iter_mut() {
        if let Value::Object(map) = record {
            for key in ["height", "block_hash"] {
                map.entry(key).or_insert(Value::Null);
            }
        }
    }
    Ok(list.clone())
}

/// Columns a table may use: `COLUMNS` if set, else [`TERMINAL_COLUMNS_DEFAULT`] on a
/// terminal; unlimited when stdout is not a terminal (scripts get whole cells).
fn table_width() -> Option<usize> {
    use std::io::IsTerminal;
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|c| *c >= 40) {
        return Some(c);
    }
    std::io::stdout().is_terminal().then_some(TERMINAL_COLUMNS_DEFAULT)
}

/// Width assumed for a terminal that does not say (`COLUMNS` unset): the classic
/// 80 columns would cut most tables, 120 fits a laptop's terminal at its default size.
const TERMINAL_COLUMNS_DEFAULT: usize = 120;
/// Hex digits of an id kept when the table is too wide for the terminal.
const NARROW_ID_HEX_DIGITS: usize = 16;

/// `cell` cut to `w` characters, ending in `…` when cut.
fn fit(cell: &str, w: usize) -> String {
    if cell.chars().count() <= w {
        return cell.to_string();
    }
    let mut out: String = cell.chars().take(w.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Prints the table within `width` columns (if given): ids are shortened first, then
/// the block column is left out (`--json` and `query --id` have it), then the widest
/// of the kind and issuer columns (and last the subject) are cut with `…`.
fn print_table(records: &[Value], width: Option<usize>) {
    let header = ["ID", "STATUS", "HEIGHT", "BLOCK", "KIND", "SUBJECT", "ISSUER"].map(String::from);
    let mut rows: Vec<[String; 7]> = records.iter().map(row).collect();
    let mut shown: Vec<usize> = (0..7).collect();
    let measure = |rows: &[[String; 7]]| {
        let mut widths = header.clone().map(|h| h.chars().count());
        for r in rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    };
    let total = |w: &[usize; 7], shown: &[usize]| shown.iter().map(|c| w[*c]).sum::<usize>() + 2 * (shown.len() - 1);
    let mut widths = measure(&rows);
    if let Some(max) = width {
        if total(&widths, &shown) > max {
            for r in &mut rows {
                r[0] = fit(&r[0], NARROW_ID_HEX_DIGITS + 1);
            }
            widths = measure(&rows);
        }
        if total(&widths, &shown) > max {
            shown.retain(|c| *c != 3);
        }
        // Cut kind (4) and issuer (6) first, down to 8; then the subject (5).
        while total(&widths, &shown) > max {
            let col = [4usize, 6].into_iter().filter(|c| widths[*c] > 8).max_by_key(|c| widths[*c]);
            let col = col.or_else(|| (widths[5] > 8).then_some(5));
            let Some(col) = col else { break };
            widths[col] -= 1;
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = shown.iter().map(|c| format!("{:<w$}", fit(&r[*c], widths[*c]), w = widths[*c])).collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// One record, one field a line (`query --id`).
fn print_detail(record: &Value) {
    let [id, status, height, _, kind, subject, issuer] = row(record);
    let field = |k: &str| record.get(k).filter(|v| !v.is_null()).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    println!("id           {id}");
    println!("status       {status}");
    println!("kind         {kind}");
    if !subject.is_empty() && subject != "-" {
        println!("subject      {subject}");
    }
    println!("issuer       {issuer}");
    println!("height       {height}");
    if let Some(b) = field("block_hash") {
        println!("block        {b}");
    }
    let skip = ["id", "status", "kind", "grade", "severity", "subject", "issuer", "height", "block_hash", "type"];
    if let Some(map) = record.as_object() {
        for (k, v) in map.iter().filter(|(k, v)| !skip.contains(&k.as_str()) && !v.is_null()) {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Object(_) | Value::Array(_) => v.to_string(),
                other => other.to_string(),
            };
            let text = if k.ends_with("_ms") { v.as_u64().map_or(text.clone(), |ms| format!("{} ({text})", super::verify::time_text(ms))) } else { text };
            println!("{:<12} {text}", k);
        }
    }
}

fn row(record: &Value) -> [String; 7] {
    let empty = Map::new();
    let obj = record.as_object().unwrap_or(&empty);
    // A restricted record this caller may not read (docs/access.md): its commitment only.
    if obj.get("redacted").and_then(Value::as_bool) == Some(true) {
        // In an issuer's listing: its sequence number only.
        if let (None, Some(sequence)) = (obj.get("commitment"), obj.get("sequence").and_then(Value::as_u64)) {
            return [
                "(restricted)".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("sequence {sequence}"),
                "-".into(),
                "-".into(),
            ];
        }
        let commitment = text_field(record, "commitment");
        let commitment = commitment.get(..TABLE_HASH_HEX_DIGITS).map_or(commitment.to_string(), |c| format!("{c}…"));
        return [
            "(restricted)".into(),
            "-".into(),
            text_field(record, "height").into_owned(),
            "-".into(),
            format!("commitment {commitment}"),
            "-".into(),
            "-".into(),
        ];
    }
    let block = text_field(record, "block_hash");
    let block = if block.len() > TABLE_HASH_HEX_DIGITS { format!("{}…", &block[..TABLE_HASH_HEX_DIGITS]) } else { block.into_owned() };
    let kind = if obj.get("type").and_then(Value::as_str) == Some("revocation") {
        let reason = obj.get("reason").and_then(Value::as_str).unwrap_or("?");
        let target = obj.get("target").and_then(Value::as_str).map(|t| t.get(..12).unwrap_or(t)).unwrap_or("?");
        format!("revocation ({reason}) of {target}…")
    } else {
        let mut kind = text_field(record, "kind").into_owned();
        if let Some(g) = obj.get("grade").and_then(Value::as_str) {
            kind.push_str(&format!(" {}", g.to_ascii_uppercase()));
        }
        if let Some(s) = obj.get("severity").and_then(Value::as_str) {
            kind.push_str(&format!(" ({s})"));
        }
        kind
    };
    let issuer = match obj.get("issuer") {
        Some(Value::Object(i)) => {
            let name = i.get("name").and_then(Value::as_str).unwrap_or("?");
            match i.get("region").and_then(Value::as_str) {
                Some(region) => format!("{name} ({region})"),
                None => name.to_string(),
            }
        }
        Some(Value::String(s)) => s.clone(),
        _ => "-".into(),
    };
    [
        text_field(record, "id").into_owned(),
        text_field(record, "status").into_owned(),
        text_field(record, "height").into_owned(),
        block,
        kind,
        text_field(record, "subject").into_owned(),
        issuer,
    ]
}
