//! A session's handling of server events without a connection, for the fuzz target
//! `client_events` (docs/security.md, "Fuzzing"). Not an API: nothing else uses it.
//!
//! The harness is a session's `Driver` (`session/driver.rs`) already in a room (as after a join ack listing
//! nobody), fed one [`ServerEvent`] at a time exactly as the session's task feeds it
//! what the connection decoded; what it hands back is what the UI would hear.

use super::driver::Driver;
use super::outgoing::LinkState;
use super::{SessionEvent, Shared};
use crate::client::{ConnectOptions, ServerEvent};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Waker};
use streamchat_crypto::{IdentityKey, RoomSecret};
use streamchat_protocol::{Limits, MemberId, Pos};
use tokio::sync::{mpsc, watch};

/// A session in one room, driven by hand.
pub struct Harness {
    driver: Driver,
    events: mpsc::Receiver<SessionEvent>,
    _link: watch::Receiver<LinkState>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

impl Harness {
    /// `name` with the identity of `seed`, in the room of `secret` as `member` (joined at
    /// `at`, with `limits`), its place in the room's log at `pos` of `epoch`.
    pub fn new(
        secret: &RoomSecret,
        seed: &[u8; 32],
        name: &str,
        joined: (MemberId, u64, Limits),
        place: (String, Pos),
    ) -> Self {
        let keys = secret.room_keys();
        let identity = IdentityKey::from_seed(seed);
        let own_key = identity.public_key();
        let shared = Arc::new(Shared {
            server_url: "http://127.0.0.1:9".to_owned(),
            connect: ConnectOptions::default(),
            room: super::protocol_room_id(&keys),
            lobby: None,
            keys,
            identity,
            name: name.to_owned(),
            msg_id_prefix: "fuzz".to_owned(),
            next_msg_id: AtomicU64::new(1),
            last_sent_at: AtomicU64::new(0),
            conversation: std::sync::Mutex::new(super::conversation::Conversation::new(own_key)),
        });
        let (events_tx, events) = mpsc::channel(super::EVENT_BUFFER);
        let (link, link_rx) = watch::channel(LinkState::Connecting);
        Self {
            driver: Driver::in_room(shared, events_tx, link, joined, place),
            events,
            _link: link_rx,
        }
    }

    /// Handles one server event as the session does; returns what the UI hears.
    pub fn handle(&mut self, event: ServerEvent) -> Vec<SessionEvent> {
        let mut out = Vec::new();
        let mut handling = std::pin::pin!(self.driver.handle(event));
        let mut cx = Context::from_waker(Waker::noop());
        // Nothing in `handle` waits but for room in the event channel, which is emptied
        // here between polls.
        while handling.as_mut().poll(&mut cx).is_pending() {
            while let Ok(e) = self.events.try_recv() {
                out.push(e);
            }
        }
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }
}
