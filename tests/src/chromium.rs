//! A headless Chromium driven over the DevTools protocol, for the console tests.
//!
//! No websocket and no extra crate: Chromium's `--remote-debugging-pipe` reads
//! DevTools commands from file descriptor 3 and writes answers and events to
//! descriptor 4, each message JSON ending in a NUL byte. The browser is started
//! through `sh -c 'exec chromium … 3<&0 4>&1'` so that our pipes to its stdin and
//! stdout become those two descriptors (no `unsafe` `pre_exec`).
//!
//! The browser runs in its own process group with a temporary profile directory,
//! `--headless=new --no-sandbox`, and every host name but 127.0.0.1 mapped to
//! nothing; the group is killed when the [`Browser`] is dropped (also when a test
//! fails), so no Chromium process outlives the test.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one DevTools command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$YRD_CHROMIUM`, else the first of Debian's and other
/// usual names found on `PATH`. `None`: tests that need it skip with a reason.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("YRD_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Something the page reported that a test must not see: a console error, an
/// uncaught exception, a failed or refused request (status ≥ 400).
#[derive(Debug, Clone)]
pub struct PageProblem {
    pub what: String,
}

/// One browser with one page (tab) attached in flat session mode.
pub struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Events received while waiting for answers, not yet looked at.
    events: VecDeque<Value>,
    /// Problems seen since the last [`Browser::take_problems`].
    problems: Vec<PageProblem>,
    /// Every URL the page requested.
    requests: Vec<String>,
    _profile: tempfile::TempDir,
    pub log: PathBuf,
}

impl Browser {
    /// Starts `binary` headless with a `width`×`height` window and opens one page.
    pub fn start(binary: &Path, width: u32, height: u32) -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| format!("profile dir: {e}"))?;
        let log = profile.path().join("chromium.log");
        let stderr = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<&0 4>&1 0</dev/null 1>/dev/null")
            .arg(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--remote-debugging-pipe",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--metrics-recording-only",
                "--mute-audio",
                "--hide-scrollbars",
                // Nothing but loopback: any other name resolves to nothing.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                &format!("--window-size={width},{height}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let to_browser = child.stdin.take().ok_or("no stdin pipe")?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        let Ok(v) = serde_json::from_slice::<Value>(&buf) else { continue };
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to_browser,
            from_browser: rx,
            next_id: 1,
            session: String::new(),
            events: VecDeque::new(),
            problems: Vec::new(),
            requests: Vec::new(),
            _profile: profile,
            log,
        };
        let target = b.call_browser("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_string();
        let attached = b.call_browser("Target.attachToTarget", json!({"targetId": target_id, "flatten": true}))?;
        b.session = attached["sessionId"].as_str().ok_or("no sessionId")?.to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable", "Network.enable", "DOM.enable"] {
            b.call(domain, json!({}))?;
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(b)
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::from(s);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.to_browser.write_all(&bytes).map_err(|e| format!("{method}: browser pipe: {e}"))?;
        self.to_browser.flush().map_err(|e| format!("{method}: browser pipe: {e}"))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_browser.recv_timeout(left) {
                Ok(v) if v["id"].as_u64() == Some(id) => {
                    if let Some(e) = v.get("error") {
                        return Err(format!("{method}: {e}"));
                    }
                    return Ok(v["result"].clone());
                }
                Ok(v) => self.note_event(v),
                Err(RecvTimeoutError::Timeout) => return Err(format!("{method}: no answer in {COMMAND_TIMEOUT:?}")),
                Err(RecvTimeoutError::Disconnected) => return Err(format!("{method}: the browser closed its pipe")),
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.send(method, params, None)
    }

    /// A command to the page's session.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    /// Reads events that arrived meanwhile (without blocking).
    pub fn pump(&mut self) {
        while let Ok(v) = self.from_browser.try_recv() {
            self.note_event(v);
        }
    }

    fn note_event(&mut self, v: Value) {
        let p = &v["params"];
        match v["method"].as_str().unwrap_or_default() {
            "Runtime.exceptionThrown" => {
                let d = &p["exceptionDetails"];
                let text = d["exception"]["description"].as_str().or(d["text"].as_str()).unwrap_or_default();
                self.problems.push(PageProblem { what: format!("uncaught exception: {text}") });
            }
            "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x["value"].as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect())
                    .unwrap_or_default();
                self.problems.push(PageProblem { what: format!("console.{}: {}", p["type"], args.join(" ")) });
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                let e = &p["entry"];
                self.problems.push(PageProblem { what: format!("log ({}): {} {}", e["source"], e["text"], e["url"]) });
            }
            "Network.requestWillBeSent" => {
                self.requests.push(p["request"]["url"].as_str().unwrap_or_default().to_string());
            }
            "Network.loadingFailed" => {
                self.problems.push(PageProblem { what: format!("request failed: {} ({})", p["errorText"], p["requestId"]) });
            }
            "Network.responseReceived" => {
                let status = p["response"]["status"].as_u64().unwrap_or(0);
                if status >= 400 {
                    self.problems.push(PageProblem { what: format!("HTTP {status} for {}", p["response"]["url"]) });
                }
            }
            _ => {}
        }
        self.events.push_back(v);
        while self.events.len() > 1000 {
            self.events.pop_front();
        }
    }

    /// The problems seen since the last call.
    pub fn take_problems(&mut self) -> Vec<PageProblem> {
        self.pump();
        std::mem::take(&mut self.problems)
    }

    /// Every URL the page requested so far.
    pub fn requests(&mut self) -> Vec<String> {
        self.pump();
        self.requests.clone()
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value.
    pub fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true}))?;
        if let Some(d) = r.get("exceptionDetails") {
            let text = d["exception"]["description"].as_str().or(d["text"].as_str()).unwrap_or_default();
            return Err(format!("page threw: {text}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expr` until it is `true` (bounded by `secs`).
    pub fn wait_for(&mut self, expr: &str, secs: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.eval(expr)? == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not true within {secs} s: {expr}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn navigate(&mut self, url: &str) -> Result<(), String> {
        let r = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = r.get("errorText") {
            return Err(format!("navigate {url}: {e}"));
        }
        Ok(())
    }

    /// A real mouse click at the middle of the first element matching `selector`.
    pub fn click(&mut self, selector: &str) -> Result<(), String> {
        let sel = serde_json::to_string(selector).map_err(|e| e.to_string())?;
        let r = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ))?;
        let (x, y) = match r.as_array().map(|a| (a[0].as_f64(), a[1].as_f64())) {
            Some((Some(x), Some(y))) => (x, y),
            _ => return Err(format!("no element {selector}")),
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call("Input.dispatchMouseEvent", json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}))?;
        }
        Ok(())
    }

    /// Presses one key (`"Tab"`, `"Enter"`), as the keyboard would.
    pub fn press(&mut self, key: &str) -> Result<(), String> {
        let (code, text) = match key {
            "Enter" => (13, "\r"),
            "Tab" => (9, ""),
            other => return Err(format!("key {other} not mapped")),
        };
        let mut down = json!({"type": "keyDown", "key": key, "code": key, "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code});
        if !text.is_empty() {
            down["text"] = Value::from(text);
        }
        self.call("Input.dispatchKeyEvent", down)?;
        self.call("Input.dispatchKeyEvent", json!({"type": "keyUp", "key": key, "code": key, "windowsVirtualKeyCode": code}))?;
        Ok(())
    }

    /// Types `text` into the focused element.
    pub fn type_text(&mut self, text: &str) -> Result<(), String> {
        self.call("Input.insertText", json!({"text": text})).map(|_| ())
    }

    /// Sets the files of the `<input type=file>` matching `selector`.
    pub fn set_files(&mut self, selector: &str, files: &[&Path]) -> Result<(), String> {
        let doc = self.call("DOM.getDocument", json!({"depth": 0}))?;
        let root = doc["root"]["nodeId"].as_u64().ok_or("no document")?;
        let found = self.call("DOM.querySelector", json!({"nodeId": root, "selector": selector}))?;
        let node = found["nodeId"].as_u64().filter(|n| *n != 0).ok_or_else(|| format!("no element {selector}"))?;
        let files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        self.call("DOM.setFileInputFiles", json!({"nodeId": node, "files": files})).map(|_| ())
    }

    /// A PNG screenshot of the viewport, written to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Result<(), String> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = r["data"].as_str().ok_or("no screenshot data")?;
        let bytes = base64_decode(data).ok_or("screenshot is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The process group id (= the browser's pid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::Pid;
        let _ = self.call_browser("Browser.close", json!({}));
        // Whatever is left of the group (renderers, zygote, GPU process).
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Standard base64 (the DevTools protocol's binary encoding).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            b'\n' | b'\r' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(super::base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(super::base64_decode("*"), None);
    }
}
