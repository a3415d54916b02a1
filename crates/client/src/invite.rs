//! The invite link as a terminal client reads it: `http(s)://host:port/#<43-char secret>`,
//! or a v2 room's `#2.<secret>` / `#2o.<secret>` (docs/crypto.md §17.1).
//!
//! The fragment is the room secret (docs/crypto.md §2) and never goes to the server; what is
//! left of the link without it is the server's URL. A link that carries a path keeps
//! it (a server behind a reverse proxy at `https://example.org/chat/`), since the
//! Socket.IO endpoint hangs off that base.

use streamchat_crypto::{BadLink, RoomKind, RoomSecret};

/// A parsed invite link: where to connect and the secret of the room.
#[derive(Debug, Clone)]
pub struct Invite {
    /// The server's base URL, e.g. `http://127.0.0.1:8000` (no trailing slash, no fragment).
    pub server_url: String,
    /// The room secret from the fragment.
    pub secret: RoomSecret,
    /// The kind of room the link names.
    pub kind: RoomKind,
}

/// An invite link that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// The fragment is not a room secret, or the link is not http(s).
    #[error(transparent)]
    BadLink(#[from] BadLink),
    /// The link has no server part (a bare fragment): the client would not know where to go.
    #[error("the invite link must start with http:// or https:// (the server's address)")]
    NoServer,
}

impl Invite {
    /// Reads `http(s)://host[:port][/path]/#<secret>`; surrounding whitespace is ignored.
    pub fn parse(link: &str) -> Result<Self, InviteError> {
        let link = link.trim();
        let (secret, kind) = RoomSecret::from_any_link(link)?;
        let base = link.split_once('#').map_or(link, |(base, _)| base);
        let server_url = base.trim_end_matches('/');
        // The scheme and at least something after it: `http://#…` names no server (and
        // trimming its slashes would leave `http:`).
        let host = server_url
            .strip_prefix("http://")
            .or_else(|| server_url.strip_prefix("https://"));
        if host.is_none_or(str::is_empty) {
            return Err(InviteError::NoServer);
        }
        Ok(Self {
            server_url: server_url.to_owned(),
            secret,
            kind,
        })
    }

    /// The link again, in its canonical form.
    pub fn link(&self) -> String {
        self.secret.invite_link_for(&self.server_url, self.kind)
    }
}

/// A fresh room on `server_url`: a new secret from the OS's CSPRNG and its invite link.
pub fn new_room_link(
    server_url: &str,
    kind: RoomKind,
) -> Result<String, streamchat_crypto::RandomnessUnavailable> {
    Ok(RoomSecret::generate()?.invite_link_for(server_url.trim_end_matches('/'), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAGMENT: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn server_url_is_the_link_without_fragment() {
        let invite = Invite::parse(&format!(" http://127.0.0.1:8000/#{FRAGMENT}\n")).unwrap();
        assert_eq!(invite.server_url, "http://127.0.0.1:8000");
        assert_eq!(invite.secret.link_fragment(), FRAGMENT);
        assert_eq!(invite.link(), format!("http://127.0.0.1:8000/#{FRAGMENT}"));
        let invite = Invite::parse(&format!("https://chat.example/app/#{FRAGMENT}")).unwrap();
        assert_eq!(invite.server_url, "https://chat.example/app");
    }

    #[test]
    fn v2_links_keep_their_kind() {
        for (prefix, kind) in [
            ("", RoomKind::V1),
            ("2.", RoomKind::Knock),
            ("2o.", RoomKind::Open),
        ] {
            let link = format!("http://127.0.0.1:8000/#{prefix}{FRAGMENT}");
            let invite = Invite::parse(&link).unwrap();
            assert_eq!(invite.kind, kind);
            assert_eq!(invite.link(), link);
            let fresh = new_room_link("http://127.0.0.1:8000/", kind).unwrap();
            assert_eq!(Invite::parse(&fresh).unwrap().kind, kind);
        }
    }

    #[test]
    fn links_without_server_or_secret_are_refused() {
        assert!(matches!(
            Invite::parse(FRAGMENT),
            Err(InviteError::NoServer)
        ));
        assert!(Invite::parse("http://127.0.0.1:8000/").is_err());
        assert!(Invite::parse(&format!("ftp://x/#{FRAGMENT}")).is_err());
        // Found by fuzz/client_links: a scheme and no host gave the server URL `http:`.
        for empty in ["http://", "https://", "http:///", "https:////"] {
            assert!(
                matches!(
                    Invite::parse(&format!("{empty}#{FRAGMENT}")),
                    Err(InviteError::NoServer)
                ),
                "{empty}"
            );
        }
    }

    #[test]
    fn new_links_parse() {
        let link = new_room_link("http://localhost:8000/", RoomKind::V1).unwrap();
        assert!(link.starts_with("http://localhost:8000/#"));
        assert_eq!(
            Invite::parse(&link).unwrap().server_url,
            "http://localhost:8000"
        );
    }
}
