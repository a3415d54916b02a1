//! The ws transport module is responsible for handling websocket connections
//! The only public function is [`new_req`] which is used to upgrade a http request to a websocket connection
//!
//! Other functions are used internally to handle the websocket connection through tasks and channels
//! and to handle upgrade from polling to ws

use std::future::poll_fn;
use std::sync::{Arc, atomic::Ordering};
use std::task::Poll;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, request::Parts};
use smallvec::smallvec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use tokio_util::future::FutureExt as _;
use tokio_util::sync::CancellationToken;

use engineioxide_core::{Packet, PacketBuf, ProtocolVersion, Sid, Str, TransportType};

use crate::{
    DisconnectReason, Socket, body::ResponseBody, config::EngineIoConfig, engine::EngineIo,
    errors::Error, handler::EngineIoHandler, socket::InternalRx, transport::make_open_packet,
};

/// Create a response for websocket upgrade
fn ws_response<B>(ws_key: &HeaderValue) -> Response<ResponseBody<B>> {
    let derived = derive_accept_key(ws_key.as_bytes());
    let sec = derived.parse::<HeaderValue>().unwrap();
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        )
        .header(http::header::SEC_WEBSOCKET_ACCEPT, sec)
        .body(ResponseBody::empty_response())
        .unwrap() // we are only using constants
}

/// Upgrade a websocket request to create a websocket connection.
///
/// If a sid is provided in the query it means that is is upgraded from an existing HTTP polling request.
/// In this case the http polling request is closed and the SID is kept for the websocket
pub fn new_req<R: Send + 'static, B, H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req: Request<R>,
) -> Result<Response<ResponseBody<B>>, Error> {
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts.clone(), body);

    let ws_key = parts
        .headers
        .get("Sec-WebSocket-Key")
        .ok_or(Error::InvalidWebSocketKey)?
        .clone();

    // StreamChat patch: a new session counts from its handshake, or is refused before
    // the upgrade; if the upgrade then fails, it is released.
    if sid.is_none() {
        engine.admit_session(&parts)?;
    }

    tokio::spawn(async move {
        let conn = hyper::upgrade::on(req)
            .await
            .map(hyper_util::rt::TokioIo::new);

        let res = match conn {
            Ok(conn) => on_init(engine.clone(), conn, protocol, sid, parts).await,
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("ws upgrade error: {}", _e);
                if sid.is_none() {
                    engine.release_session(&parts);
                }
                return;
            }
        };

        match res {
            Ok(_) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed")
            }
            Err(Error::MultipleWebsocketRequests) => {}
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed with error: {_e}");
                if let Some(sid) = sid {
                    engine.close_session(sid, DisconnectReason::TransportError);
                }
            }
        }
    });

    Ok(ws_response(&ws_key))
}

/// Handle a websocket connection upgrade
///
/// Sends an open packet if it is not an upgrade from a polling request
///
/// Read packets from the websocket and handle them, it will block until the connection is closed
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", name = "init_websocket", skip(engine, conn, req_data))
)]
pub async fn on_init<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(engine.config.ws_read_buffer_size)
        .max_message_size(Some(engine.config.ws_max_message_size))
        .max_frame_size(Some(engine.config.ws_max_frame_size));

    let ws_init = move || WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config));
    // StreamChat patch: whether the session came from polling (its heartbeat task runs).
    let upgraded = sid;
    let (socket, ws) = if let Some(sid) = sid {
        match engine.get_socket(sid) {
            None => return Err(Error::UnknownSessionID(sid)),
            Some(socket) if socket.is_ws() => return Err(Error::MultipleWebsocketRequests),
            Some(socket) => {
                let mut ws = Box::pin(ws_init()).await;

                let upgrade_fut = Box::pin(upgrade_handshake::<H, S>(&socket, &mut ws));
                match tokio::time::timeout(engine.config.upgrade_timeout, upgrade_fut)
                    .with_cancellation_token(&socket.cancellation_token)
                    .await
                {
                    Some(Ok(res)) => res?,
                    Some(Err(_)) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "ws upgrade timed out, closing session");
                        engine.close_session(socket.id, DisconnectReason::TransportError);
                        return Err(Error::Upgrade);
                    }
                    None => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "socket is being closed");
                        return Err(Error::Upgrade);
                    }
                }
                (socket, ws)
            }
        }
    } else {
        let socket = engine.create_session(protocol, TransportType::Websocket, req_data, false);

        #[cfg(feature = "tracing")]
        tracing::debug!("new websocket connection");

        // StreamChat patch: the handshakes' futures are boxed, so that the connection's
        // task, which lives as long as the connection, is not sized for them.
        let mut ws = Box::pin(ws_init()).await;
        Box::pin(init_handshake(socket.id, &mut ws, &engine.config)).await?;
        // StreamChat patch: a v4 session that starts on the websocket has its heartbeat
        // run by its writer task (`forward_to_socket_beating`) instead of a task of its
        // own (about 1.3 KiB per connection); v3 and upgraded sessions keep the task.
        if socket.protocol != ProtocolVersion::V4 {
            socket
                .clone()
                .spawn_heartbeat(engine.config.ping_interval, engine.config.ping_timeout);
        }
        (socket, ws)
    };
    // StreamChat patch: the websocket is shared with direct senders (`crate::direct`)
    // instead of split between the reader and the writer task.
    socket.direct.set_io(Some(Box::new(ws)));

    // Pipe between websocket and internal socket channel.
    let heartbeat = (upgraded.is_none() && socket.protocol == ProtocolVersion::V4)
        .then_some((engine.config.ping_interval, engine.config.ping_timeout));
    tokio::spawn(forward_to_socket_beating::<H>(socket.clone(), heartbeat));

    // pipe between internal socket channel and websocket
    match forward_to_handler(&engine, &socket)
        .with_cancellation_token(&socket.cancellation_token)
        .await
    {
        Some(Err(ref e)) => {
            let reason =
                Option::<DisconnectReason>::from(e).unwrap_or(DisconnectReason::TransportError);

            #[cfg(feature = "tracing")]
            tracing::debug!("error when handling packet: {:?}", e);
            engine.close_session(socket.id, reason);
        }
        Some(Ok(())) => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "ws transport was closed");
            engine.close_session(socket.id, DisconnectReason::TransportClose);
        }
        None => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "socket is closing");
        }
    }
    Ok(())
}

/// Forwards all packets received from a websocket to a EngineIo [`Socket`]
async fn forward_to_handler<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
) -> Result<(), Error> {
    let next = || {
        poll_fn(|cx| {
            socket
                .direct
                .poll_io(cx, |io, cx| io.poll_next_msg(cx))
                .map(Option::flatten)
        })
    };
    while let Some(msg) = next().await.transpose()? {
        match msg {
            Message::Text(msg) => match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
                Packet::Close => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!("[sid={}] closing session", socket.id);
                    engine.close_session(socket.id, DisconnectReason::TransportClose);
                    break;
                }
                Packet::Pong | Packet::Ping => {
                    // A full channel means that the client is already known to be alive.
                    socket.heartbeat.notify_one();
                    Ok::<(), Error>(())
                }
                Packet::Message(msg) => {
                    engine.handler.on_message(msg, socket.clone());
                    Ok(())
                }
                p => return Err(Error::BadPacket(p)),
            },
            Message::Binary(mut data) => {
                if socket.protocol == ProtocolVersion::V3 && !data.is_empty() {
                    // The first byte is the message type, which we don't need.
                    data = data.split_off(1);
                }
                engine.handler.on_binary(data, socket.clone());
                Ok(())
            }
            Message::Close(_) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("websocket closed, closing session");
                engine.close_session(socket.id, DisconnectReason::TransportClose);
                break;
            }
            _ => {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = ?socket.id, "unexpected ws message");
                Ok(())
            }
        }?
    }
    Ok(())
}

/// Forwards all packets waiting to be sent to the websocket
///
/// The websocket stream is flushed only when the internal channel is drained
///
/// StreamChat patch: the websocket is shared with direct senders (`crate::direct`); the
/// writer lowers `queued` once a queued packet is in the websocket's buffer, and flushes
/// what a direct write left when the flush waker says the socket is writable again.
#[cfg(test)]
async fn forward_to_socket<H: EngineIoHandler>(socket: Arc<Socket<H::Data>>) {
    forward_to_socket_beating::<H>(socket, None).await
}

/// StreamChat patch: [`forward_to_socket`], also running the session's v4 heartbeat
/// when given its `(interval, timeout)`: a ping every interval, and the session closed
/// (`HeartbeatTimeout`) when its pong does not come within the timeout, as
/// `Socket::heartbeat_job_v4` does in a task of its own.
async fn forward_to_socket_beating<H: EngineIoHandler>(
    socket: Arc<Socket<H::Data>>,
    mut heartbeat: Option<(std::time::Duration, std::time::Duration)>,
) {
    // A polling request that was in progress during the upgrade may still hold the lock.
    let lock = socket.internal_rx.lock();
    let Some(mut internal_rx) = lock
        .with_cancellation_token(&socket.cancellation_token)
        .await
    else {
        #[cfg(feature = "tracing")]
        tracing::debug!(sid = %socket.id, "session closed before starting the ws writer");
        return;
    };
    let InternalRx {
        buffered_rx,
        volatile_rx,
        ..
    } = &mut *internal_rx;
    let direct = &socket.direct;
    let protocol = socket.protocol;
    let token = &socket.cancellation_token;
    let cancelled = socket.cancellation_token.cancelled();
    tokio::pin!(cancelled);
    // StreamChat patch: the heartbeat's one timer: the next ping, or the pong's deadline.
    // (Without a heartbeat the timer is never polled.)
    let interval = heartbeat.map_or(std::time::Duration::from_secs(86_400), |(i, _)| i);
    // The first ping goes at once, as upstream's heartbeat task sends it.
    let mut next_ping = tokio::time::Instant::now();
    let beat = tokio::time::sleep_until(next_ping);
    tokio::pin!(beat);
    let mut awaiting_pong = false;
    // Some clients send the pong packet in first. If that happens, we should consume it.
    let _ = futures_util::FutureExt::now_or_never(socket.heartbeat.notified());

    // Forward buffered packets until the channel is closed or the session is cancelled.
    loop {
        tokio::select! {
            biased;
            items = buffered_rx.recv() => {
                match items {
                    Some(packets) => {
                        if !write_packets(direct, protocol, *packets, true, token).await {
                            break;
                        }
                        while let Ok(packets) = buffered_rx.try_recv() {
                            if !write_packets(direct, protocol, *packets, true, token).await {
                                break;
                            }
                        }
                    }
                    None => break
                }
            }
            _ = &mut cancelled => break,
            _ = direct.flush_wake.idle.notified() => {}
            Ok(()) = volatile_rx.changed() => {
                let val = volatile_rx.borrow_and_update().clone();
                if let Some(packets) = val {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(sid = ?socket.id, "ws volatile flush: {} packets", packets.len());
                    if !write_packets(direct, protocol, packets, false, token).await {
                        break;
                    }
                }
            },
            () = &mut beat, if heartbeat.is_some() => {
                let Some((interval, timeout)) = heartbeat else { continue };
                if awaiting_pong || socket.enqueue(smallvec![Packet::Ping]).is_err() {
                    // The session ends: its cancellation stops this loop.
                    heartbeat = None;
                    socket.close(DisconnectReason::HeartbeatTimeout);
                    continue;
                }
                awaiting_pong = true;
                next_ping += interval;
                beat.as_mut().reset(tokio::time::Instant::now() + timeout);
            }
            _ = socket.heartbeat.notified(), if awaiting_pong => {
                awaiting_pong = false;
                let now = tokio::time::Instant::now();
                while next_ping <= now {
                    next_ping += interval;
                }
                beat.as_mut().reset(next_ping);
            }
        }

        #[cfg(feature = "tracing")]
        tracing::trace!(sid = %socket.id, "ws flush");
        let flushed = poll_fn(|cx| {
            direct
                .poll_writer(cx, |io, cx| io.poll_flush_write(cx))
                .map(|_| ())
        });
        if !until_cancelled(flushed, token).await {
            break;
        }
    }

    #[cfg(feature = "tracing")]
    tracing::trace!(sid = %socket.id, "ws closing flush");

    // StreamChat patch: a receiver that does not read (one cut off for being too slow)
    // would hold the close, and with it the connection and its kernel buffers, until its
    // heartbeat times out; it gets a moment, then the connection is dropped.
    let closed = poll_fn(|cx| {
        direct
            .poll_writer(cx, |io, cx| io.poll_close_write(cx))
            .map(|_| ())
    });
    let _ = tokio::time::timeout(CLOSE_GRACE, closed).await;
    direct.set_io(None);
}

/// StreamChat patch: how long a closing connection's last bytes may take to leave.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// StreamChat patch: runs `fut` unless the session is closed first (false then): a
/// writer waiting for a receiver that does not read must not outlive its session.
async fn until_cancelled(fut: impl std::future::Future<Output = ()>, token: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        () = fut => true,
        () = token.cancelled() => false,
    }
}

/// Writes packets to the websocket's buffer once it accepts them; `queued`: they came
/// from the queue (lower the count of the order rule). False: the session was closed
/// while waiting.
async fn write_packets(
    direct: &crate::direct::Direct,
    protocol: ProtocolVersion,
    packets: PacketBuf,
    queued: bool,
    token: &CancellationToken,
) -> bool {
    // StreamChat patch: what left the queue no longer counts against its byte bound.
    if queued {
        direct.count_out(&packets);
    }
    let mut packets = Some(packets);
    let written = poll_fn(|cx| {
        direct
            .poll_writer(cx, |io, cx| {
                if io.poll_ready_write(cx).is_pending() {
                    return Poll::Pending;
                }
                if let Some(packets) = packets.take() {
                    crate::direct::start_send(io, protocol, packets);
                }
                // Under the websocket's lock: the order rule of `crate::direct`.
                if queued {
                    direct.queued.fetch_sub(1, Ordering::AcqRel);
                }
                Poll::Ready(())
            })
            .map(|_| ())
    });
    until_cancelled(written, token).await
}

/// Send a Engine.IO [`OpenPacket`] to initiate a websocket connection
async fn init_handshake<S>(
    sid: Sid,
    ws: &mut WebSocketStream<S>,
    config: &EngineIoConfig,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let packet = Packet::Open(make_open_packet(TransportType::Websocket, sid, config));
    let packet: String = packet.into();
    ws.send(Message::Text(packet.into())).await?;
    Ok(())
}

/// Upgrade a session from a polling request to a websocket request.
///
/// Before upgrading the session the server should send a NOOP packet to any pending polling request.
///
/// ## Handshake :
/// ```text
/// CLIENT                                                 SERVER
///│                                                      │
///│   GET /engine.io/?EIO=4&transport=websocket&sid=...  │
///│ ───────────────────────────────────────────────────► │
///│  ◄─────────────────────────────────────────────────┘ │
///│            HTTP 101 (WebSocket handshake)            │
///│                                                      │
///│            -----  WebSocket frames -----             │
///│  ─────────────────────────────────────────────────►  │
///│                         2probe                       │ (ping packet)
///│  ◄─────────────────────────────────────────────────  │
///│                         3probe                       │ (pong packet)
///│  ─────────────────────────────────────────────────►  │
///│                         5                            │ (upgrade packet)
///│                                                      │
///│            -----  WebSocket frames -----             │
/// ```
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", skip(socket, ws))
)]
async fn upgrade_handshake<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tracing")]
    tracing::debug!("starting websocket connection upgrade");

    // The socket is upgrading, from now on all polling
    // request will return a `Packet::Noop`
    socket.start_upgrade();

    // We send a last Noop request to close a potential waiting polling request.
    socket.direct.queued.fetch_add(1, Ordering::AcqRel);
    if socket
        .internal_tx
        .send(Box::new(smallvec![Packet::Noop]))
        .await
        .is_err()
    {
        socket.direct.queued.fetch_sub(1, Ordering::AcqRel);
        return Err(Error::Upgrade);
    }

    // wait for any current polling connection to finish by waiting for the socket to be unlocked
    // All other polling connection will be immediately closed with a NOOP packet.
    let _lock = socket.internal_rx.lock().await;

    // Fetch the next packet from the ws stream, it should be a PingUpgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        _ => Err(Error::Upgrade)?,
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::PingUpgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("received first ping upgrade");
            // Respond with a PongUpgrade packet
            ws.send(Message::Text(String::from(Packet::PongUpgrade).into()))
                .await?;
        }
        p => Err(Error::BadPacket(p))?,
    };

    // Fetch the next packet from the ws stream, it should be an Upgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        Some(Ok(Message::Close(_))) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws stream closed before upgrade");
            Err(Error::Upgrade)?
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!("unexpected ws message before upgrade");
            Err(Error::Upgrade)?
        }
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::Upgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgraded successfully")
        }
        p => Err(Error::BadPacket(p))?,
    };

    socket.upgrade_to_websocket();
    Ok(())
}

fn ws_bytes_to_str(bytes: tungstenite::Utf8Bytes) -> Str {
    // SAFETY: the bytes are guaranteed to be valid UTF-8 by the tungstenite parser
    unsafe { Str::from_bytes_unchecked(bytes.into()) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use http::Request;
    use tokio::io::DuplexStream;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[derive(Debug)]
    struct StubHandler;
    impl EngineIoHandler for StubHandler {
        type Data = ();
        fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
        fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
        fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
        fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
    }

    fn socket() -> Arc<Socket<()>> {
        Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Box::new(|_, _| ()),
            false,
        ))
    }

    async fn ws_pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(1024);
        (
            WebSocketStream::from_raw_socket(server, Role::Server, None).await,
            WebSocketStream::from_raw_socket(client, Role::Client, None).await,
        )
    }

    /// StreamChat patch: the writer runs a websocket session's heartbeat: a ping each
    /// interval, and the session closed when a pong does not come in time.
    #[tokio::test]
    async fn the_writer_pings_and_closes_the_session_without_a_pong() {
        let (tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
        let socket = Arc::new(Socket::<()>::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Box::new(move |_, reason| {
                let _ = tx.send(reason);
            }),
            false,
        ));
        let (server, mut client) = ws_pair().await;
        socket.direct.set_io(Some(Box::new(server)));
        let beat = Some((Duration::from_millis(50), Duration::from_millis(100)));
        tokio::spawn(forward_to_socket_beating::<StubHandler>(socket.clone(), beat));
        for _ in 0..3 {
            let msg = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap().unwrap().unwrap();
            assert_eq!(msg, Message::text("2"), "a ping");
            // What the reader does when the client's pong arrives.
            socket.heartbeat.notify_one();
        }
        assert!(closed.try_recv().is_err(), "answered pings keep the session");
        let msg = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(msg, Message::text("2"), "a ping, not answered");
        let reason = tokio::time::timeout(TIMEOUT, closed.recv()).await.unwrap().unwrap();
        assert!(matches!(reason, DisconnectReason::HeartbeatTimeout), "{reason:?}");
    }

    /// A polling request can still hold the lock at the end of an upgrade.
    #[tokio::test]
    async fn writer_waits_for_the_lock_of_a_polling_request() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;
        socket.direct.set_io(Some(Box::new(server)));

        let polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(forward_to_socket::<StubHandler>(socket.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished(), "the writer should wait for the lock");

        drop(polling);
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("the writer should send the packet")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
    }

    #[tokio::test]
    async fn writer_waiting_for_the_lock_stops_with_the_session() {
        let socket = socket();
        let (server, _client) = ws_pair().await;
        socket.direct.set_io(Some(Box::new(server)));

        let _polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(forward_to_socket::<StubHandler>(socket.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;

        socket.cancellation_token.cancel();
        tokio::time::timeout(TIMEOUT, writer)
            .await
            .expect("the writer should stop")
            .unwrap();
    }
}
