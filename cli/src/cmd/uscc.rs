//! `yrd uscc`: checking Unified Social Credit Codes, one at a time or whole registers.
//!
//! The register check streams its input line by line with a reused buffer (no
//! per-line allocation for valid lines), collects `(code, line)` pairs of valid codes
//! and finds duplicates by sorting them once at the end.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde::Serialize;
use yrd_ledger::uscc::Uscc;

use crate::{EXIT_CHECK_FAILED, EXIT_USAGE};

/// The plan's target for the share of invalid and duplicate codes in a register.
pub const TARGET_RATE: f64 = 0.0001;

/// Inputs longer than this are shortened in reports (the reason is still exact).
const INPUT_SHOWN_MAX_CHARS: usize = 200;

/// Longest line we hold in memory; longer lines are reported invalid and skipped.
pub const LINE_MAX_BYTES: usize = 64 * 1024;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: UsccCommand,
}

#[derive(Subcommand)]
enum UsccCommand {
    /// Check one code (--code) or a register file: invalid lines, duplicates, summary
    #[command(long_about = CHECK_LONG_ABOUT)]
    Check(CheckArgs),
    /// Print deterministic valid sample codes, one per line (test data)
    Generate(GenerateArgs),
}

const CHECK_LONG_ABOUT: &str = "\
Check Unified Social Credit Codes (统一社会信用代码, GB 32100-2015).

With --code CODE, checks one code: prints the normalised code and `valid`, or the reason
it is invalid.

Otherwise reads a register from FILE (or standard input if FILE is `-` or absent): one
code per line, or with --column N the N-th (1-based) field of each CSV line. It reports
every invalid line with its 1-based line number and the reason, every valid code that
occurs on more than one line (after normalisation) with all its line numbers, and a
summary.

A code is valid when, after trimming, removing spaces and hyphens and upper-casing, it
has 18 characters from 0-9 and A-Z without I, O, S, V, Z; positions 3-8 (the
administrative division code) are digits; and the 18th character is the GB 32100-2015
check character. Full-width characters (Ａ, １, the ideographic space) are rejected, not
converted. Positions 1-2 are not restricted to a list: amendments to the standard keep
adding registration departments, and a closed list would reject real codes.

Input rules:
  * Line numbers are physical lines of the input, starting at 1 (the header counts).
  * Blank lines (empty or only whitespace) are skipped: they are neither checked nor
    counted in the total; the summary says how many were skipped.
  * Without --header the first line is checked like any other, so a header such as
    `统一社会信用代码` is reported invalid; --header skips line 1.
  * A UTF-8 byte-order mark at the start and CRLF line endings are accepted.
  * A line longer than 65536 bytes is reported invalid (and not held in memory).
  * A line (in CSV mode: a field) that is not valid UTF-8 is reported invalid; in CSV
    mode the other columns may be in any ASCII-compatible encoding such as GBK.
  * CSV mode: fields are separated by --delimiter (default `,`); a field may be quoted
    with \" and contain the delimiter and doubled quotes \"\"; a quoted field cannot span
    lines. An empty field, a missing column or a broken quote makes the line invalid.

Summary: total = number of codes checked (lines that are not blank and not the
header); invalid = lines whose code is invalid; duplicated = distinct valid codes that
occur on more than one line; extra occurrences = for each duplicated code, its number
of lines minus one. rate = (invalid + extra occurrences) / total, i.e. the share of
lines that would have to be corrected or removed; the plan's target is a rate below
0.01%.

--json prints exactly one JSON object:
  {\"total\": N, \"invalid\": [{\"line\": L, \"input\": \"...\", \"reason\": \"...\"}],
   \"duplicates\": [{\"code\": \"...\", \"lines\": [L1, L2, ...]}],
   \"blank_lines\": B, \"header_skipped\": bool, \"duplicated\": D,
   \"duplicate_extra\": E, \"rate\": R, \"target_rate\": 0.0001, \"meets_target\": bool}
`input` is the line (in CSV mode, the field) as read, without its line ending, lossily
decoded if it is not UTF-8 and cut to 200 characters. Invalid lines are in line order;
duplicates are in the order of their first line. With --code, --json prints
  {\"input\": \"...\", \"valid\": bool, \"code\": \"...\" or null, \"reason\": null or \"...\"}

Exit status: 0 no invalid code (duplicates alone do not fail); 1 at least one invalid
code; 2 usage error or unreadable input.";

#[derive(clap::Args)]
struct CheckArgs {
    /// Register to check, one code per line; `-` or nothing reads standard input
    #[arg(value_name = "FILE|-", conflicts_with = "code")]
    input: Option<PathBuf>,

    /// Check this one code instead of a file
    #[arg(long, value_name = "CODE")]
    code: Option<String>,

    /// Read the code from this 1-based column of CSV lines
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    column: Option<u32>,

    /// Field delimiter for --column: one ASCII character, or `tab` (or \t) for a tab
    #[arg(long, value_name = "CHAR", default_value = ",", requires = "column", value_parser = parse_delimiter)]
    delimiter: u8,

    /// Skip the first line (a header); it still counts for line numbers
    #[arg(long, conflicts_with = "code")]
    header: bool,

    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// How many codes to print
    #[arg(long, value_name = "N")]
    count: u64,

    /// Index of the first sample (samples with different indexes are different codes)
    #[arg(long, value_name = "I", default_value_t = 0)]
    start: u64,
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    let s = if s == "\\t" || s == "tab" { "\t" } else { s };
    match s.as_bytes() {
        [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => Ok(*b),
        _ => Err(format!(
            "delimiter must be one ASCII character other than a quote or line break, got {s:?}"
        )),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        UsccCommand::Check(check) => run_check(check),
        UsccCommand::Generate(generate) => run_generate(generate),
    }
}

fn run_generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let end = args
        .start
        .checked_add(args.count)
        .context("--start + --count overflows")?;
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    for index in args.start..end {
        out.write_all(Uscc::sample(index).as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn run_check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    if let Some(code) = &args.code {
        let valid = check_one(code, args.json, &mut out)?;
        out.flush()?;
        return Ok(if valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_CHECK_FAILED)
        });
    }
    let options = Options {
        column: args.column.map(|c| c as usize),
        delimiter: args.delimiter,
        header: args.header,
    };
    let report = match &args.input {
        Some(path) if path.as_os_str() != "-" => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            check_register(BufReader::with_capacity(1 << 16, file), &options)
                .with_context(|| format!("cannot read {}", path.display()))?
        }
        _ => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprintln!("yrd: error: no input: give a FILE, `-` with data on standard input, or --code CODE");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            check_register(BufReader::with_capacity(1 << 16, stdin.lock()), &options)
                .context("cannot read standard input")?
        }
    };
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        out.write_all(b"\n")?;
    } else {
        write_text(&report, &options, &mut out)?;
    }
    out.flush()?;
    Ok(if report.invalid.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHECK_FAILED)
    })
}

#[derive(Serialize)]
struct OneCode<'a> {
    input: &'a str,
    valid: bool,
    code: Option<String>,
    reason: Option<String>,
}

fn check_one(input: &str, json: bool, out: &mut impl Write) -> anyhow::Result<bool> {
    let result = Uscc::parse(input);
    if json {
        let one = OneCode {
            input,
            valid: result.is_ok(),
            code: result.as_ref().ok().map(Uscc::to_string),
            reason: result.as_ref().err().map(ToString::to_string),
        };
        serde_json::to_writer(&mut *out, &one)?;
        writeln!(out)?;
    } else {
        match &result {
            Ok(code) => writeln!(out, "{code}: valid")?,
            Err(reason) => writeln!(out, "{input:?}: invalid: {reason}")?,
        }
    }
    Ok(result.is_ok())
}

/// How to read a register.
#[derive(Debug, Clone)]
pub struct Options {
    /// 1-based CSV column holding the code; `None` for one code per line.
    pub column: Option<usize>,
    pub delimiter: u8,
    /// Skip line 1.
    pub header: bool,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct InvalidLine {
    pub line: u32,
    pub input: String,
    pub reason: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Duplicate {
    pub code: String,
    pub lines: Vec<u32>,
}

/// The result of checking a register. Field order is the JSON key order.
#[derive(Debug, Serialize)]
pub struct Report {
    pub total: u64,
    pub invalid: Vec<InvalidLine>,
    pub duplicates: Vec<Duplicate>,
    pub blank_lines: u64,
    pub header_skipped: bool,
    pub duplicated: u64,
    pub duplicate_extra: u64,
    pub rate: f64,
    pub target_rate: f64,
    pub meets_target: bool,
}

/// Reads a whole register and checks every line.
pub fn check_register(mut reader: impl BufRead, options: &Options) -> anyhow::Result<Report> {
    let mut line_buf: Vec<u8> = Vec::with_capacity(256);
    let mut field_buf: Vec<u8> = Vec::with_capacity(64);
    let mut codes: Vec<(Uscc, u32)> = Vec::new();
    let mut invalid: Vec<InvalidLine> = Vec::new();
    let mut total = 0u64;
    let mut blank_lines = 0u64;
    let mut header_skipped = false;
    let mut line_number = 0u32;

    loop {
        line_buf.clear();
        let limit = LINE_MAX_BYTES as u64 + 1; // + 1 for the line feed
        if (&mut reader).take(limit).read_until(b'\n', &mut line_buf)? == 0 {
            break;
        }
        line_number = match line_number.checked_add(1) {
            Some(n) => n,
            None => bail!("more than {} lines", u32::MAX),
        };
        if line_buf.len() > LINE_MAX_BYTES && line_buf.last() != Some(&b'\n') {
            let skipped = skip_rest_of_line(&mut reader)?;
            total += 1;
            invalid.push(InvalidLine {
                line: line_number,
                input: format!("{}…", shown(&line_buf[..INPUT_SHOWN_MAX_CHARS])),
                reason: format!(
                    "line is {} bytes long, more than the {LINE_MAX_BYTES}-byte limit",
                    line_buf.len() + skipped
                ),
            });
            continue;
        }
        let mut line = line_buf.as_slice();
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if line_number == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            if options.header {
                header_skipped = true;
                continue;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            blank_lines += 1;
            continue;
        }
        total += 1;
        let mut reject = |input: &[u8], reason: String| {
            invalid.push(InvalidLine {
                line: line_number,
                input: shown(input),
                reason,
            });
        };
        let field = match options.column {
            None => line,
            Some(column) => match csv_field(line, column, options.delimiter, &mut field_buf) {
                Ok(field) => field,
                Err(reason) => {
                    reject(line, reason);
                    continue;
                }
            },
        };
        let text = match std::str::from_utf8(field) {
            Ok(text) => text,
            Err(e) => {
                let at = e.valid_up_to();
                let reason = format!(
                    "not valid UTF-8 (byte 0x{:02X} at byte {})",
                    field[at],
                    at + 1
                );
                reject(field, reason);
                continue;
            }
        };
        if let Some(column) = options.column {
            if text.trim().is_empty() {
                reject(field, format!("column {column} is empty"));
                continue;
            }
        }
        match Uscc::parse(text) {
            Ok(code) => codes.push((code, line_number)),
            Err(reason) => reject(field, reason.to_string()),
        }
    }

    let duplicates = find_duplicates(codes);
    let duplicated = duplicates.len() as u64;
    let duplicate_extra: u64 = duplicates.iter().map(|d| d.lines.len() as u64 - 1).sum();
    let rate = if total == 0 {
        0.0
    } else {
        (invalid.len() as u64 + duplicate_extra) as f64 / total as f64
    };
    Ok(Report {
        total,
        invalid,
        duplicates,
        blank_lines,
        header_skipped,
        duplicated,
        duplicate_extra,
        rate,
        target_rate: TARGET_RATE,
        meets_target: rate < TARGET_RATE,
    })
}

/// Discards input up to and including the next line feed; returns the bytes skipped
/// (not counting the line feed).
fn skip_rest_of_line(reader: &mut impl BufRead) -> io::Result<usize> {
    let mut skipped = 0usize;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let line_end = if end > 0 && buf[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                reader.consume(end + 1);
                return Ok(skipped + line_end);
            }
            None => {
                let len = buf.len();
                skipped += len;
                reader.consume(len);
            }
        }
    }
}

/// Groups equal codes; returns those on more than one line, ordered by first line.
fn find_duplicates(mut codes: Vec<(Uscc, u32)>) -> Vec<Duplicate> {
    codes.sort_unstable();
    let mut duplicates: Vec<Duplicate> = codes
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|run| run.len() > 1)
        .map(|run| Duplicate {
            code: run[0].0.to_string(),
            lines: run.iter().map(|&(_, line)| line).collect(),
        })
        .collect();
    duplicates.sort_unstable_by_key(|d| d.lines[0]);
    duplicates
}

/// The input as shown in reports: lossy UTF-8, at most `INPUT_SHOWN_MAX_CHARS`.
fn shown(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    match text.char_indices().nth(INPUT_SHOWN_MAX_CHARS) {
        None => text.into_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], input.len()),
    }
}

/// The `column`-th (1-based) field of a CSV line. Quoted fields may contain the
/// delimiter and doubled quotes; unquoted fields are taken literally. The field is
/// returned from `line` when it needs no unescaping, else from `scratch`.
fn csv_field<'a>(
    line: &'a [u8],
    column: usize,
    delimiter: u8,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], String> {
    let mut start = 0usize;
    let mut index = 1usize;
    loop {
        let wanted = index == column;
        let next: Option<usize>; // start of the following field, if any
        if line.get(start) == Some(&b'"') {
            scratch.clear();
            let mut i = start + 1;
            loop {
                match line.get(i) {
                    None => return Err(format!("unterminated quoted field in column {index}")),
                    Some(b'"') if line.get(i + 1) == Some(&b'"') => {
                        if wanted {
                            scratch.push(b'"');
                        }
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&b) => {
                        if wanted {
                            scratch.push(b);
                        }
                        i += 1;
                    }
                }
            }
            next = match line.get(i) {
                None => None,
                Some(&b) if b == delimiter => Some(i + 1),
                Some(&b) => {
                    return Err(format!(
                        "unexpected {:?} after the closing quote in column {index}",
                        char::from(b)
                    ))
                }
            };
            if wanted {
                return Ok(scratch.as_slice());
            }
        } else {
            let rest = &line[start..];
            let end = rest.iter().position(|&b| b == delimiter);
            if wanted {
                return Ok(&rest[..end.unwrap_or(rest.len())]);
            }
            next = end.map(|e| start + e + 1);
        }
        match next {
            Some(n) => start = n,
            None => {
                let s = if index == 1 { "" } else { "s" };
                return Err(format!(
                    "line has {index} column{s}, expected at least {column}"
                ));
            }
        }
        index += 1;
    }
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

fn write_text(report: &Report, options: &Options, out: &mut impl Write) -> io::Result<()> {
    for bad in &report.invalid {
        writeln!(
            out,
            "line {}: invalid {:?}: {}",
            bad.line, bad.input, bad.reason
        )?;
    }
    for dup in &report.duplicates {
        write!(out, "duplicate {} on lines ", dup.code)?;
        for (i, line) in dup.lines.iter().enumerate() {
            if i > 0 {
                out.write_all(b", ")?;
            }
            write!(out, "{line}")?;
        }
        writeln!(out)?;
    }
    let from = match options.column {
        None => String::new(),
        Some(column) => format!(" from column {column}"),
    };
    let mut skipped = Vec::new();
    if report.header_skipped {
        skipped.push("header line 1".to_string());
    }
    if report.blank_lines > 0 {
        let s = if report.blank_lines == 1 { "" } else { "s" };
        skipped.push(format!("{} blank line{s}", report.blank_lines));
    }
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(" ({} skipped)", skipped.join(" and "))
    };
    let total = report.total;
    writeln!(
        out,
        "summary: {total} {} checked{from}{skipped}",
        plural(total, "code", "codes")
    )?;
    writeln!(out, "  invalid:    {}", report.invalid.len())?;
    let (duplicated, extra) = (report.duplicated, report.duplicate_extra);
    writeln!(
        out,
        "  duplicated: {duplicated} {} on more than one line ({extra} extra {})",
        plural(duplicated, "code occurs", "codes occur"),
        plural(extra, "occurrence", "occurrences"),
    )?;
    writeln!(
        out,
        "  rate:       {:.4}% = (invalid {} + extra occurrences {extra}) / total {total}",
        report.rate * 100.0,
        report.invalid.len(),
    )?;
    let verdict = if report.meets_target {
        "met"
    } else {
        "NOT met"
    };
    writeln!(
        out,
        "  target:     rate below {:.2}% (the plan's target): {verdict}",
        TARGET_RATE * 100.0
    )?;
    Ok(())
}

#[cfg(test)]
fn report_of(input: &[u8], options: &Options) -> Report {
    check_register(input, options).expect("in-memory check")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(line: &str, column: usize) -> Result<String, String> {
        let mut scratch = Vec::new();
        csv_field(line.as_bytes(), column, b',', &mut scratch)
            .map(|f| String::from_utf8_lossy(f).into_owned())
    }

    #[test]
    fn csv_fields() {
        assert_eq!(field("a,b,c", 1), Ok("a".into()));
        assert_eq!(field("a,b,c", 3), Ok("c".into()));
        assert_eq!(field("a,,c", 2), Ok("".into()));
        assert_eq!(field("a,b,", 3), Ok("".into()));
        assert_eq!(field("\"x, \"\"y\"\"\",b", 1), Ok("x, \"y\"".into()));
        assert_eq!(field("\"x, y\",\"b,c\",d", 2), Ok("b,c".into()));
        assert_eq!(field("\"x, y\",\"b,c\",d", 3), Ok("d".into()));
        assert_eq!(
            field("a,b", 3),
            Err("line has 2 columns, expected at least 3".into())
        );
        assert_eq!(
            field("a", 2),
            Err("line has 1 column, expected at least 2".into())
        );
        assert_eq!(
            field("\"abc,d", 1),
            Err("unterminated quoted field in column 1".into())
        );
        assert_eq!(
            field("\"abc,d", 2),
            Err("unterminated quoted field in column 1".into())
        );
        assert_eq!(
            field("\"ab\"c,d", 2),
            Err("unexpected 'c' after the closing quote in column 1".into())
        );
        // A quote inside an unquoted field is taken literally.
        assert_eq!(field("a\"b,c", 1), Ok("a\"b".into()));
    }

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter(","), Ok(b','));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert!(parse_delimiter("\"").is_err());
        assert!(parse_delimiter(",,").is_err());
        assert!(parse_delimiter("，").is_err());
    }

    #[test]
    fn bom_crlf_blank_and_header() {
        let options = Options {
            column: None,
            delimiter: b',',
            header: false,
        };
        let report = report_of(
            b"\xEF\xBB\xBF91350100M000100Y43\r\n\r\n   \n91110000600037341L\r\n91350100m000100y43",
            &options,
        );
        assert_eq!(report.total, 3);
        assert_eq!(report.blank_lines, 2);
        assert!(report.invalid.is_empty());
        assert_eq!(
            report.duplicates,
            vec![Duplicate {
                code: "91350100M000100Y43".into(),
                lines: vec![1, 5]
            }]
        );
        let header = Options {
            header: true,
            ..options
        };
        let report = report_of(b"\xEF\xBB\xBFcode\n91350100M000100Y43\n", &header);
        assert!(report.header_skipped);
        assert_eq!(report.total, 1);
        assert!(report.invalid.is_empty());
    }

    #[test]
    fn overlong_lines_are_reported_and_skipped_without_holding_them() {
        let options = Options {
            column: None,
            delimiter: b',',
            header: false,
        };
        let mut input = b"91350100M000100Y43\n".to_vec();
        input.extend(std::iter::repeat_n(b'A', 3 * LINE_MAX_BYTES));
        input.extend_from_slice(b"\r\n91110000600037341L\n");
        input.extend(std::iter::repeat_n(b'B', LINE_MAX_BYTES)); // exactly the limit: fine
        input.extend_from_slice(b"\n");
        input.extend(std::iter::repeat_n(b'C', LINE_MAX_BYTES + 1)); // at EOF
        let report = report_of(&input, &options);
        assert_eq!(report.total, 5);
        let lines: Vec<(u32, &str)> = report
            .invalid
            .iter()
            .map(|i| (i.line, i.reason.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (
                    2,
                    "line is 196608 bytes long, more than the 65536-byte limit"
                ),
                (4, "expected 18 characters, got 65536"),
                (
                    5,
                    "line is 65537 bytes long, more than the 65536-byte limit"
                ),
            ]
        );
        assert_eq!(report.invalid[0].input, format!("{}…", "A".repeat(200)));
    }

    #[test]
    fn long_inputs_are_shortened() {
        let long = "x".repeat(1000);
        let shown = shown(long.as_bytes());
        assert!(shown.starts_with(&"x".repeat(200)));
        assert!(shown.ends_with("… (1000 bytes)"));
    }
}
