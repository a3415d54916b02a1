//! `streamchat chat <invite-link> --name NAME`: the terminal client, as a full-screen
//! UI ([`tui`]) or, with `--json`, as a line-oriented program for scripts and bots
//! ([`json`]). Both run one [`Session`](crate::Session) and understand the same
//! commands ([`command`]); received files stay in memory until saved ([`files`]).

pub mod command;
pub mod files;
pub mod json;
pub mod tui;

use crate::invite::{Invite, InviteError};
use crate::session::{SessionConfig, SessionError};
use crate::transport::{TlsConfig, TlsConfigError};
use std::time::Duration;

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

/// Arguments of `streamchat chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// The invite link, `http(s)://host:port/#<43-character room secret>`. The part after
    /// `#` is the room's key and never leaves this machine; the rest is the server.
    /// Command lines are visible to every local user (`ps`): on a shared machine, pass the
    /// link in the environment instead (STREAMCHAT_LINK), which only you can read.
    #[arg(env = "STREAMCHAT_LINK", hide_env_values = true)]
    pub link: String,
    /// The name the others see (up to 64 characters).
    #[arg(long)]
    pub name: String,
    /// No terminal UI: read lines from stdin (each one a message, or a command such as
    /// `/send PATH`) and write one JSON object per event to stdout. See docs/cli.md.
    #[arg(long)]
    pub json: bool,
    /// Exit when the connection is lost instead of reconnecting.
    #[arg(long)]
    pub no_reconnect: bool,
    /// For https:// servers: also trust the CA certificate(s) in this PEM file (a
    /// self-hosted server with its own certificate). The system's trust store is always used.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Why the chat could not run.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The link is unusable.
    #[error(transparent)]
    Invite(#[from] InviteError),
    /// Joining failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    /// The terminal could not be used.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

impl ChatArgs {
    /// The session configuration these arguments describe.
    pub fn session_config(&self) -> Result<SessionConfig, ChatError> {
        let invite = Invite::parse(&self.link)?;
        let tls = match (&self.ca_cert, invite.server_url.starts_with("https://")) {
            (Some(ca), _) => Some(TlsConfig::with_extra_ca(ca)?),
            // Loaded once here rather than on every reconnection.
            (None, true) => Some(TlsConfig::system()?),
            (None, false) => None,
        };
        let mut config = SessionConfig::new(invite.server_url, invite.secret, self.name.clone());
        config.reconnect = !self.no_reconnect;
        config.connect.tls = tls;
        Ok(config)
    }
}

/// Runs `streamchat chat` until the person quits (or stdin ends, with `--json`).
pub async fn run(args: ChatArgs) -> Result<(), ChatError> {
    let config = args.session_config()?;
    if args.json {
        json::run(config).await
    } else {
        tui::run(config, args.link.trim().to_owned()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
