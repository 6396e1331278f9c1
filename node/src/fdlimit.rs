//! The process's file-descriptor limit (`RLIMIT_NOFILE`) and the share of it the
//! HTTP API may use.
//!
//! Every TCP connection is a descriptor. Without a cap, API clients could take them
//! all, and then libp2p can neither accept nor dial a peer and sled cannot open a
//! file: the node stops finalising. So at start the soft limit is raised to the
//! hard limit, and the API's connection cap is derived from it with a reserve kept
//! for everything else ([`api_connection_cap`]).

/// Connections being closed (evicted or timed out, their task not yet ended) that
/// may exist on top of the cap: each still holds its descriptor for a moment.
/// Accepting stops answering normally while this many are in flight.
pub const CLOSING_SLACK: usize = 64;

/// Descriptors the API holds besides its connections: the listening socket and
/// one accepted socket being refused (answered 503 and closed at once).
pub const API_FIXED_FDS: u64 = 2;

/// Fewest connections the API must be able to serve; below this the node refuses
/// to start, since a node nobody can query or submit to is misconfigured.
pub const MIN_API_CONNECTIONS: usize = 16;

/// Used when the hard limit is "unlimited", which Linux does not accept as a soft
/// limit for descriptors (it is capped by `fs.nr_open`, 1,048,576 by default).
const UNLIMITED_TARGET: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// Soft limit found at start.
    pub before: u64,
    /// Soft limit in force now.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FdLimitError {
    #[error("cannot read the file-descriptor limit (RLIMIT_NOFILE): {0}")]
    Read(String),
    #[error(
        "the file-descriptor limit is {limit}; after http.fd_reserve = {reserve} for the network and the store \
         it leaves room for {available} API connections, fewer than {MIN_API_CONNECTIONS}: \
         raise `ulimit -n` (LimitNOFILE= under systemd) or lower http.fd_reserve"
    )]
    TooLow { limit: u64, reserve: u64, available: u64 },
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. A failure to raise it is not
/// an error (the current limit is kept and reported); failing to read it is.
pub fn raise_to_hard() -> Result<FdLimit, FdLimitError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| FdLimitError::Read(e.to_string()))?;
    let before = soft;
    let target = if hard == RLIM_INFINITY { UNLIMITED_TARGET } else { hard };
    if soft < target {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
            tracing::warn!(soft, hard, error = %e, "cannot raise the file-descriptor limit; keeping it");
        }
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| FdLimitError::Read(e.to_string()))?;
    Ok(FdLimit { before, soft, hard })
}

/// The API's connection cap: `max_connections`, lowered so that the API's
/// descriptors (connections, those being closed, the listener and one being
/// refused) stay within `fd_limit - fd_reserve`.
pub fn api_connection_cap(max_connections: usize, fd_limit: u64, fd_reserve: u64) -> Result<usize, FdLimitError> {
    let available = fd_limit.saturating_sub(fd_reserve).saturating_sub(API_FIXED_FDS + CLOSING_SLACK as u64);
    if available < MIN_API_CONNECTIONS as u64 {
        return Err(FdLimitError::TooLow { limit: fd_limit, reserve: fd_reserve, available });
    }
    Ok(max_connections.min(usize::try_from(available).unwrap_or(usize::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_the_reserve_and_the_api_overhead_free() {
        // Plenty of descriptors: the configured cap stands.
        assert_eq!(api_connection_cap(4096, 1 << 20, 512), Ok(4096));
        // 20,000 descriptors, 512 reserved: 20,000 - 512 - 2 - 64 = 19,422.
        assert_eq!(api_connection_cap(50_000, 20_000, 512), Ok(19_422));
        // The whole API fits within the limit with the reserve untouched.
        let cap = api_connection_cap(usize::MAX, 1024, 512).unwrap();
        assert_eq!(cap as u64 + CLOSING_SLACK as u64 + API_FIXED_FDS + 512, 1024);
    }

    #[test]
    fn too_few_descriptors_is_an_error_that_says_what_to_do() {
        let e = api_connection_cap(4096, 512, 512).unwrap_err();
        assert_eq!(e, FdLimitError::TooLow { limit: 512, reserve: 512, available: 0 });
        assert!(e.to_string().contains("ulimit -n"), "{e}");
        // Exactly the minimum is fine.
        let limit = 512 + API_FIXED_FDS + CLOSING_SLACK as u64 + MIN_API_CONNECTIONS as u64;
        assert_eq!(api_connection_cap(4096, limit, 512), Ok(MIN_API_CONNECTIONS));
        assert!(api_connection_cap(4096, limit - 1, 512).is_err());
    }

    #[test]
    fn raising_ends_at_the_hard_limit() {
        let l = raise_to_hard().unwrap();
        assert!(l.soft >= l.before, "{l:?}");
        assert!(l.soft <= l.hard, "{l:?}");
        let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, l.soft);
    }
}
