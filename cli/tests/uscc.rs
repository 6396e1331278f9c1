//! End-to-end tests of `yrd uscc check` and `yrd uscc generate`: the real binary,
//! real files and pipes, exact output and exit statuses.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

fn yrd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_yrd"))
}

fn run(args: &[&str]) -> Output {
    yrd().args(args).output().expect("run yrd")
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = yrd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn yrd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait yrd")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write input file");
    path.to_str().expect("utf-8 path").to_string()
}

/// A register with valid codes, each kind of error, duplicates, a blank line,
/// CRLF endings and a BOM.
const MIXED: &[u8] = b"\xEF\xBB\xBF91350100M000100Y43\r\n\
9135O100M000100Y43\r\n\
\r\n\
91110000600037341L\n\
9135-0100-m000100y43\n\
91310000MA1FL4WF8W\n\
\xE7\xBB\x9F\xE4\xB8\x80\xE7\xA4\xBE\xE4\xBC\x9A\xE4\xBF\xA1\xE7\x94\xA8\xE4\xBB\xA3\xE7\xA0\x81\n\
91110000600037341L\n\
91350100M000100Y4\n\
91350100M000100Y43\n\
\xFF junk\n\
92371000MA3MXH0E3W";

const MIXED_TEXT: &str = "\
line 2: invalid \"9135O100M000100Y43\": character 'O' at position 5 is not allowed (I, O, S, V and Z are never used)
line 6: invalid \"91310000MA1FL4WF8W\": check character expected 'T', got 'W'
line 7: invalid \"统一社会信用代码\": character '统' at position 1 is not ASCII
line 9: invalid \"91350100M000100Y4\": expected 18 characters, got 17
line 11: invalid \"\u{FFFD} junk\": not valid UTF-8 (byte 0xFF at byte 1)
duplicate 91350100M000100Y43 on lines 1, 5, 10
duplicate 91110000600037341L on lines 4, 8
summary: 11 codes checked (1 blank line skipped)
  invalid:    5
  duplicated: 2 codes occur on more than one line (3 extra occurrences)
  rate:       72.7273% = (invalid 5 + extra occurrences 3) / total 11
  target:     rate below 0.01% (the plan's target): NOT met
";

fn mixed_json() -> Value {
    json!({
        "total": 11,
        "invalid": [
            {"line": 2, "input": "9135O100M000100Y43",
             "reason": "character 'O' at position 5 is not allowed (I, O, S, V and Z are never used)"},
            {"line": 6, "input": "91310000MA1FL4WF8W",
             "reason": "check character expected 'T', got 'W'"},
            {"line": 7, "input": "统一社会信用代码",
             "reason": "character '统' at position 1 is not ASCII"},
            {"line": 9, "input": "91350100M000100Y4",
             "reason": "expected 18 characters, got 17"},
            {"line": 11, "input": "\u{FFFD} junk",
             "reason": "not valid UTF-8 (byte 0xFF at byte 1)"},
        ],
        "duplicates": [
            {"code": "91350100M000100Y43", "lines": [1, 5, 10]},
            {"code": "91110000600037341L", "lines": [4, 8]},
        ],
        "blank_lines": 1,
        "header_skipped": false,
        "duplicated": 2,
        "duplicate_extra": 3,
        "rate": 8.0 / 11.0,
        "target_rate": 0.0001,
        "meets_target": false,
    })
}

#[test]
fn mixed_file_text_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), "mixed.txt", MIXED);
    let output = run(&["uscc", "check", &path]);
    assert_eq!(stdout(&output), MIXED_TEXT);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stderr.is_empty());
}

#[test]
fn mixed_file_json_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), "mixed.txt", MIXED);
    let output = run(&["uscc", "check", "--json", &path]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert_eq!(
        text.lines().count(),
        1,
        "exactly one JSON object on one line: {text}"
    );
    let value: Value = serde_json::from_str(&text).expect("one JSON object");
    assert_eq!(value, mixed_json());
}

#[test]
fn stdin_with_dash_and_without_file() {
    for args in [&["uscc", "check", "-"][..], &["uscc", "check"][..]] {
        let output = run_stdin(args, MIXED);
        assert_eq!(stdout(&output), MIXED_TEXT, "{args:?}");
        assert_eq!(output.status.code(), Some(1));
    }
    let output = run_stdin(&["uscc", "check", "--json", "-"], MIXED);
    let value: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(value, mixed_json());
}

#[test]
fn all_valid_exits_zero_and_duplicates_alone_do_not_fail() {
    let output = run_stdin(
        &["uscc", "check", "-"],
        b"91350100M000100Y43\n91110000600037341L\n",
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output),
        "summary: 2 codes checked\n  invalid:    0\n  \
         duplicated: 0 codes occur on more than one line (0 extra occurrences)\n  \
         rate:       0.0000% = (invalid 0 + extra occurrences 0) / total 2\n  \
         target:     rate below 0.01% (the plan's target): met\n"
    );
    let output = run_stdin(
        &["uscc", "check", "--json"],
        b"91350100M000100Y43\n91350100 M000100 Y43\n",
    );
    assert_eq!(output.status.code(), Some(0));
    let value: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(value["invalid"], json!([]));
    assert_eq!(
        value["duplicates"],
        json!([{"code": "91350100M000100Y43", "lines": [1, 2]}])
    );
    assert_eq!(value["rate"], json!(0.5));
}

#[test]
fn csv_column_mode() {
    let csv = "名称,统一社会信用代码,备注\r\n\
\"Acme, Ltd.\",91350100M000100Y43,ok\r\n\
\"Foo \"\"Bar\"\"\",9135O100M000100Y43,x\r\n\
Baz,,missing\r\n\
Qux\r\n\
\"Broken,91110000600037341L\r\n\
Dup,\"91350100-M000100Y43\",again\r\n\
\r\n\
Semi;colon,\"91110000600037341L\"\r\n";
    let mut bytes = csv.as_bytes().to_vec();
    // A GBK-encoded name column does not matter: only the code column must be UTF-8.
    bytes.extend_from_slice(b"\xC9\xCF\xBA\xA3,92371000MA3MXH0E3W,\r\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), "register.csv", &bytes);

    let output = run(&["uscc", "check", "--column", "2", "--header", &path]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "\
line 3: invalid \"9135O100M000100Y43\": character 'O' at position 5 is not allowed (I, O, S, V and Z are never used)
line 4: invalid \"\": column 2 is empty
line 5: invalid \"Qux\": line has 1 column, expected at least 2
line 6: invalid \"\\\"Broken,91110000600037341L\": unterminated quoted field in column 1
duplicate 91350100M000100Y43 on lines 2, 7
summary: 8 codes checked from column 2 (header line 1 and 1 blank line skipped)
  invalid:    4
  duplicated: 1 code occurs on more than one line (1 extra occurrence)
  rate:       62.5000% = (invalid 4 + extra occurrences 1) / total 8
  target:     rate below 0.01% (the plan's target): NOT met
"
    );

    // Without --header, the header cell is just an invalid code on line 1.
    let output = run(&["uscc", "check", "--column", "2", "--json", &path]);
    let value: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(value["total"], json!(9));
    assert_eq!(value["header_skipped"], json!(false));
    assert_eq!(
        value["invalid"][0],
        json!({"line": 1, "input": "统一社会信用代码", "reason": "character '统' at position 1 is not ASCII"})
    );
    assert_eq!(value["invalid"].as_array().map(Vec::len), Some(5));

    // Tab-separated, column 1.
    let output = run_stdin(
        &["uscc", "check", "--column", "1", "--delimiter", "tab"],
        b"91350100M000100Y43\tx\n91110000600037341X\ty\n",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).starts_with(
        "line 2: invalid \"91110000600037341X\": check character expected 'L', got 'X'\n"
    ));
}

#[test]
fn one_code() {
    let output = run(&["uscc", "check", "--code", "9135 0100-m000100y43"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), "91350100M000100Y43: valid\n");

    let output = run(&["uscc", "check", "--code", "91350100M000100Y4X"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "\"91350100M000100Y4X\": invalid: check character expected '3', got 'X'\n"
    );

    let output = run(&["uscc", "check", "--json", "--code", "91350100Z000100Y43"]);
    assert_eq!(output.status.code(), Some(1));
    let value: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        value,
        json!({"input": "91350100Z000100Y43", "valid": false, "code": null,
               "reason": "character 'Z' at position 9 is not allowed (I, O, S, V and Z are never used)"})
    );

    let output = run(&["uscc", "check", "--json", "--code", "91110000600037341l"]);
    assert_eq!(output.status.code(), Some(0));
    let value: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        value,
        json!({"input": "91110000600037341l", "valid": true, "code": "91110000600037341L", "reason": null})
    );
}

#[test]
fn usage_errors_and_unreadable_input_exit_two() {
    let output = run(&["uscc", "check", "/nonexistent/register.txt"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot open /nonexistent/register.txt"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(&["uscc", "check", dir.path().to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(2), "a directory is unreadable");

    for args in [
        &["uscc", "check", "--column", "0", "x"][..],
        &["uscc", "check", "--code", "X", "file"][..],
        &["uscc", "check", "--delimiter", ";", "x"][..],
        &["uscc", "check", "--column", "1", "--delimiter", "\"", "x"][..],
        &["uscc", "frobnicate"][..],
    ] {
        assert_eq!(run(args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn generated_samples_are_valid_and_distinct() {
    let output = run(&["uscc", "generate", "--count", "2000"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        output
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        2000
    );
    let checked = run_stdin(&["uscc", "check", "--json", "-"], &output.stdout);
    assert_eq!(checked.status.code(), Some(0));
    let value: Value = serde_json::from_slice(&checked.stdout).expect("json");
    assert_eq!(value["total"], json!(2000));
    assert_eq!(value["invalid"], json!([]));
    assert_eq!(value["duplicates"], json!([]));
    assert_eq!(value["meets_target"], json!(true));
}

#[test]
fn top_level_help_explains_the_tool() {
    let output = run(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(text.contains("YRD Credit Chain"));
    assert!(text.contains("uscc"));
    assert!(text.contains("Exit status"));
}
