//! `streamchat chat <invite-link> --name NAME`: the terminal client, as a full-screen
//! UI ([`tui`]) or, with `--json`, as a line-oriented program for scripts and bots
//! ([`json`]). Both run one [`Session`](streamchat_client::Session) and understand the same
//! commands ([`command`]); received files stay in memory until saved ([`files`]).

pub mod command;
pub mod files;
pub mod json;
pub mod messages;
pub mod tui;

use streamchat_client::invite::{Invite, InviteError};
use streamchat_client::session::{SessionConfig, SessionError};
use streamchat_client::transport::{TlsConfig, TlsConfigError};

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
        config.kind = invite.kind;
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
        tui::run(config).await
    }
}
