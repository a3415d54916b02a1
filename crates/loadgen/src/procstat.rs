//! CPU time and memory of a process, read from `/proc` (Linux): this process's own CPU
//! seconds, and the server's CPU seconds and resident memory when the benchmark is
//! given its PID. Plain file reads, no `unsafe`.

use std::path::PathBuf;

/// `USER_HZ`: the unit of `utime`/`stime` in `/proc/PID/stat`. Linux fixes it at 100 for
/// user space on every mainstream architecture, whatever the kernel's internal HZ.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// A process: `self` or a PID.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    /// This process.
    Me,
    /// Another one.
    Pid(u32),
}

impl Process {
    fn dir(self) -> PathBuf {
        match self {
            Process::Me => PathBuf::from("/proc/self"),
            Process::Pid(pid) => PathBuf::from(format!("/proc/{pid}")),
        }
    }

    /// User + system CPU seconds used so far; `None` if unreadable.
    pub fn cpu_seconds(self) -> Option<f64> {
        let stat = std::fs::read_to_string(self.dir().join("stat")).ok()?;
        parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / CLOCK_TICKS_PER_SECOND)
    }

    /// `(VmRSS, VmHWM)` in KiB: resident memory now and at its peak.
    pub fn memory_kib(self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(self.dir().join("status")).ok()?;
        Some((field_kib(&status, "VmRSS:")?, field_kib(&status, "VmHWM:")?))
    }
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn field_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat =
            "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(Process::Me.cpu_seconds().is_some());
        let (rss, peak) = Process::Me.memory_kib().unwrap();
        assert!(rss > 0 && peak >= rss);
        assert_eq!(field_kib("VmRSS:\t  1234 kB\n", "VmRSS:"), Some(1234));
    }
}
