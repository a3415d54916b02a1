//! StreamChat patch: direct writes to a websocket.
//!
//! Upstream engineioxide hands every packet to the connection's writer task through a
//! channel: one channel push, one task wake-up and one task poll per packet, before the
//! frame is written. In a room of 1,000 that is 1,000 wake-ups per message, and in a
//! profile of a fan-out they (channel, notifications, scheduler) cost more than a third
//! of the server's own CPU.
//!
//! Here the websocket is shared (behind a mutex held only for non-blocking calls) by
//! the reader task, the writer task, and the sender: when nothing is waiting in the
//! socket's queue, a sender frames the packet and writes it to the kernel itself. The
//! queue and the writer task are still there for everything else: when the socket is
//! busy (another thread holds it), when the kernel buffer is full, during a polling
//! session, and for every packet after one that is queued, so that the order of
//! packets never changes.
//!
//! The order rule: `queued` counts the packets pushed into the queue and not yet
//! written by the writer. It is raised before a packet enters the queue and lowered by
//! the writer once the packet is in the websocket's buffer, under the websocket's lock.
//! A sender writes directly only while holding that lock and seeing `queued == 0`, so a
//! direct write can never overtake a queued packet.

use std::{
    fmt,
    sync::{
        Arc, Mutex, TryLockError,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use engineioxide_core::{Packet, PacketBuf, ProtocolVersion};
use futures_util::{FutureExt, Sink, Stream, task::AtomicWaker};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{self, Message},
};

/// A websocket as the reader, the writer task and direct senders use it.
pub(crate) trait WsIo: Send {
    fn poll_next_msg(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, tungstenite::Error>>>;
    fn poll_ready_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>>;
    fn start_send_msg(&mut self, msg: Message) -> Result<(), tungstenite::Error>;
    fn poll_flush_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>>;
    fn poll_close_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>>;
}

impl<S> WsIo for WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn poll_next_msg(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, tungstenite::Error>>> {
        std::pin::Pin::new(self).poll_next(cx)
    }
    fn poll_ready_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>> {
        Sink::<Message>::poll_ready(std::pin::Pin::new(self), cx)
    }
    fn start_send_msg(&mut self, msg: Message) -> Result<(), tungstenite::Error> {
        Sink::<Message>::start_send(std::pin::Pin::new(self), msg)
    }
    fn poll_flush_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>> {
        Sink::<Message>::poll_flush(std::pin::Pin::new(self), cx)
    }
    fn poll_close_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>> {
        Sink::<Message>::poll_close(std::pin::Pin::new(self), cx)
    }
}

/// Wakes the writer task when a direct write left bytes that the kernel did not take.
///
/// The websocket keeps one write waker: a direct write replaces the writer task's own.
/// So this wakes the writer task whatever it is waiting for: the notification when it is
/// idle, and the waker it registered last when it is waiting on the websocket.
#[derive(Debug, Default)]
pub(crate) struct FlushWake {
    pub(crate) idle: Notify,
    writer: AtomicWaker,
}

impl Wake for FlushWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.idle.notify_one();
        self.writer.wake();
    }
}

/// The shared websocket of a session and the bookkeeping of the order rule.
pub(crate) struct Direct {
    protocol: ProtocolVersion,
    /// The websocket, once the session runs on one.
    io: Mutex<Option<Box<dyn WsIo>>>,
    /// Packets in the queue or taken from it and not yet written.
    pub(crate) queued: AtomicUsize,
    /// StreamChat patch: payload bytes in the queue (messages and binary attachments),
    /// bounded per session and, with `budget`, for all sessions together.
    pub(crate) queued_bytes: AtomicUsize,
    budget: Option<Arc<crate::config::QueueBudget>>,
    pub(crate) flush_wake: Arc<FlushWake>,
    flush_waker: Waker,
}

impl Drop for Direct {
    /// StreamChat patch: what the session still had queued goes back to the budget.
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.sub(self.queued_bytes.load(Ordering::Acquire));
        }
    }
}

impl fmt::Debug for Direct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Direct")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// StreamChat patch: the payload bytes of queued packets (control packets count 0).
pub(crate) fn payload_bytes(packets: &PacketBuf) -> usize {
    packets
        .iter()
        .map(|p| match p {
            Packet::Message(m) => m.len(),
            Packet::Binary(b) | Packet::BinaryV3(b) => b.len(),
            _ => 0,
        })
        .sum()
}

impl Direct {
    /// StreamChat patch: whether `bytes` more may be queued: a session whose queue is
    /// empty may always queue one more; otherwise its bound and the shared budget hold.
    pub(crate) fn may_queue(&self, bytes: usize, max: usize) -> bool {
        let queued = self.queued_bytes.load(Ordering::Acquire);
        if queued == 0 {
            return true;
        }
        queued + bytes <= max && self.budget.as_ref().is_none_or(|b| b.has_room(bytes))
    }

    /// StreamChat patch: `packets` joined the queue.
    pub(crate) fn count_in(&self, packets: &PacketBuf) {
        let bytes = payload_bytes(packets);
        self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if let Some(b) = &self.budget {
            b.add(bytes);
        }
    }

    /// StreamChat patch: `packets` left the queue.
    pub(crate) fn count_out(&self, packets: &PacketBuf) {
        let bytes = payload_bytes(packets);
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        if let Some(b) = &self.budget {
            b.sub(bytes);
        }
    }

    pub(crate) fn new(protocol: ProtocolVersion, budget: Option<Arc<crate::config::QueueBudget>>) -> Self {
        let flush_wake = Arc::new(FlushWake::default());
        Self {
            protocol,
            io: Mutex::new(None),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            budget,
            flush_waker: Waker::from(flush_wake.clone()),
            flush_wake,
        }
    }

    /// For the writer task: [`Direct::poll_io`], registering the task to be woken by
    /// direct writes too.
    pub(crate) fn poll_writer<R>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut dyn WsIo, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<Option<R>> {
        self.flush_wake.writer.register(cx.waker());
        self.poll_io(cx, f)
    }

    /// Polls `f` on the websocket for a task (`None`: there is none, polling or closed).
    /// The lock is only tried: while another thread holds it (a reader copying in a
    /// large frame, a sender writing), the task yields and comes back, so that no task
    /// blocks a runtime thread on it.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut dyn WsIo, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<Option<R>> {
        let mut guard = match self.io.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        };
        match guard.as_mut() {
            Some(io) => f(io.as_mut(), cx).map(Some),
            None => Poll::Ready(None),
        }
    }

    pub(crate) fn set_io(&self, io: Option<Box<dyn WsIo>>) {
        *self.io.lock().unwrap_or_else(|e| e.into_inner()) = io;
    }

    /// Writes `packets` to the websocket now if nothing is queued before them and the
    /// websocket is free and writable; gives them back otherwise, to be queued.
    pub(crate) fn try_write(&self, packets: PacketBuf) -> Result<(), PacketBuf> {
        // Outside tokio's cooperative budget: a task may do 128 I/O operations per poll,
        // after which tokio's sockets answer "not ready" (and wake the task at once). A
        // fan-out to a room of 1,000 runs as one synchronous loop: past the 128th member
        // every direct write found its socket "not ready" and woke both of that
        // connection's tasks. The loop is bounded by the room's size; the budget cannot
        // make it yield anyway.
        let mut slot = Some(packets);
        let written = tokio::task::unconstrained(std::future::poll_fn(|_| {
            Poll::Ready(slot.take().map(|packets| self.write_now(packets)))
        }))
        .now_or_never()
        .flatten();
        match (written, slot) {
            (Some(result), _) => result,
            (None, Some(packets)) => Err(packets),
            (None, None) => Ok(()),
        }
    }

    fn write_now(&self, packets: PacketBuf) -> Result<(), PacketBuf> {
        if self.queued.load(Ordering::Acquire) != 0 {
            return Err(packets);
        }
        let Ok(mut guard) = self.io.try_lock() else {
            return Err(packets);
        };
        let Some(io) = guard.as_mut() else {
            return Err(packets);
        };
        // Checked again under the lock: the writer lowers `queued` only under it.
        if self.queued.load(Ordering::Acquire) != 0 {
            return Err(packets);
        }
        let mut cx = Context::from_waker(&self.flush_waker);
        match io.poll_ready_write(&mut cx) {
            Poll::Ready(Ok(())) => {}
            // Blocked (the writer task is woken when it can go on) or broken (the
            // reader sees it): the queue takes the packets.
            _ => return Err(packets),
        }
        start_send(io.as_mut(), self.protocol, packets);
        // What the kernel does not take now, the writer task flushes when woken.
        let _ = io.poll_flush_write(&mut cx);
        Ok(())
    }
}

/// Frames `packets` into the websocket's buffer (after `poll_ready_write` said ready).
pub(crate) fn start_send(io: &mut dyn WsIo, protocol: ProtocolVersion, packets: PacketBuf) {
    for packet in packets {
        if let Some(msg) = ws_message(protocol, packet) {
            if let Err(_e) = io.start_send_msg(msg) {
                #[cfg(feature = "tracing")]
                tracing::debug!("error sending packet: {_e}");
            }
        }
    }
}

/// The websocket message of an Engine.IO packet (`None`: nothing to send).
pub(crate) fn ws_message(protocol: ProtocolVersion, packet: Packet) -> Option<Message> {
    match packet {
        Packet::Binary(bin) | Packet::BinaryV3(bin) => {
            if protocol == ProtocolVersion::V3 {
                // v3 protocol requires packet type as the first byte.
                let mut buff = Vec::with_capacity(bin.len() + 1);
                buff.push(0x04);
                buff.extend(bin);
                Some(Message::Binary(buff.into()))
            } else {
                Some(Message::Binary(bin))
            }
        }
        // A Noop Packet maybe sent by the server to upgrade from a polling connection.
        // In the case that the packet was not poll in time it will remain in the buffer
        // and therefore it should be discarded here.
        Packet::Noop => None,
        packet => String::try_from(packet).ok().map(|s| Message::Text(s.into())),
    }
}
