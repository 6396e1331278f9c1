//! The fault primitives, each with its undo: nft tables inside a node's network
//! namespace (partitions, one-way loss), libfaketime's timestamp file (clock
//! jumps), a per-node tmpfs and a filler file (full disk), and an LD_PRELOAD shim
//! compiled at run time that sleeps in fsync and its relatives while a control
//! file says so (slow fsync). Plus removing what a crashed run left.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

/// Source tag of every tmpfs a chaos run mounts: `yrdchaos-<pid>-<node>`, so
/// `--cleanup` finds the mounts of runs that are gone.
pub const MOUNT_TAG: &str = "yrdchaos-";
/// Prefix of the nft tables a fault adds in a namespace (`yrdchaos<fault index>`).
pub const NFT_TABLE: &str = "yrdchaos";
/// Where Debian's faketime package puts the preload library.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Chunk written while filling a disk: big enough to be quick, small enough that
/// what is left after ENOSPC is less than one chunk.
const FILL_CHUNK_BYTES: usize = 1 << 20;
/// The shim's environment: the file holding the delay (ms, text; empty or
/// missing: none) and the file it appends a byte to per delayed call.
pub const FSYNC_CONTROL_ENV: &str = "YRD_CHAOS_FSYNC_CONTROL";
pub const FSYNC_HITS_ENV: &str = "YRD_CHAOS_FSYNC_HITS";

fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why nft rules cannot be used here, or `None`.
pub fn nft_unavailable() -> Option<String> {
    match Command::new("nft").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("nft is not installed (apt-get install nftables)".into()),
    }
}

/// Loads an nft table `table` with `chains` (nft syntax) in namespace `ns`.
pub fn nft_add(ns: &str, table: &str, chains: &str) -> Result<()> {
    let script = format!("table inet {table} {{\n{chains}}}\n");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run nft in {ns}"))?;
    child.stdin.take().ok_or_else(|| anyhow!("no stdin for nft"))?.write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft in {ns} failed: {}\n{script}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Deletes table `table` in namespace `ns`.
pub fn nft_del(ns: &str, table: &str) -> Result<()> {
    run("ip", &["netns", "exec", ns, "nft", "delete", "table", "inet", table]).map(|_| ())
}

fn ip_set(ips: &[std::net::Ipv4Addr]) -> String {
    let list: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
    format!("{{ {} }}", list.join(", "))
}

/// Chains that drop everything to and from `others` (one side of a partition).
pub fn partition_chains(others: &[std::net::Ipv4Addr]) -> String {
    let set = ip_set(others);
    format!(
        "  chain in {{ type filter hook input priority 0; policy accept;\n    ip saddr {set} drop\n  }}\n  \
         chain out {{ type filter hook output priority 0; policy accept;\n    ip daddr {set} drop\n  }}\n"
    )
}

/// A chain that drops `pct` % of the packets sent to `peer` (one way only).
pub fn loss_chains(peer: std::net::Ipv4Addr, pct: i64) -> String {
    format!(
        "  chain out {{ type filter hook output priority 0; policy accept;\n    ip daddr {peer} numgen random mod 100 < {pct} drop\n  }}\n"
    )
}

/// The environment that puts a node under libfaketime with its offset read
/// from `file` on every call, wall clock only (and under the fsync shim if given).
pub fn preload_env(faketime_file: Option<&Path>, shim: Option<(&Path, &Path, &Path)>) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let mut preload = Vec::new();
    if let Some((so, control, hits)) = shim {
        preload.push(so.display().to_string());
        env.push((FSYNC_CONTROL_ENV.to_string(), control.display().to_string()));
        env.push((FSYNC_HITS_ENV.to_string(), hits.display().to_string()));
    }
    if let Some(f) = faketime_file {
        preload.push(LIBFAKETIME.to_string());
        env.push(("FAKETIME_TIMESTAMP_FILE".into(), f.display().to_string()));
        env.push(("FAKETIME_NO_CACHE".into(), "1".into()));
        env.push(("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()));
    }
    if !preload.is_empty() {
        env.push(("LD_PRELOAD".into(), preload.join(" ")));
    }
    env
}

/// Sets a libfaketime offset file: `+S` / `-S` seconds from the real clock.
pub fn set_clock(file: &Path, offset_s: i64) -> Result<()> {
    std::fs::write(file, format!("{offset_s:+}\n")).with_context(|| format!("cannot write {}", file.display()))
}

/// Why libfaketime cannot be used, or `None`.
pub fn faketime_unavailable() -> Option<String> {
    if Path::new(LIBFAKETIME).is_file() {
        None
    } else {
        Some(format!("{LIBFAKETIME} is missing (apt-get install faketime)"))
    }
}

/// Seconds since the epoch in an HTTP `Date` header (`Mon, 30 Nov 2026 10:34:14 GMT`).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == parts[2])? as i64 + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').map(|x| x.parse().ok()).collect::<Option<Vec<_>>>()?;
    if hms.len() != 3 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

/// The node's wall clock minus ours, seconds, two ways from one status answer:
/// its `Date` header (the HTTP server stamps it with the process's own clock,
/// but caches it until its clock passes the next second — so after a backward
/// jump it shows a stale time), and the status's `clock.offset_ms` (the median
/// offset of other validators' proposal timestamps: follows in either direction,
/// after a few proposals; positive there means the node's clock is behind).
pub fn node_clock_offsets_s(api_base: &str) -> Result<(i64, Option<f64>)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(3)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(&format!("{api_base}/v1/status")).call().context("GET /v1/status")?;
    let date = resp
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no Date header in the answer of {api_base}"))?;
    let theirs = parse_http_date(&date).ok_or_else(|| anyhow!("unreadable Date header {date:?}"))?;
    let ours = (crate::setup::now_ms() / 1000) as i64;
    let body: serde_json::Value = resp
        .body_mut()
        .read_json()
        .with_context(|| format!("GET {api_base}/v1/status: unreadable answer"))?;
    let status_offset = body["clock"]["offset_ms"].as_f64().map(|ms| -ms / 1000.0);
    Ok((theirs - ours, status_offset))
}

/// Mounts a tmpfs of `size_mib` on `dir` tagged `tag` (created if missing).
pub fn mount_tmpfs(dir: &Path, size_mib: u64, tag: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let d = dir.display().to_string();
    run("mount", &["-t", "tmpfs", "-o", &format!("size={size_mib}m,mode=0700"), tag, &d]).map(|_| ())
}

/// Unmounts `dir` (lazily if it is still busy).
pub fn unmount(dir: &Path) -> Result<()> {
    let d = dir.display().to_string();
    if run("umount", &[&d]).is_err() {
        run("umount", &["-l", &d])?;
    }
    Ok(())
}

/// Fills the file system of `dir` with `dir/chaos-filler`; returns its size.
/// The bulk is allocated with fallocate (no copying: quick even on a busy
/// machine, so the schedule does not slip), the rest written until ENOSPC.
pub fn fill(dir: &Path) -> Result<u64> {
    let path = filler_path(dir);
    let mut f = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut size = 0u64;
    if let Ok(st) = nix::sys::statvfs::statvfs(dir) {
        let avail = st.blocks_available() * st.fragment_size();
        // Ask for all of it, then less while it does not fit.
        let mut want = avail;
        while want >= FILL_CHUNK_BYTES as u64 {
            let len = nix::libc::off_t::try_from(want).unwrap_or(nix::libc::off_t::MAX);
            if nix::fcntl::fallocate(&f, nix::fcntl::FallocateFlags::empty(), 0, len).is_ok() {
                size = want;
                break;
            }
            want /= 2;
        }
    }
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(size))?;
    let chunk = vec![0xA5u8; FILL_CHUNK_BYTES];
    let mut len = FILL_CHUNK_BYTES;
    // Then write what is left, in smaller and smaller pieces down to a byte.
    while len > 0 {
        match f.write(&chunk[..len]) {
            Ok(n) if n > 0 => size += n as u64,
            Ok(_) => len /= 2,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => len /= 2,
            Err(e) => return Err(anyhow!("filling {}: {e}", path.display())),
        }
    }
    Ok(size)
}

pub fn filler_path(dir: &Path) -> PathBuf {
    dir.join("chaos-filler")
}

/// Removes the filler (no error if there is none).
pub fn unfill(dir: &Path) -> Result<()> {
    match std::fs::remove_file(filler_path(dir)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("cannot remove {}: {e}", filler_path(dir).display())),
    }
}

/// Unmounts the tmpfs of chaos runs that are gone (with `all`, of every run but
/// ours). Returns the mount points.
pub fn cleanup_mounts(all: bool) -> Result<Vec<String>> {
    let me = std::process::id();
    let text = std::fs::read_to_string("/proc/mounts").context("cannot read /proc/mounts")?;
    let mut done = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(src), Some(target)) = (f.next(), f.next()) else { continue };
        let Some(rest) = src.strip_prefix(MOUNT_TAG) else { continue };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if pid != Some(me) && (all || !alive) {
            // /proc/mounts escapes spaces as \040.
            let target = target.replace("\\040", " ");
            // A node of that run still running on loopback (no namespace to
            // find it by): its config sits next to the data directory.
            if let Some(node_dir) = Path::new(&target).parent() {
                kill_processes_mentioning(&node_dir.join("node.toml"));
            }
            unmount(Path::new(&target)).with_context(|| format!("unmounting {target}"))?;
            done.push(target);
        }
    }
    Ok(done)
}

/// SIGKILLs every process whose command line mentions `path`.
fn kill_processes_mentioning(path: &Path) {
    let needle = path.display().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else { return };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmd).split('\0').any(|a| a == needle) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The fsync shim: fsync, fdatasync, sync_file_range, syncfs and msync sleep for
/// the delay in the control file (ms) before doing their work, and append a byte
/// to the hits file per delayed call (so a run can show the fault bit).
const FSYNC_SHIM_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static long delay_ms(void) {
    const char *p = getenv("YRD_CHAOS_FSYNC_CONTROL");
    if (!p) return 0;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    return strtol(buf, 0, 10);
}

static void slow(void) {
    long ms = delay_ms();
    if (ms <= 0) return;
    const char *h = getenv("YRD_CHAOS_FSYNC_HITS");
    if (h) {
        int fd = open(h, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) { if (write(fd, ".", 1) < 0) {} close(fd); }
    }
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {}
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    slow();
    return real(fd);
}
int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    slow();
    return real(fd);
}
int syncfs(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
    slow();
    return real(fd);
}
int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
    static int (*real)(int, off64_t, off64_t, unsigned int);
    if (!real) real = (int (*)(int, off64_t, off64_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
    slow();
    return real(fd, off, n, flags);
}
int msync(void *addr, size_t len, int flags) {
    static int (*real)(void *, size_t, int);
    if (!real) real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
    slow();
    return real(addr, len, flags);
}
"#;

/// Compiles the fsync shim into `dir/fsync-shim.so` with `cc`.
pub fn build_fsync_shim(dir: &Path) -> Result<PathBuf> {
    let src = dir.join("fsync-shim.c");
    let so = dir.join("fsync-shim.so");
    std::fs::write(&src, FSYNC_SHIM_C).with_context(|| format!("cannot write {}", src.display()))?;
    let (s, o) = (src.display().to_string(), so.display().to_string());
    run("cc", &["-shared", "-fPIC", "-O2", "-o", &o, &s, "-ldl"]).context("compiling the fsync shim (is cc installed?)")?;
    Ok(so)
}

/// Sets the shim's delay for one node (0: none).
pub fn set_fsync_delay(control: &Path, delay_ms: i64) -> Result<()> {
    let text = if delay_ms > 0 { format!("{delay_ms}\n") } else { String::new() };
    std::fs::write(control, text).with_context(|| format!("cannot write {}", control.display()))
}

/// How many calls the shim has delayed (bytes in the hits file).
pub fn fsync_hits(hits: &Path) -> u64 {
    std::fs::metadata(hits).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Mon, 30 Nov 2026 10:36:30 GMT"), Some(1_796_034_990));
        assert_eq!(parse_http_date("Sun, 29 Feb 2032 12:00:01 GMT"), Some(1_961_668_801));
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("Mon, 30 Foo 2026 10:36:30 GMT"), None);
    }

    #[test]
    fn nft_chains_name_the_other_side() {
        use std::net::Ipv4Addr;
        let p = partition_chains(&[Ipv4Addr::new(10, 77, 1, 2), Ipv4Addr::new(10, 77, 1, 3)]);
        assert!(p.contains("ip saddr { 10.77.1.2, 10.77.1.3 } drop") && p.contains("ip daddr { 10.77.1.2, 10.77.1.3 } drop"), "{p}");
        let l = loss_chains(Ipv4Addr::new(10, 77, 1, 4), 35);
        assert!(l.contains("ip daddr 10.77.1.4 numgen random mod 100 < 35 drop") && !l.contains("input"), "{l}");
    }

    #[test]
    fn preload_env_chains_both_libraries() {
        let env = preload_env(Some(Path::new("/d/ft")), Some((Path::new("/d/s.so"), Path::new("/d/c"), Path::new("/d/h"))));
        let get = |k: &str| env.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        assert_eq!(get("LD_PRELOAD"), Some(format!("/d/s.so {LIBFAKETIME}")));
        assert_eq!(get("FAKETIME_DONT_FAKE_MONOTONIC").as_deref(), Some("1"));
        assert_eq!(get(FSYNC_CONTROL_ENV).as_deref(), Some("/d/c"));
        assert!(preload_env(None, None).is_empty());
    }
}
