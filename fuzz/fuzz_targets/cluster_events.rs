//! What a node decodes from the shared store and the bus, written by other nodes: bus
//! events (Redis pub/sub and Kafka records, `BusEvent::decode`, MessagePack), entries of a
//! room's log stream (`decode_log_entry`, as `fetch_now` reads XRANGE replies) and the
//! log script's replies (`decode_log_reply`, as `run_log` reads EVALSHA replies, with the
//! room hash's member entries in them). Other nodes are trusted more than clients, but a
//! node that decodes garbage must drop it, not fall over: one panic in the log task would
//! stop every room's log on that node.
//!
//! Input: byte 0 chooses what the rest is:
//! - 0: the bytes of a bus event;
//! - 1: a log stream entry: its id (u16 LE length, text), its `t` field (a reply value,
//!   see below), then the bytes of its `e` field;
//! - 2: a log script reply: byte 1 chooses the operation (`event`, `admit`, `away`,
//!   `remove`, `resume`, other), then reply values until the input ends.
//!
//! A reply value is a tag byte and its content: a string (u16 LE length, text), bytes
//! (u16 LE length), an integer (i64 LE), nil, a double, a boolean, an array (a count, then
//! values, nested at most 3 deep) or a number as text (u64 LE, written in decimal).
//!
//! Nothing may panic. Besides:
//! - a bus event that decodes encodes to bytes that decode to the same event, and those
//!   bytes are what the node would publish (encoding is deterministic);
//! - a log entry's event is placed at the position its id names, in the epoch given;
//! - a reply is `full` or `refused` exactly when its status says so; members come back in
//!   join order with valid ids, only for `admit` and `resume`, and a resumed member's entry
//!   only for `resume`.

#![no_main]

#[path = "../common/reached.rs"]
mod reached;
use reached::reached;

use bytes::Bytes;
use fred::types::Value;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use streamchat_protocol::MemberId;
use streamchat_server::BusEvent;
use streamchat_server::fuzzing::{LogReply, decode_log_entry, decode_log_reply};

const KINDS: [&str; 6] = ["event", "admit", "away", "remove", "resume", "other"];

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    /// A u16 LE length, then up to that many bytes (fewer if the input ends).
    fn run(&mut self) -> &'a [u8] {
        let len = self.array::<2>().map_or(0, u16::from_le_bytes);
        let n = usize::from(len).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn value(&mut self, depth: u8) -> Option<Value> {
        Some(match self.byte()? % 8 {
            0 => Value::String(String::from_utf8_lossy(self.run()).into_owned().into()),
            1 => Value::Bytes(Bytes::copy_from_slice(self.run())),
            2 => Value::Integer(i64::from_le_bytes(self.array()?)),
            3 => Value::Null,
            4 => Value::Double(f64::from_le_bytes(self.array()?)),
            5 => Value::Boolean(self.byte()? & 1 == 1),
            6 if depth < 3 => {
                let count = self.byte()? % 8;
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            6 => Value::Null,
            _ => Value::String(u64::from_le_bytes(self.array()?).to_string().into()),
        })
    }
}

fuzz_target!(|input: &[u8]| {
    let mut r = Reader(input);
    let Some(mode) = r.byte() else { return };
    match mode % 3 {
        0 => bus(r.0),
        1 => {
            let id = String::from_utf8_lossy(r.run()).into_owned();
            let t = r.value(0);
            let mut fields = HashMap::new();
            if let Some(t) = t {
                fields.insert("t".to_owned(), t);
            }
            fields.insert("e".to_owned(), Value::Bytes(Bytes::copy_from_slice(r.0)));
            if let Some(bus) = decode_log_entry(&id, &fields, "epoch-1") {
                reached!("log entry");
                let pos: u64 = id
                    .split('-')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                assert_eq!(bus.event.pos(), pos, "placed where its id says");
                assert_eq!(bus.epoch, "epoch-1");
                check_bus(&bus);
            }
        }
        _ => {
            let kind = KINDS[usize::from(r.byte().unwrap_or(0)) % KINDS.len()];
            let mut reply = Vec::new();
            while let Some(v) = r.value(0) {
                reply.push(v);
            }
            let status = reply.first().and_then(Value::as_string).unwrap_or_default();
            match decode_log_reply(kind, &reply) {
                LogReply::Full => assert_eq!(status, "full"),
                LogReply::Refused => assert_eq!(status, "refused"),
                LogReply::Placed {
                    placed,
                    members,
                    resumed,
                } => {
                    reached!(
                        "{kind} placed, {} members, resumed: {}",
                        members.len(),
                        resumed.is_some()
                    );
                    assert!(status != "full" && status != "refused");
                    assert_eq!(placed.duplicate, status == "dup");
                    if !matches!(kind, "admit" | "resume") {
                        assert!(members.is_empty());
                    }
                    if kind != "resume" {
                        assert!(resumed.is_none());
                    }
                    assert!(
                        members.windows(2).all(|w| w[0].0.at <= w[1].0.at),
                        "join order"
                    );
                    for (info, _node) in &members {
                        assert!(MemberId::new(info.member.as_str()).is_ok());
                    }
                }
            }
        }
    }
});

fn bus(bytes: &[u8]) {
    if let Ok(event) = BusEvent::decode(bytes) {
        check_bus(&event);
    }
}

fn check_bus(event: &BusEvent) {
    reached!("bus event");
    let encoded = event.encode().expect("a decoded event encodes");
    let again = BusEvent::decode(&encoded).expect("its encoding decodes");
    assert_eq!(&again, event, "an event reads back from its own encoding");
    assert_eq!(
        again.encode().expect("encodes"),
        encoded,
        "encoding is deterministic"
    );
}
