//! Socket.IO v5 packets over Engine.IO v4 WebSocket frames: encoding and decoding, sans I/O.
//!
//! A text frame is an Engine.IO packet: `0` open, `1` close, `2` ping, `3` pong,
//! `4` message. A message carries a Socket.IO packet:
//! `<type>[<attachments>-][<nsp>,][<ack id>][<json>]`, where binary packets (types 5, 6)
//! are followed by that many binary frames, each standing for a
//! `{"_placeholder":true,"num":N}` in the JSON. Only the default namespace `/` is used.

use bytes::Bytes;
use serde_json::Value;

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// Namespace connect (and its success answer).
    Connect = 0,
    /// Namespace disconnect.
    Disconnect = 1,
    /// An event.
    Event = 2,
    /// An acknowledgement.
    Ack = 3,
    /// A refused namespace connect.
    ConnectError = 4,
    /// An event with binary attachments.
    BinaryEvent = 5,
    /// An acknowledgement with binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    fn from_digit(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }
}

/// A decoded Socket.IO packet header and JSON, before its attachments arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Its type.
    pub kind: PacketType,
    /// Binary frames that follow it.
    pub attachments: usize,
    /// Ack id, if any.
    pub id: Option<u64>,
    /// The JSON part (Null if absent).
    pub data: Value,
}

/// A frame or packet that does not follow the protocol.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// Unknown packet type or malformed header.
    #[error("malformed Socket.IO packet header")]
    Header,
    /// The JSON part does not parse.
    #[error("malformed Socket.IO packet JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A placeholder names an attachment that did not come.
    #[error("binary placeholder {0} has no attachment")]
    MissingAttachment(u64),
}

/// Decodes the Socket.IO packet inside an Engine.IO message (the text after the `4`).
pub fn decode(text: &str) -> Result<Packet, PacketError> {
    let bytes = text.as_bytes();
    let kind = bytes
        .first()
        .and_then(|c| PacketType::from_digit(*c))
        .ok_or(PacketError::Header)?;
    let mut i = 1;
    let mut attachments = 0;
    if matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || bytes.get(i) != Some(&b'-') {
            return Err(PacketError::Header);
        }
        attachments = text[start..i].parse().map_err(|_| PacketError::Header)?;
        i += 1;
    }
    if bytes.get(i) == Some(&b'/') {
        while i < bytes.len() && bytes[i] != b',' {
            i += 1;
        }
        i += 1;
    }
    let start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let id = if i > start {
        Some(text[start..i].parse().map_err(|_| PacketError::Header)?)
    } else {
        None
    };
    let rest = text.get(i..).unwrap_or("");
    let data = if rest.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(rest)?
    };
    Ok(Packet {
        kind,
        attachments,
        id,
        data,
    })
}

/// Replaces every binary placeholder in `value` using `resolve(num)`.
pub fn fill_placeholders(
    value: &mut Value,
    resolve: &mut dyn FnMut(u64) -> Option<Value>,
) -> Result<(), PacketError> {
    match value {
        Value::Object(map) => {
            if map.get("_placeholder") == Some(&Value::Bool(true)) {
                let num = map
                    .get("num")
                    .and_then(Value::as_u64)
                    .ok_or(PacketError::Header)?;
                *value = resolve(num).ok_or(PacketError::MissingAttachment(num))?;
                return Ok(());
            }
            for v in map.values_mut() {
                fill_placeholders(v, resolve)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                fill_placeholders(v, resolve)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The JSON standing for attachment `num`.
pub fn placeholder(num: usize) -> Value {
    serde_json::json!({ "_placeholder": true, "num": num })
}

/// Encodes an event `[name, payload]` with optional ack id, as the text of an Engine.IO
/// message frame (starting with `4`), to be followed by `attachments` binary frames.
pub fn encode_event(name: &str, payload: &Value, attachments: usize, id: Option<u64>) -> String {
    let json = Value::Array(vec![Value::String(name.to_owned()), payload.clone()]).to_string();
    let id = id.map(|i| i.to_string()).unwrap_or_default();
    if attachments > 0 {
        format!("45{attachments}-{id}{json}")
    } else {
        format!("42{id}{json}")
    }
}

/// The attachment bytes standing for a placeholder while decoding: kept out of JSON.
#[derive(Debug, Default)]
pub struct Attachments(pub Vec<Bytes>);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_events_acks_and_binary_headers() {
        let p = decode("2[\"notice\",{\"code\":\"x\"}]").unwrap();
        assert_eq!((p.kind, p.attachments, p.id), (PacketType::Event, 0, None));
        assert_eq!(p.data, json!(["notice", {"code": "x"}]));
        let p = decode("312[{\"ok\":true}]").unwrap();
        assert_eq!((p.kind, p.id), (PacketType::Ack, Some(12)));
        let p = decode("51-[\"msg\",{\"data\":{\"_placeholder\":true,\"num\":0}}]").unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.id),
            (PacketType::BinaryEvent, 1, None)
        );
        let p = decode("0{\"sid\":\"abc\"}").unwrap();
        assert_eq!(p.kind, PacketType::Connect);
        let p = decode("4/admin,{\"message\":\"no\"}").unwrap();
        assert_eq!(p.kind, PacketType::ConnectError);
        assert!(decode("9").is_err());
        assert!(decode("5x-[]").is_err());
    }

    #[test]
    fn encodes_what_it_decodes() {
        let text = encode_event("msg", &json!({"data": placeholder(0)}), 1, Some(7));
        assert_eq!(
            text,
            "451-7[\"msg\",{\"data\":{\"_placeholder\":true,\"num\":0}}]"
        );
        let p = decode(&text[1..]).unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.id),
            (PacketType::BinaryEvent, 1, Some(7))
        );
        assert_eq!(
            encode_event("leave", &json!({}), 0, None),
            "42[\"leave\",{}]"
        );
    }

    #[test]
    fn placeholders_are_filled_or_reported() {
        let mut v = json!(["chunk", {"data": placeholder(0), "n": [placeholder(1)]}]);
        fill_placeholders(&mut v, &mut |n| Some(json!(n))).unwrap();
        assert_eq!(v, json!(["chunk", {"data": 0, "n": [1]}]));
        let mut v = json!({"data": placeholder(3)});
        assert!(fill_placeholders(&mut v, &mut |_| None).is_err());
    }
}
