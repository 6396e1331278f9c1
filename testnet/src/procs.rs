//! The processes the testnet starts, and nothing else: spawning, watching for
//! unexpected exits, stopping (SIGTERM, bounded wait, SIGKILL), and a guard that
//! stops them on drop — also when the testnet panics. Plus CPU time and peak
//! memory from `/proc`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a process gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The `yrd` binary: `$YRD_BIN`, or `yrd` next to this executable.
pub fn yrd_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("YRD_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(anyhow!("YRD_BIN={} is not a file", p.display()));
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("executable {} has no directory", exe.display()))?;
    let p = dir.join("yrd");
    if p.is_file() {
        Ok(p)
    } else {
        Err(anyhow!(
            "cannot find the yrd binary at {}; build it with `cargo build -p yrd-cli` (same profile), or set YRD_BIN",
            p.display()
        ))
    }
}

/// One process we started.
pub struct Proc {
    pub name: String,
    pub child: Child,
    /// Where its stdout and stderr go, if to a file.
    pub log: Option<PathBuf>,
    exit: Option<ExitStatus>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs (reaps it if it exited).
    pub fn running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(s)) => {
                self.exit = Some(s);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit
    }

    fn signal(&mut self, sig: Signal) {
        // Only signal a child we have not reaped: its pid cannot have been reused.
        if self.running() {
            if let Ok(pid) = i32::try_from(self.child.id()) {
                let _ = kill(Pid::from_raw(pid), sig);
            }
        }
    }
}

/// Every process the testnet started. Dropping it stops them all.
#[derive(Default)]
pub struct Procs {
    pub list: Vec<Proc>,
}

impl Procs {
    /// Starts `program args..` with extra environment `env` and stdout and stderr
    /// appended to `log`, in its own process group (so a Ctrl-C at the terminal
    /// reaches only us, and we stop the children in order), as `list[index]`:
    /// appended when `index == list.len()`, otherwise replacing an entry whose
    /// process has exited (a restart; refused while it still runs).
    pub fn spawn_logged_at(
        &mut self,
        index: usize,
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        log: &Path,
    ) -> Result<&mut Proc> {
        if index > self.list.len() {
            return Err(anyhow!("process slot {index} is beyond the {} started", self.list.len()));
        }
        if index < self.list.len() && self.list[index].running() {
            return Err(anyhow!("{} (pid {}) still runs; not starting it again", self.list[index].name, self.list[index].pid()));
        }
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open log file {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        self.spawn(name, cmd, Some(log.to_path_buf()))?;
        if index < self.list.len() - 1 {
            // The new process was pushed last: move it into its slot.
            self.list.swap_remove(index);
        }
        Ok(&mut self.list[index])
    }

    /// Starts a prepared command in its own process group.
    pub fn spawn(
        &mut self,
        name: &str,
        mut cmd: Command,
        log: Option<PathBuf>,
    ) -> Result<&mut Proc> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
        self.list.push(Proc {
            name: name.to_string(),
            child,
            log,
            exit: None,
        });
        let last = self.list.len() - 1;
        Ok(&mut self.list[last])
    }

    /// Processes that exited since the last call: `(name, status, log path)`.
    pub fn newly_exited(&mut self) -> Vec<(String, ExitStatus, Option<PathBuf>)> {
        let mut out = Vec::new();
        for p in &mut self.list {
            let was_known = p.exit.is_some();
            if !p.running() && !was_known {
                if let Some(s) = p.exit {
                    out.push((p.name.clone(), s, p.log.clone()));
                }
            }
        }
        out
    }

    /// SIGTERM to every running process, wait up to `grace` for all, then SIGKILL
    /// the rest and reap them. Returns the names of the processes that had to be
    /// killed.
    pub fn stop_all(&mut self, grace: Duration) -> Vec<String> {
        for p in &mut self.list {
            p.signal(Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && self.list.iter_mut().any(|p| p.running()) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut killed = Vec::new();
        for p in &mut self.list {
            if p.running() {
                let _ = p.child.kill();
                if let Ok(s) = p.child.wait() {
                    p.exit = Some(s);
                }
                killed.push(p.name.clone());
            }
        }
        killed
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        if self.list.iter_mut().any(|p| p.running()) {
            let killed = self.stop_all(STOP_GRACE);
            if !killed.is_empty() {
                eprintln!(
                    "yrd-testnet: killed (SIGKILL) after {} s: {}",
                    STOP_GRACE.as_secs(),
                    killed.join(", ")
                );
            }
        }
    }
}

/// The last `lines` lines of a log file (reads at most the last 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("(cannot open {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = strip_ansi(&String::from_utf8_lossy(&buf));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Removes terminal colour sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn clock_ticks_per_s() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// User plus system CPU time of a process, in clock ticks (`/proc/<pid>/stat`
/// fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_ticks(&text)
}

fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Peak resident memory (`VmHWM`) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&text, "VmHWM:")
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find(|l| l.starts_with(key))?[key.len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_and_status() {
        let stat = "1234 (yrd node (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 1000000 5000";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        let status = "Name:\tyrd\nVmPeak:\t  200000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(51234));
        // Our own process has both.
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(peak_rss_kib(me).unwrap() > 0);
    }

    #[test]
    fn stop_all_terminates_and_kills() {
        let mut procs = Procs::default();
        let mut sleep = Command::new("sleep");
        sleep.arg("60");
        procs.spawn("sleeper", sleep, None).unwrap();
        // A process that ignores SIGTERM must be SIGKILLed after the grace period.
        let mut stubborn = Command::new("sh");
        stubborn.args(["-c", "trap '' TERM; exec sleep 60"]);
        procs.spawn("stubborn", stubborn, None).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        let killed = procs.stop_all(Duration::from_millis(500));
        assert_eq!(killed, vec!["stubborn".to_string()]);
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(procs.list.iter_mut().all(|p| !p.running()));
        assert!(procs.newly_exited().is_empty());
    }

    #[test]
    fn drop_stops_children() {
        let pid;
        {
            let mut procs = Procs::default();
            let mut sleep = Command::new("sleep");
            sleep.arg("60");
            pid = procs.spawn("sleeper", sleep, None).unwrap().pid();
            assert!(Path::new(&format!("/proc/{pid}")).exists());
        }
        // Reaped by the guard: no process (not even a zombie) is left.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn tail_of_log() {
        let p = std::env::temp_dir().join(format!("yrd-testnet-tail-{}", std::process::id()));
        std::fs::write(
            &p,
            (1..=100).map(|i| format!("line {i}\n")).collect::<String>(),
        )
        .unwrap();
        assert_eq!(log_tail(&p, 2), "line 99\nline 100");
        std::fs::write(
            &p,
            "\u{1b}[2m2026-11-29T04:33:05Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m started\n",
        )
        .unwrap();
        assert_eq!(log_tail(&p, 5), "2026-11-29T04:33:05Z  INFO started");
        std::fs::remove_file(&p).unwrap();
    }
}
