//! Words and numbers as people read them in a terminal: server times in the local time
//! zone ("14:30:45" and "2026-11-29"), presence alerts in the original StreamChat's form
//! ("Alice joined the chat at 14:30:45 on 2026-11-29"), sizes, durations and the lines
//! for a connection that came back ("Reconnected after 4 seconds.", "You were offline
//! for 3 minutes: 41 messages could not be recovered."), and text from others made safe
//! to print. Pure functions, so tests pin every string; every front-end says the same.
//!
//! Everything another member sends (names, messages, file names) is untrusted: a
//! terminal would obey escape sequences hidden in it, so [`safe_text`] removes control
//! and bidirectional-override characters before anything reaches the screen.

use chrono::{DateTime, Local, TimeZone};
use std::time::Duration;
use streamchat_protocol::LeaveReason;

/// A server timestamp (Unix ms) in the local time zone: `("14:30:45", "2026-11-29")`.
pub fn local_time_and_date(ts_ms: u64) -> (String, String) {
    time_and_date_in(&Local, ts_ms)
}

/// [`local_time_and_date`] in any time zone (tests use UTC).
pub fn time_and_date_in<Tz: TimeZone>(zone: &Tz, ts_ms: u64) -> (String, String)
where
    Tz::Offset: std::fmt::Display,
{
    let utc = DateTime::from_timestamp_millis(i64::try_from(ts_ms).unwrap_or(i64::MAX))
        .unwrap_or(DateTime::UNIX_EPOCH);
    let local = utc.with_timezone(zone);
    (
        local.format("%H:%M:%S").to_string(),
        local.format("%Y-%m-%d").to_string(),
    )
}

/// "14:30:45 on 2026-11-29"
pub fn at_time(ts_ms: u64) -> String {
    let (time, date) = local_time_and_date(ts_ms);
    format!("{time} on {date}")
}

/// A presence alert, in the original project's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceAlert<'a> {
    /// Someone joined.
    Joined {
        /// Their name.
        name: &'a str,
    },
    /// Someone whose key was seen before joined again (after a reconnection).
    Rejoined {
        /// Their name.
        name: &'a str,
    },
    /// Someone left.
    Left {
        /// Their name.
        name: &'a str,
        /// Why, as the server said.
        reason: LeaveReason,
    },
    /// This client joined.
    YouJoined,
    /// This client joined again after losing its connection.
    YouRejoined,
}

/// "Alice joined the chat at 14:30:45 on 2026-11-29", "Alice left the chat at … (timed out)".
pub fn presence_alert_text(alert: &PresenceAlert<'_>, when: &str) -> String {
    match alert {
        PresenceAlert::Joined { name } => format!("{} joined the chat at {when}", safe_text(name)),
        PresenceAlert::Rejoined { name } => {
            format!("{} rejoined the chat at {when}", safe_text(name))
        }
        PresenceAlert::Left { name, reason } => format!(
            "{} left the chat at {when}{}",
            safe_text(name),
            leave_reason_suffix(*reason)
        ),
        PresenceAlert::YouJoined => format!("You joined the chat at {when}"),
        PresenceAlert::YouRejoined => format!("You rejoined the chat at {when}"),
    }
}

/// `""` for a plain leave, else " (disconnected)", " (timed out)", " (server restart)".
pub fn leave_reason_suffix(reason: LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Left => "",
        LeaveReason::Disconnected => " (disconnected)",
        LeaveReason::Timeout => " (timed out)",
        LeaveReason::ServerRestart => " (server restart)",
    }
}

/// The wire name of a leave reason: `left`, `disconnected`, `timeout`, `server_restart`.
pub fn leave_reason_code(reason: LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Left => "left",
        LeaveReason::Disconnected => "disconnected",
        LeaveReason::Timeout => "timeout",
        LeaveReason::ServerRestart => "server_restart",
    }
}

/// Text from others with every control character (except newline and tab, which become
/// spaces when `single_line`) and every bidi override removed, so that it cannot move
/// the cursor, recolour the terminal or reorder what follows it.
pub fn safe_text(text: &str) -> String {
    text.chars().filter(|c| !is_unsafe(*c)).collect()
}

/// [`safe_text`] for one line: newlines and tabs become spaces.
pub fn safe_line(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .filter(|c| !is_unsafe(*c))
        .collect()
}

fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// 1536 → "1.5 KiB"
pub fn byte_size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let units = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 10.0 {
        format!("{value:.0} {}", units[unit])
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// The first two groups of a fingerprint, for the badge beside a message.
pub fn short_fingerprint(fingerprint: &str) -> String {
    fingerprint.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

/// A length of time as people say it: "45 seconds", "3 minutes", "2 hours".
pub fn duration_words(d: Duration) -> String {
    let secs = d.as_secs_f64().round() as u64;
    let (n, unit) = if secs < 60 {
        (secs.max(1), "second")
    } else if secs < 3600 {
        ((secs + 30) / 60, "minute")
    } else {
        ((secs + 1800) / 3600, "hour")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The line for a person waiting to be let into a v2 room (docs/crypto.md §17).
pub fn waiting_text(knock_room: bool) -> String {
    if knock_room {
        "Waiting to be let in: someone here must let you in. You can read and send once they do; what you type waits.".to_owned()
    } else {
        "Waiting to be let in: the room's keys are on their way. What you type waits.".to_owned()
    }
}

/// The line for someone knocking on a v2 room.
pub fn knock_text(member: &crate::session::Member) -> String {
    format!(
        "{} (fingerprint {}) asks to be let in. Compare fingerprints, then /letin {}.",
        safe_line(&member.name),
        member.fingerprint,
        safe_line(&member.name)
    )
}

/// The line for a change of a v2 room's keys: "Alice let Carol in; the keys changed."
pub fn keys_changed_text(by: &str, added: &[String], removed: &[String]) -> String {
    let names = |list: &[String]| {
        list.iter()
            .map(|n| safe_line(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (added.is_empty(), removed.is_empty()) {
        (false, true) => format!(
            "{} let {} in; the keys changed.",
            safe_line(by),
            names(added)
        ),
        (true, false) => format!(
            "Keys changed: {} can no longer read what follows.",
            names(removed)
        ),
        (false, false) => format!(
            "{} let {} in and removed {}; the keys changed.",
            safe_line(by),
            names(added),
            names(removed)
        ),
        (true, true) => format!("{} changed the keys.", safe_line(by)),
    }
}

/// The line for messages that could not be recovered after a lost connection:
/// "You were offline for 3 minutes: 41 messages could not be recovered."
pub fn gap_text(messages: u64, exact: bool, offline_for: Duration) -> String {
    let offline = duration_words(offline_for);
    let plural = if messages == 1 { "" } else { "s" };
    match (exact, messages) {
        (true, 0) => format!("You were offline for {offline}: no messages were missed."),
        (true, n) => {
            format!("You were offline for {offline}: {n} message{plural} could not be recovered.")
        }
        (false, 0) => format!(
            "You were offline for {offline}: messages sent meanwhile could not be recovered."
        ),
        (false, n) => format!(
            "You were offline for {offline}: at least {n} message{plural} could not be recovered."
        ),
    }
}

/// The line for a connection that came back as the same member (what was missed follows).
pub fn resumed_text(offline_for: Duration) -> String {
    format!("Reconnected after {}.", duration_words(offline_for))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    // 2026-11-29 14:30:45 UTC
    const TS: u64 = 1_795_962_645_000;

    #[test]
    fn times_and_alerts_in_the_original_form() {
        assert_eq!(
            time_and_date_in(&Utc, TS),
            ("14:30:45".to_owned(), "2026-11-29".to_owned())
        );
        let when = "14:30:45 on 2026-11-29";
        assert_eq!(
            presence_alert_text(&PresenceAlert::Joined { name: "Alice" }, when),
            "Alice joined the chat at 14:30:45 on 2026-11-29"
        );
        assert_eq!(
            presence_alert_text(
                &PresenceAlert::Left {
                    name: "Alice",
                    reason: LeaveReason::Timeout
                },
                when
            ),
            "Alice left the chat at 14:30:45 on 2026-11-29 (timed out)"
        );
        assert_eq!(
            presence_alert_text(
                &PresenceAlert::Left {
                    name: "Bob",
                    reason: LeaveReason::Left
                },
                when
            ),
            "Bob left the chat at 14:30:45 on 2026-11-29"
        );
    }

    #[test]
    fn escape_sequences_never_reach_the_terminal() {
        assert_eq!(safe_text("a\u{1b}[2Jb\u{7}c\u{202e}d\ne"), "a[2Jbcd\ne");
        assert_eq!(safe_line("one\ntwo\tthree\r"), "one two three");
        assert_eq!(safe_text("Grüße 👋🏽"), "Grüße 👋🏽");
    }

    #[test]
    fn sizes() {
        assert_eq!(byte_size(12), "12 B");
        assert_eq!(byte_size(1536), "1.5 KiB");
        assert_eq!(byte_size(300 * 1024 * 1024), "300 MiB");
        assert_eq!(short_fingerprint("d752 dbbc 61ca dc6e bdc1"), "d752 dbbc");
    }

    #[test]
    fn gaps_and_durations_read_plainly() {
        assert_eq!(duration_words(Duration::from_millis(200)), "1 second");
        assert_eq!(duration_words(Duration::from_secs(45)), "45 seconds");
        assert_eq!(duration_words(Duration::from_secs(170)), "3 minutes");
        assert_eq!(duration_words(Duration::from_secs(7000)), "2 hours");
        let three = Duration::from_secs(180);
        assert_eq!(
            gap_text(41, true, three),
            "You were offline for 3 minutes: 41 messages could not be recovered."
        );
        assert_eq!(
            gap_text(1, true, three),
            "You were offline for 3 minutes: 1 message could not be recovered."
        );
        assert_eq!(
            gap_text(0, false, three),
            "You were offline for 3 minutes: messages sent meanwhile could not be recovered."
        );
        assert_eq!(
            gap_text(7, false, three),
            "You were offline for 3 minutes: at least 7 messages could not be recovered."
        );
        assert_eq!(
            gap_text(0, true, three),
            "You were offline for 3 minutes: no messages were missed."
        );
        assert_eq!(
            resumed_text(Duration::from_secs(4)),
            "Reconnected after 4 seconds."
        );
    }
}
