//! How many connections a server may hold: fewer than the process's
//! open-file limit (RLIMIT_NOFILE), so the database, the engine socket,
//! model files and logs always find a descriptor (issue 9, B4: 1,100
//! half-open connections under a limit of 1,024 left `/healthz` unanswered).

/// Descriptors kept for everything but connections, at the least.
pub const RESERVED_FDS_MIN: usize = 64;
/// The most connections one server holds however high the file limit: a
/// coordinator holds one long-polled claim per waiting node (10,000 in the
/// placement benchmark), each a few kilobytes while idle.
pub const MAX_CONNECTIONS: usize = 65_536;
/// The cap when the file limit cannot be read (as under the usual 1,024).
pub const FALLBACK_CONNECTIONS: usize = 768;

/// The soft open-file limit of this process, from `/proc/self/limits`
/// (the crate forbids `unsafe`, and none of the crates it builds exposes
/// `getrlimit` without rebuilding the model stack); `None` off Linux.
pub fn open_file_limit() -> Option<u64> {
    parse_open_file_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit on the `Max open files` line; `unlimited` is `u64::MAX`.
fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    match line.split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

/// Connections allowed under a file limit of `limit`: a quarter of it (at
/// least [`RESERVED_FDS_MIN`]) stays for everything else.
pub fn connection_cap(limit: Option<u64>) -> usize {
    let Some(limit) = limit else {
        return FALLBACK_CONNECTIONS;
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let reserve = (limit / 4).max(RESERVED_FDS_MIN);
    limit.saturating_sub(reserve).clamp(1, MAX_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
";

    #[test]
    fn the_soft_open_file_limit_is_read() {
        assert_eq!(parse_open_file_limit(LIMITS), Some(1024));
        let unlimited = LIMITS.replace("1024    ", "unlimited");
        assert_eq!(parse_open_file_limit(&unlimited), Some(u64::MAX));
        assert_eq!(parse_open_file_limit("Max cpu time 1 1 seconds"), None);
        assert!(open_file_limit().is_some_and(|limit| limit > 0));
    }

    #[test]
    fn the_cap_stays_below_the_file_limit_with_headroom() {
        assert_eq!(connection_cap(Some(1024)), 768);
        assert_eq!(connection_cap(Some(256)), 192);
        assert_eq!(connection_cap(Some(100)), 36);
        assert_eq!(connection_cap(Some(10)), 1);
        assert_eq!(connection_cap(Some(1 << 20)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(u64::MAX)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(None), FALLBACK_CONNECTIONS);
    }
}
