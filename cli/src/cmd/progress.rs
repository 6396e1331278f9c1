//! Progress of a `--wait` on standard error: on a terminal one line rewritten about
//! once a second (how long, the node's height, whether a quorum is connected);
//! elsewhere nothing, unless `YRD_PROGRESS=1` asks for one line per update.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::Client;

/// Time between two progress updates (each asks the node for its status).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// `YRD_PROGRESS=1` prints progress even when stderr is not a terminal; `0` never.
pub const PROGRESS_ENV: &str = "YRD_PROGRESS";

pub struct Progress {
    mode: Mode,
    started: Instant,
    last: Option<Instant>,
    drawn: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    /// Rewrite one line (`\r`, clear to end of line).
    Terminal,
    /// One line per update.
    Lines,
}

impl Progress {
    pub fn new() -> Progress {
        let mode = match std::env::var(PROGRESS_ENV).as_deref() {
            Ok("0") => Mode::Off,
            Ok("1") => Mode::Lines,
            _ if std::io::stderr().is_terminal() => Mode::Terminal,
            _ => Mode::Off,
        };
        Progress { mode, started: Instant::now(), last: None, drawn: false }
    }

    /// Shows where the wait for `what` stands, at most once per [`PROGRESS_EVERY`].
    pub fn update(&mut self, client: &Client, what: &str) {
        if self.mode == Mode::Off || self.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let secs = self.started.elapsed().as_secs();
        let line = match client.get("/v1/status") {
            Ok(status) => format!("waiting {secs} s for {what}: {}", node_summary(&status)),
            Err(e) => format!("waiting {secs} s for {what}: {e}"),
        };
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            Mode::Terminal => write!(err, "\r\x1b[K{line}"),
            _ => writeln!(err, "{line}"),
        };
        let _ = err.flush();
        self.drawn = true;
    }

    /// Clears the progress line (on a terminal) before the result is printed.
    pub fn finish(&mut self) {
        if self.mode == Mode::Terminal && self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// `node at height H; quorum …; last block … ago`.
fn node_summary(status: &Value) -> String {
    let height = status.get("height").and_then(Value::as_u64).unwrap_or(0);
    let Some(l) = status.get("liveness").filter(|l| l.is_object()) else {
        return format!("node at height {height}");
    };
    let n = |k: &str| l.get(k).and_then(Value::as_u64).unwrap_or(0);
    let quorum = if l.get("quorum") == Some(&Value::Bool(true)) {
        format!("quorum present ({} of {} needed)", n("validators_connected"), n("validators_needed"))
    } else {
        let missing: Vec<&str> =
            l.get("validators_missing").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        format!(
            "QUORUM LOST ({} of {} needed; not connected: {}): nothing can become final",
            n("validators_connected"),
            n("validators_needed"),
            missing.join(", ")
        )
    };
    let catching = if l.get("catching_up") == Some(&Value::Bool(true)) {
        format!("; catching up to {}", n("best_known_height"))
    } else {
        String::new()
    };
    format!("node at height {height}; {quorum}; last block {:.1} s ago{catching}", n("last_block_age_ms") as f64 / 1000.0)
}
