//! A test tool: the Rust MLS engine as a peer driven over stdin/stdout, one JSON object a
//! line each way, so that another engine (the browser's, `web/test-interop/`) can share a
//! group with it. It holds any number of members, each by name, each with its own fresh
//! session identity key.
//!
//! Requests: `{"id":1,"op":"...","name":"r1",...}`; replies `{"id":1,"ok":{...}}` or
//! `{"id":1,"error":"what","code":"stale"}` (`code` names the [`Error`] variant). Bytes
//! travel as base64url without padding. Operations:
//! - `key_package` (`room`): a new member that publishes a KeyPackage →
//!   `{key_package, public_key}`;
//! - `create` (`room`): a new member that founds the group → `{public_key, epoch}`;
//! - `join` (`welcome`) → `{epoch}`;
//! - `add` (`key_packages`: [bytes]) → `{commit, welcome}`;
//! - `remove` (`members`: [public keys]) → `{commit}`;
//! - `update` → `{commit}`; `discard_pending` → `{}`;
//! - `process` (`bytes`) → `{kind: "message", sender, plaintext}`, `{kind: "own_message"}`,
//!   `{kind: "epoch", epoch, committer, added, removed, own, discarded_own}` or
//!   `{kind: "removed", epoch, committer}`;
//! - `seal` (`plaintext`) → `{sealed}`;
//! - `epoch`, `authenticator`, `members`, `public_key`, `state` (all of them at once).
//!
//! Bad input never panics: every failure is an `error` reply, and the peer goes on. It
//! ends at the end of its input.
//!
//! `cargo run -p streamchat-mls --example mls_peer`

use std::collections::HashMap;
use std::io::{self, BufRead, Write};

use serde_json::{Map, Value, json};
use streamchat_crypto::encoding::{decode, encode};
use streamchat_crypto::{IdentityKey, PublicKey};
use streamchat_mls::{Error, PendingJoin, Processed, RoomGroup};

/// One member: its identity and where it stands.
struct Member {
    identity: IdentityKey,
    pending: Option<PendingJoin>,
    group: Option<RoomGroup>,
}

/// A failed request: the message and a short code.
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn request(message: impl Into<String>) -> Self {
        Self {
            code: "request",
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Malformed(_) => "malformed",
            Error::Stale { .. } => "stale",
            Error::FutureEpoch { .. } => "future",
            Error::NotAMember => "not_member",
            Error::UnknownMember(_) => "unknown_member",
            Error::WrongGroup => "wrong_group",
            Error::BadCredential(_) => "bad_credential",
            Error::Refused(_) => "refused",
            Error::CommitPending => "commit_pending",
            Error::Desynchronized => "desynchronized",
            Error::Undecryptable(_) => "undecryptable",
            Error::AlreadyJoined => "already_joined",
            _ => "library",
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

type Reply = Result<Value, Failure>;

fn key(k: &PublicKey) -> Value {
    Value::String(encode(&k.to_bytes()))
}

fn keys(ks: &[PublicKey]) -> Value {
    Value::Array(ks.iter().map(key).collect())
}

fn str_field<'a>(request: &'a Map<String, Value>, field: &str) -> Result<&'a str, Failure> {
    request
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::request(format!("missing string field {field:?}")))
}

fn bytes_field(request: &Map<String, Value>, field: &'static str) -> Result<Vec<u8>, Failure> {
    let text = str_field(request, field)?;
    decode(field, text).map_err(|e| Failure::request(e.to_string()))
}

fn bytes_list(request: &Map<String, Value>, field: &'static str) -> Result<Vec<Vec<u8>>, Failure> {
    request
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::request(format!("missing array field {field:?}")))?
        .iter()
        .map(|item| {
            let text = item
                .as_str()
                .ok_or_else(|| Failure::request(format!("{field}: not a string")))?;
            decode(field, text).map_err(|e| Failure::request(e.to_string()))
        })
        .collect()
}

fn public_key(bytes: &[u8]) -> Result<PublicKey, Failure> {
    let raw: &[u8; 32] = bytes
        .try_into()
        .map_err(|_| Failure::request("a public key is 32 bytes"))?;
    PublicKey::from_bytes(raw).map_err(|e| Failure::request(e.to_string()))
}

#[derive(Default)]
struct Peer {
    members: HashMap<String, Member>,
}

impl Peer {
    fn new_member(&mut self, name: &str) -> Result<&mut Member, Failure> {
        if self.members.contains_key(name) {
            return Err(Failure::request(format!("member {name:?} exists already")));
        }
        let identity = IdentityKey::generate().map_err(|e| Failure::request(e.to_string()))?;
        Ok(self.members.entry(name.to_owned()).or_insert(Member {
            identity,
            pending: None,
            group: None,
        }))
    }

    fn member(&mut self, name: &str) -> Result<&mut Member, Failure> {
        self.members
            .get_mut(name)
            .ok_or_else(|| Failure::request(format!("no member {name:?}")))
    }

    fn group(&mut self, name: &str) -> Result<&mut RoomGroup, Failure> {
        self.member(name)?
            .group
            .as_mut()
            .ok_or_else(|| Failure::request(format!("member {name:?} has no group")))
    }

    fn handle(&mut self, request: &Map<String, Value>) -> Reply {
        let op = str_field(request, "op")?;
        let name = str_field(request, "name")?;
        match op {
            "key_package" => {
                let room = str_field(request, "room")?;
                let member = self.new_member(name)?;
                let (pending, key_package) = RoomGroup::key_package(&member.identity, room)?;
                member.pending = Some(pending);
                Ok(json!({
                    "key_package": encode(&key_package),
                    "public_key": key(&member.identity.public_key()),
                }))
            }
            "create" => {
                let room = str_field(request, "room")?;
                let member = self.new_member(name)?;
                let group = RoomGroup::create(&member.identity, room)?;
                let epoch = group.epoch();
                member.group = Some(group);
                Ok(json!({ "public_key": key(&member.identity.public_key()), "epoch": epoch }))
            }
            "join" => {
                let welcome = bytes_field(request, "welcome")?;
                let member = self.member(name)?;
                let pending = member
                    .pending
                    .as_mut()
                    .ok_or_else(|| Failure::request("no KeyPackage waiting for a Welcome"))?;
                let group = pending.join(&welcome)?;
                let epoch = group.epoch();
                member.pending = None;
                member.group = Some(group);
                Ok(json!({ "epoch": epoch }))
            }
            "add" => {
                let packages = bytes_list(request, "key_packages")?;
                let refs: Vec<&[u8]> = packages.iter().map(Vec::as_slice).collect();
                let proposed = self.group(name)?.add(&refs)?;
                Ok(json!({
                    "commit": encode(&proposed.commit),
                    "welcome": proposed.welcome.as_deref().map(encode),
                }))
            }
            "remove" => {
                let members = bytes_list(request, "members")?
                    .iter()
                    .map(|b| public_key(b))
                    .collect::<Result<Vec<_>, _>>()?;
                let proposed = self.group(name)?.remove(&members)?;
                Ok(json!({ "commit": encode(&proposed.commit) }))
            }
            "update" => {
                let proposed = self.group(name)?.update()?;
                Ok(json!({ "commit": encode(&proposed.commit) }))
            }
            "discard_pending" => {
                self.group(name)?.discard_pending()?;
                Ok(json!({}))
            }
            "process" => {
                let bytes = bytes_field(request, "bytes")?;
                Ok(match self.group(name)?.process(&bytes)? {
                    Processed::Message { sender, plaintext } => json!({
                        "kind": "message", "sender": key(&sender), "plaintext": encode(&plaintext),
                    }),
                    Processed::OwnMessage => json!({ "kind": "own_message" }),
                    Processed::Epoch {
                        epoch,
                        committer,
                        added,
                        removed,
                        own,
                        discarded_own,
                    } => json!({
                        "kind": "epoch", "epoch": epoch, "committer": key(&committer),
                        "added": keys(&added), "removed": keys(&removed),
                        "own": own, "discarded_own": discarded_own,
                    }),
                    Processed::Removed { epoch, committer } => json!({
                        "kind": "removed", "epoch": epoch, "committer": key(&committer),
                    }),
                })
            }
            "seal" => {
                let plaintext = bytes_field(request, "plaintext")?;
                let sealed = self.group(name)?.seal(&plaintext)?;
                Ok(json!({ "sealed": encode(&sealed) }))
            }
            "epoch" => Ok(json!({ "epoch": self.group(name)?.epoch() })),
            "authenticator" => Ok(json!({
                "authenticator": encode(&self.group(name)?.authenticator()),
            })),
            "members" => Ok(json!({ "members": keys(&self.group(name)?.members()) })),
            "public_key" => Ok(json!({
                "public_key": key(&self.member(name)?.identity.public_key()),
            })),
            "state" => {
                let group = self.group(name)?;
                Ok(json!({
                    "epoch": group.epoch(),
                    "authenticator": encode(&group.authenticator()),
                    "members": keys(&group.members()),
                    "is_member": group.is_member(),
                    "has_pending": group.has_pending(),
                }))
            }
            other => Err(Failure::request(format!("unknown op {other:?}"))),
        }
    }
}

fn reply_to(peer: &mut Peer, line: &str) -> Value {
    let parsed: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return json!({ "id": null, "error": format!("not JSON: {e}"), "code": "request" });
        }
    };
    let Some(request) = parsed.as_object() else {
        return json!({ "id": null, "error": "not a JSON object", "code": "request" });
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    match peer.handle(request) {
        Ok(ok) => json!({ "id": id, "ok": ok }),
        Err(f) => json!({ "id": id, "error": f.message, "code": f.code }),
    }
}

fn main() -> io::Result<()> {
    let mut peer = Peer::default();
    let stdin = io::stdin();
    let mut stdout = io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = reply_to(&mut peer, &line);
        writeln!(stdout, "{reply}")?;
        stdout.flush()?;
    }
    Ok(())
}
