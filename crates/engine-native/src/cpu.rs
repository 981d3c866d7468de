//! The client's own CPU time, to tell a benchmark the client itself was the bottleneck.
//!
//! Linux only: the sum of user and system time of this process's threads, read from
//! `/proc/self/task`, leaving out the embedded mock server's threads (named `bench-mock`),
//! which share the process but not the client's work. Elsewhere it is unknown.
//! Also the open-files limit, for the message of a request that failed for want of a file
//! descriptor.

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far by the client's threads, if this platform tells.
pub(crate) fn client_cpu_seconds() -> Option<f64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if stat[open + 1..close].starts_with("bench-mock") {
            continue;
        }
        // After "(comm) ", the fields are state, ppid, ...: utime and stime are the 12th
        // and 13th.
        let fields: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        ticks += utime + stime;
    }
    Some(ticks as f64 / TICKS_PER_SECOND)
}

/// The soft limit on this process's open files (`ulimit -n`), if this platform tells:
/// the "Max open files" row of `/proc/self/limits`.
pub(crate) fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let row = limits.lines().find(|l| l.starts_with("Max open files"))?;
    row["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_grows_with_work() {
        let Some(before) = super::client_cpu_seconds() else {
            return; // Not Linux: nothing to measure.
        };
        // Work until the clock shows it, or long past when an idle core would have: a loaded
        // machine may give the thread only part of each wall-clock second.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut x = 0u64;
        let mut after = before;
        while after - before < 0.1 && std::time::Instant::now() < deadline {
            let slice = std::time::Instant::now();
            while slice.elapsed() < std::time::Duration::from_millis(20) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            after = super::client_cpu_seconds().unwrap();
        }
        std::hint::black_box(x);
        assert!(after - before >= 0.1, "{before} -> {after}");
    }

    #[test]
    fn the_open_files_limit_is_read_on_linux() {
        if !std::path::Path::new("/proc/self/limits").exists() {
            return; // Not Linux: unknown.
        }
        let limit = super::open_files_limit().unwrap();
        assert!(limit >= 3, "stdin, stdout and stderr fit: {limit}");
    }
}
