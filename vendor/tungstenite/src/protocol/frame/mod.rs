//! Utilities to work with raw WebSocket frames.

pub mod coding;

#[allow(clippy::module_inception)]
mod frame;
mod mask;
mod utf8;

pub use self::{
    frame::{CloseFrame, Frame, FrameHeader},
    utf8::Utf8Bytes,
};

use crate::{
    error::{CapacityError, Error, ProtocolError, Result},
    protocol::frame::mask::apply_mask,
    Message,
};
use bytes::BytesMut;
use log::*;
use std::io::{self, Cursor, Error as IoError, ErrorKind as IoErrorKind, Read, Write};

/// Read buffer size used for `FrameSocket`.
const READ_BUF_LEN: usize = 128 * 1024;

/// A reader and writer for WebSocket frames.
#[derive(Debug)]
pub struct FrameSocket<Stream> {
    /// The underlying network stream.
    stream: Stream,
    /// Codec for reading/writing frames.
    codec: FrameCodec,
}

impl<Stream> FrameSocket<Stream> {
    /// Create a new frame socket.
    pub fn new(stream: Stream) -> Self {
        FrameSocket { stream, codec: FrameCodec::new(READ_BUF_LEN) }
    }

    /// Create a new frame socket from partially read data.
    pub fn from_partially_read(stream: Stream, part: Vec<u8>) -> Self {
        FrameSocket { stream, codec: FrameCodec::from_partially_read(part, READ_BUF_LEN) }
    }

    /// Extract a stream from the socket.
    pub fn into_inner(self) -> (Stream, BytesMut) {
        (self.stream, self.codec.in_buffer)
    }

    /// Returns a shared reference to the inner stream.
    pub fn get_ref(&self) -> &Stream {
        &self.stream
    }

    /// Returns a mutable reference to the inner stream.
    pub fn get_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

impl<Stream> FrameSocket<Stream>
where
    Stream: Read,
{
    /// Read a frame from stream.
    pub fn read(&mut self, max_size: Option<usize>) -> Result<Option<Frame>> {
        self.codec.read_frame(&mut self.stream, max_size, false, true)
    }
}

impl<Stream> FrameSocket<Stream>
where
    Stream: Write,
{
    /// Writes and immediately flushes a frame.
    /// Equivalent to calling [`write`](Self::write) then [`flush`](Self::flush).
    pub fn send(&mut self, frame: Frame) -> Result<()> {
        self.write(frame)?;
        self.flush()
    }

    /// Write a frame to stream.
    ///
    /// A subsequent call should be made to [`flush`](Self::flush) to flush writes.
    ///
    /// This function guarantees that the frame is queued unless [`Error::WriteBufferFull`]
    /// is returned.
    /// In order to handle WouldBlock or Incomplete, call [`flush`](Self::flush) afterwards.
    pub fn write(&mut self, frame: Frame) -> Result<()> {
        self.codec.buffer_frame(&mut self.stream, frame)
    }

    /// Flush writes.
    pub fn flush(&mut self) -> Result<()> {
        self.codec.write_out_buffer(&mut self.stream)?;
        Ok(self.stream.flush()?)
    }
}

/// StreamChat patch: the smallest payload written from its own buffer rather than copied
/// into the write buffer (below it, a copy costs less than a second write).
const CHAIN_PAYLOAD_MIN: usize = 16 * 1024;

/// A codec for WebSocket frames.
#[derive(Debug)]
pub(super) struct FrameCodec {
    /// Buffer to read data from the stream.
    in_buffer: BytesMut,
    in_buf_max_read: usize,
    /// StreamChat patch: what goes to the network before `out_buffer`, in order: large
    /// payloads as they were given (shared, not copied) and the bytes buffered before them.
    out_chain: std::collections::VecDeque<bytes::Bytes>,
    /// Buffer to send packets to the network.
    out_buffer: Vec<u8>,
    /// Capacity limit for `out_buffer`.
    max_out_buffer_len: usize,
    /// Buffer target length to reach before writing to the stream
    /// on calls to `buffer_frame`.
    ///
    /// Setting this to non-zero will buffer small writes from hitting
    /// the stream.
    out_buffer_write_len: usize,
    /// Header and remaining size of the incoming packet being processed.
    header: Option<(FrameHeader, u64)>,
}

impl FrameCodec {
    /// Create a new frame codec.
    pub(super) fn new(in_buf_len: usize) -> Self {
        Self {
            in_buffer: BytesMut::with_capacity(in_buf_len),
            in_buf_max_read: in_buf_len.max(FrameHeader::MAX_SIZE),
            out_chain: <_>::default(),
            out_buffer: <_>::default(),
            max_out_buffer_len: usize::MAX,
            out_buffer_write_len: 0,
            header: None,
        }
    }

    /// Create a new frame codec from partially read data.
    pub(super) fn from_partially_read(part: Vec<u8>, min_in_buf_len: usize) -> Self {
        let mut in_buffer = BytesMut::from_iter(part);
        in_buffer.reserve(min_in_buf_len.saturating_sub(in_buffer.len()));
        Self {
            in_buffer,
            in_buf_max_read: min_in_buf_len.max(FrameHeader::MAX_SIZE),
            out_chain: <_>::default(),
            out_buffer: <_>::default(),
            max_out_buffer_len: usize::MAX,
            out_buffer_write_len: 0,
            header: None,
        }
    }

    /// StreamChat patch: the bytes waiting to be written, chained and buffered.
    #[inline]
    fn out_len(&self) -> usize {
        // Nothing is chained for all but file chunks: no walk on the message path.
        if self.out_chain.is_empty() {
            return self.out_buffer.len();
        }
        self.out_chain.iter().map(|b| b.len()).sum::<usize>() + self.out_buffer.len()
    }

    /// Sets a maximum size for the out buffer.
    pub(super) fn set_max_out_buffer_len(&mut self, max: usize) {
        self.max_out_buffer_len = max;
    }

    /// Sets [`Self::buffer_frame`] buffer target length to reach before
    /// writing to the stream.
    pub(super) fn set_out_buffer_write_len(&mut self, len: usize) {
        self.out_buffer_write_len = len;
    }

    /// Read a frame from the provided stream.
    pub(super) fn read_frame(
        &mut self,
        stream: &mut impl Read,
        max_size: Option<usize>,
        unmask: bool,
        accept_unmasked: bool,
    ) -> Result<Option<Frame>> {
        let max_size = max_size.unwrap_or_else(usize::max_value);

        let mut payload = loop {
            if self.header.is_none() {
                let mut cursor = Cursor::new(&mut self.in_buffer);
                self.header = FrameHeader::parse(&mut cursor)?;
                let advanced = cursor.position();
                bytes::Buf::advance(&mut self.in_buffer, advanced as _);

                if let Some((_, len)) = &self.header {
                    // Enforce frame size limit early. Compare in u64 before
                    // narrowing so a length above usize::MAX can't wrap on
                    // 32-bit/wasm32 targets and slip past the check.
                    if *len > max_size as u64 {
                        return Err(Error::Capacity(CapacityError::MessageTooLong {
                            size: *len as usize,
                            max_size,
                        }));
                    }
                    let len = *len as usize;

                    // Reserve full message length only once, even for multiple
                    // loops or if WouldBlock errors cause multiple fn calls.
                    self.in_buffer.reserve(len);
                } else {
                    // StreamChat patch: a whole read's worth, since `read_in` gives the
                    // buffer back while the connection is idle.
                    self.in_buffer.reserve(self.in_buf_max_read);
                }
            }

            if let Some((_, len)) = &self.header {
                let len = *len as usize;
                if len <= self.in_buffer.len() {
                    break self.in_buffer.split_to(len);
                }
            }

            // Not enough data in buffer.
            if self.read_in(stream)? == 0 {
                trace!("no frame received");
                return Ok(None);
            }
        };

        let (mut header, length) = self.header.take().expect("Bug: no frame header");
        debug_assert_eq!(payload.len() as u64, length);

        if unmask {
            if let Some(mask) = header.mask.take() {
                // A server MUST remove masking for data frames received from a client
                // as described in Section 5.3. (RFC 6455)
                apply_mask(&mut payload, mask);
            } else if !accept_unmasked {
                // The server MUST close the connection upon receiving a
                // frame that is not masked. (RFC 6455)
                // The only exception here is if the user explicitly accepts given
                // stream by setting WebSocketConfig.accept_unmasked_frames to true
                return Err(Error::Protocol(ProtocolError::UnmaskedFrameFromClient));
            }
        }

        let frame = Frame::from_payload(header, payload.freeze());
        trace!("received frame {frame}");
        Ok(Some(frame))
    }

    /// Read into available `in_buffer` capacity.
    fn read_in(&mut self, stream: &mut impl Read) -> io::Result<usize> {
        let len = self.in_buffer.len();
        debug_assert!(self.in_buffer.capacity() > len);
        self.in_buffer.resize(self.in_buffer.capacity().min(len + self.in_buf_max_read), 0);
        let size = stream.read(&mut self.in_buffer[len..]);
        self.in_buffer.truncate(len + size.as_ref().copied().unwrap_or(0));
        // StreamChat patch: nothing arrived and nothing is half read (no bytes buffered, no
        // header waiting for its payload, whose room `read_frame` reserved once): give the
        // buffer back while the connection is idle (4 KiB of every idle connection otherwise).
        if len == 0
            && self.header.is_none()
            && matches!(&size, Err(e) if e.kind() == IoErrorKind::WouldBlock)
        {
            self.in_buffer = BytesMut::new();
        }
        size
    }

    /// Writes a frame into the `out_buffer`.
    /// If the out buffer size is over the `out_buffer_write_len` will also write
    /// the out buffer into the provided `stream`.
    ///
    /// To ensure buffered frames are written call [`Self::write_out_buffer`].
    ///
    /// May write to the stream, will **not** flush.
    pub(super) fn buffer_frame<Stream>(&mut self, stream: &mut Stream, frame: Frame) -> Result<()>
    where
        Stream: Write,
    {
        if frame.len() + self.out_len() > self.max_out_buffer_len {
            return Err(Error::WriteBufferFull(Message::Frame(frame).into()));
        }

        trace!("writing frame {frame}");

        // StreamChat patch: a large unmasked payload (a server's file chunk) is not copied
        // into the buffer: the header is, and the payload follows it in `out_chain`, shared
        // with every other connection it is sent to.
        let frame = if frame.payload().len() >= CHAIN_PAYLOAD_MIN {
            match frame.format_header_into_buf(&mut self.out_buffer) {
                Ok(payload) => {
                    let payload = payload.expect("Bug: can't write to vector");
                    let head = std::mem::take(&mut self.out_buffer);
                    self.out_chain.push_back(head.into());
                    self.out_chain.push_back(payload);
                    None
                }
                Err(frame) => Some(frame),
            }
        } else {
            Some(frame)
        };
        if let Some(frame) = frame {
            self.out_buffer.reserve(frame.len());
            frame.format_into_buf(&mut self.out_buffer).expect("Bug: can't write to vector");
        }

        if self.out_len() > self.out_buffer_write_len {
            self.write_out_buffer(stream)
        } else {
            Ok(())
        }
    }

    /// Writes the out_buffer to the provided stream.
    ///
    /// Does **not** flush.
    pub(super) fn write_out_buffer<Stream>(&mut self, stream: &mut Stream) -> Result<()>
    where
        Stream: Write,
    {
        // StreamChat patch: what is chained goes first.
        while let Some(front) = self.out_chain.front_mut() {
            if front.is_empty() {
                self.out_chain.pop_front();
                continue;
            }
            let len = stream.write(front)?;
            if len == 0 {
                return Err(IoError::new(
                    IoErrorKind::ConnectionReset,
                    "Connection reset while sending",
                )
                .into());
            }
            bytes::Buf::advance(front, len);
        }
        while !self.out_buffer.is_empty() {
            let len = stream.write(&self.out_buffer)?;
            if len == 0 {
                // This is the same as "Connection reset by peer"
                return Err(IoError::new(
                    IoErrorKind::ConnectionReset,
                    "Connection reset while sending",
                )
                .into());
            }
            self.out_buffer.drain(0..len);
        }
        // StreamChat patch: do not keep the buffer once it is written (a server holds
        // one per idle connection, and a file chunk grows it to a megabyte); the next
        // frame allocates its own, which costs far less than the write itself.
        if self.out_buffer.capacity() > 0 {
            self.out_buffer = Vec::new();
        }

        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use crate::error::{CapacityError, Error};

    use super::{Frame, FrameSocket};

    use std::io::Cursor;

    #[test]
    fn read_frames() {
        env_logger::init();

        let raw = Cursor::new(vec![
            0x82, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x82, 0x03, 0x03, 0x02, 0x01,
            0x99,
        ]);
        let mut sock = FrameSocket::new(raw);

        assert_eq!(
            sock.read(None).unwrap().unwrap().into_payload(),
            &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07][..]
        );
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[0x03, 0x02, 0x01][..]);
        assert!(sock.read(None).unwrap().is_none());

        let (_, rest) = sock.into_inner();
        assert_eq!(rest, vec![0x99]);
    }

    #[test]
    fn from_partially_read() {
        let raw = Cursor::new(vec![0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
        let mut sock = FrameSocket::from_partially_read(raw, vec![0x82, 0x07, 0x01]);
        assert_eq!(
            sock.read(None).unwrap().unwrap().into_payload(),
            &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07][..]
        );
    }

    #[test]
    fn write_frames() {
        let mut sock = FrameSocket::new(Vec::new());

        let frame = Frame::ping(vec![0x04, 0x05]);
        sock.send(frame).unwrap();

        let frame = Frame::pong(vec![0x01]);
        sock.send(frame).unwrap();

        let (buf, _) = sock.into_inner();
        assert_eq!(buf, vec![0x89, 0x02, 0x04, 0x05, 0x8a, 0x01, 0x01]);
    }

    #[test]
    fn parse_overflow() {
        let raw = Cursor::new(vec![
            0x83, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
        ]);
        let mut sock = FrameSocket::new(raw);
        let _ = sock.read(None); // should not crash
    }

    #[test]
    fn size_limit_hit() {
        let raw = Cursor::new(vec![0x82, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
        let mut sock = FrameSocket::new(raw);
        assert!(matches!(
            sock.read(Some(5)),
            Err(Error::Capacity(CapacityError::MessageTooLong { size: 7, max_size: 5 }))
        ));
    }

    use super::coding::{Data, OpCode};

    /// StreamChat patch: a sink that takes at most `take` bytes per write and would block
    /// on every other call, as a kernel socket buffer does under load.
    struct Trickle {
        out: Vec<u8>,
        take: usize,
        block: bool,
    }

    impl std::io::Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.block = !self.block;
            if self.block {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.take);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// StreamChat patch: a large payload goes out from its own buffer, chained after what
    /// was buffered before it and before what comes after; the bytes on the wire are those
    /// of plain formatting, whatever the writes take at a time.
    #[test]
    fn large_payloads_are_chained_in_order_across_partial_writes() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let frames = || {
            vec![
                Frame::message(bytes::Bytes::from_static(b"before"), OpCode::Data(Data::Text), true),
                Frame::message(bytes::Bytes::from(big.clone()), OpCode::Data(Data::Binary), true),
                Frame::message(bytes::Bytes::from_static(b"after"), OpCode::Data(Data::Text), true),
                Frame::message(bytes::Bytes::from(big[..20_000].to_vec()), OpCode::Data(Data::Binary), true),
            ]
        };
        let mut expected = Vec::new();
        for f in frames() {
            f.format_into_buf(&mut expected).unwrap();
        }
        let mut codec = super::FrameCodec::new(4096);
        codec.set_out_buffer_write_len(usize::MAX); // buffer everything, then write
        let mut sink = Trickle { out: Vec::new(), take: 7_777, block: false };
        for f in frames() {
            codec.buffer_frame(&mut sink, f).unwrap();
        }
        assert_eq!(codec.out_chain.len(), 4, "two headers-with-what-came-before and two payloads");
        let mut attempts = 0;
        while codec.write_out_buffer(&mut sink).is_err() {
            attempts += 1;
            assert!(attempts < 1_000);
        }
        assert_eq!(sink.out.len(), expected.len());
        assert!(sink.out == expected, "the bytes of plain formatting, in order");
        assert_eq!(codec.out_len(), 0);
    }

    /// StreamChat patch: a stream that hands out its chunks one read at a time; `None`
    /// stands for a read that would block.
    struct Chunks(std::collections::VecDeque<Option<Vec<u8>>>);

    impl std::io::Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.pop_front() {
                Some(Some(chunk)) => {
                    assert!(chunk.len() <= buf.len(), "read buffer too small for a chunk");
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Ok(chunk.len())
                }
                Some(None) => Err(std::io::ErrorKind::WouldBlock.into()),
                None => Ok(0),
            }
        }
    }

    fn would_block<T: std::fmt::Debug>(res: crate::Result<T>) -> bool {
        matches!(res, Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// StreamChat patch: the read buffer is given back when a read finds nothing and
    /// nothing is half read, and taken again for the next frame.
    #[test]
    fn idle_read_buffer_released() {
        let chunks = vec![Some(vec![0x82, 0x01, 0x01]), None, Some(vec![0x82, 0x01, 0x02])];
        let stream = Chunks(chunks.into());
        let mut sock = FrameSocket::new(stream);
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[0x01][..]);
        assert!(would_block(sock.read(None)));
        assert_eq!(sock.codec.in_buffer.capacity(), 0, "an idle connection keeps no read buffer");
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[0x02][..]);
    }

    /// StreamChat patch: a header read without its payload keeps the room reserved for the
    /// payload when the next read would block (the buffer was once given back here, and the
    /// next read found no room: a panic in debug builds, a reset connection in release).
    #[test]
    fn header_then_would_block_then_payload() {
        let chunks = vec![Some(vec![0x82, 0x03]), None, Some(vec![0x01, 0x02, 0x03])];
        let stream = Chunks(chunks.into());
        let mut sock = FrameSocket::new(stream);
        assert!(would_block(sock.read(None)));
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[0x01, 0x02, 0x03][..]);
    }

    /// StreamChat patch: a half-read header is kept when the next read would block.
    #[test]
    fn partial_header_then_would_block() {
        let chunks = vec![Some(vec![0x82]), None, Some(vec![0x02, 0x01, 0x02])];
        let stream = Chunks(chunks.into());
        let mut sock = FrameSocket::new(stream);
        assert!(would_block(sock.read(None)));
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[0x01, 0x02][..]);
    }

    /// StreamChat patch: the write buffer is dropped once written.
    #[test]
    fn write_buffer_dropped_once_written() {
        let mut sock = FrameSocket::new(Vec::new());
        let binary = OpCode::Data(Data::Binary);
        sock.send(Frame::message(vec![0u8; 60 * 1024], binary, true)).unwrap();
        assert_eq!(sock.codec.out_buffer.capacity(), 0, "the written frame's buffer is kept");
        let (buf, _) = sock.into_inner();
        assert_eq!(buf.len(), 4 + 60 * 1024);
    }

    #[test]
    #[cfg(target_pointer_width = "32")]
    fn length_above_usize_max_rejected() {
        // 64-bit payload length 0x1_0000_0005 does not fit a 32-bit usize; it
        // must be rejected rather than wrapping to 5 when narrowed.
        let raw = Cursor::new(vec![0x82, 0x7f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05]);
        let mut sock = FrameSocket::new(raw);
        assert!(matches!(
            sock.read(None),
            Err(Error::Capacity(CapacityError::MessageTooLong { size: 5, max_size: usize::MAX }))
        ));
    }
}
