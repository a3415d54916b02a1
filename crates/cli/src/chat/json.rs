//! `streamchat chat <link> --name NAME --json`: the chat for scripts and bots.
//!
//! Reads stdin line by line: each line is a text message, except commands (`/reply N
//! TEXT`, `/react N EMOJI`, `/edit N TEXT`, `/delete N`, `/send PATH`, `/save N PATH`,
//! `/who`, `/quit`; a line starting with `//` is a message starting with `/`). Texts are
//! numbered in order, one's own and others' (`number`), for the commands that name one. Writes one JSON object per line to stdout, each with an `"event"` field. End of
//! input sends what is still queued, leaves the room and exits.
//!
//! Events (all times are server Unix ms unless named `sent_at`; `time` and `date` are
//! the local-zone forms; a member is `{member, name, fingerprint, key, joined_at, self}`):
//!
//! | event | fields |
//! |---|---|
//! | `ready` | `rejoin`, `room`, `me` (member), `members` (others), `limits` — first event, and again after a reconnection that had to join anew (`rejoin: true`; a resume does not repeat it) |
//! | `joined` | `member`, `returning`, `at`, `time`, `date`, `text` ("Alice joined the chat at 14:30:45 on 2026-11-29") |
//! | `left` | `member`, `at`, `reason` (`left`, `disconnected`, `timeout`, `server_restart`), `time`, `date`, `text` |
//! | `away` | `member` — their connection dropped; still a member while they reconnect (`back` or `left` follows) |
//! | `back` | `member` — reconnected in time, having missed nothing |
//! | `message` | `from` (member), `number`, `message` (`{key, sent_at}`), `text`, `ts`, `sent_at`, `direct`, `time`, `date`, `reply_to` (null, or `{message, number, text, quote}`: the text answered, its number and current text if known here, the quote its sender sent) — verified |
//! | `edited` | `from`, `number`, `message`, `text` — its author changed a text (an edit signed by anyone else is a `warning`, and changes nothing) |
//! | `deleted` | `from`, `number`, `message` — its author deleted a text |
//! | `reaction` | `from`, `number`, `message`, `emoji`, `add`, `reactions` (`[{emoji, count, names, mine}]`, the text's reactions now) |
//! | `typing` | `from` |
//! | `file_offered` | `from`, `ts`, `file` (`{id, name, mime, size, chunks, sha256}`) |
//! | `file` | `number` (for `/save`), `from`, `ts`, `file` — complete, decrypted, SHA-256 checked, in memory |
//! | `file_failed` | `from`, `file`, `reason` |
//! | `queued` | `id`, `kind` (`text`, `file`, `reaction`, `edit`, `delete`): the id later events refer to; for texts `number`, `message` and `reply_to` (a number or null), for files `name`, for the others the `number` of the text they change, for reactions also `emoji`, `add` and `reactions` |
//! | `sent` | `id`, `ts` |
//! | `file_progress` | `id`, `sent`, `chunks` |
//! | `file_sent` | `id`, `file`, `ts` |
//! | `send_failed` | `id`, `reason` |
//! | `saved` | `number`, `path`, `bytes` |
//! | `members` | `members` (everyone, self first), the answer to `/who` |
//! | `warning` | `message` — something was dropped (failed decryption or signature, bad profile) |
//! | `notice` | `code`, `message` — from the server |
//! | `error` | `message` — a command could not be done |
//! | `disconnected` | `reason` — reconnecting follows |
//! | `resumed` | `offline_ms`, `replayed`, `text` — back as the same member; what was sent meanwhile follows as usual (no `ready`) |
//! | `gap` | `messages`, `exact`, `offline_ms`, `text` ("You were offline for 3 minutes: 41 messages could not be recovered.") — messages lost while offline (`exact: false`: at least that many; 0 then means unknown) |
//! | `closed` | `reason` — the last event |

use super::ChatError;
use super::command::{self, COMMANDS_HELP, Input};
use super::files::{self, KeptFiles};
use super::messages::Messages;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;
use streamchat_client::display::{
    PresenceAlert, at_time, leave_reason_code, local_time_and_date, presence_alert_text,
};
use streamchat_client::display::{
    gap_text, keys_changed_text, knock_text, resumed_text, waiting_text,
};
use streamchat_client::session::{
    Member, MessageRef, ReplyTo, Session, SessionConfig, SessionEvent,
};
use streamchat_protocol::Limits;
use tokio::io::AsyncBufReadExt;

/// How long queued sends may take after input ends.
const DRAIN: Duration = Duration::from_secs(120);

/// Writes JSON lines to stdout; a closed stdout (the reader went away) ends the program.
struct Out;

impl Out {
    fn emit(&self, value: Value) -> bool {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{value}")
            .and_then(|()| stdout.flush())
            .is_ok()
    }
}

/// The chat's state as far as the JSON mode needs it.
#[derive(Default)]
struct State {
    files: KeptFiles,
    limits: Option<Limits>,
    room: String,
    me: Option<Member>,
    members: HashMap<String, Member>,
    messages: Messages,
}

fn member_json(member: &Member) -> Value {
    serde_json::to_value(member).unwrap_or(Value::Null)
}

fn clock_fields(ts: u64) -> (String, String) {
    local_time_and_date(ts)
}

impl State {
    /// The JSON for a session event (None for events not shown).
    fn event_json(&mut self, event: SessionEvent) -> Value {
        match event {
            SessionEvent::Ready {
                me,
                members,
                limits,
                rejoin,
            } => {
                self.limits = Some(limits);
                self.members = members
                    .iter()
                    .map(|m| (m.member.to_string(), m.clone()))
                    .collect();
                let value = json!({
                    "event": "ready", "rejoin": rejoin, "room": self.room,
                    "me": member_json(&me),
                    "members": members.iter().map(member_json).collect::<Vec<_>>(),
                    "limits": limits,
                });
                self.me = Some(me);
                value
            }
            SessionEvent::MemberJoined { member, returning } => {
                let (time, date) = clock_fields(member.joined_at);
                let alert = if returning {
                    PresenceAlert::Rejoined { name: &member.name }
                } else {
                    PresenceAlert::Joined { name: &member.name }
                };
                let text = presence_alert_text(&alert, &at_time(member.joined_at));
                self.members
                    .insert(member.member.to_string(), member.clone());
                json!({
                    "event": "joined", "member": member_json(&member), "returning": returning,
                    "at": member.joined_at, "time": time, "date": date, "text": text,
                })
            }
            SessionEvent::MemberAway { member } => {
                json!({"event": "away", "member": member_json(&member)})
            }
            SessionEvent::MemberBack { member } => {
                json!({"event": "back", "member": member_json(&member)})
            }
            SessionEvent::MemberLeft { member, at, reason } => {
                self.members.remove(member.member.as_str());
                let (time, date) = clock_fields(at);
                let text = presence_alert_text(
                    &PresenceAlert::Left {
                        name: &member.name,
                        reason,
                    },
                    &at_time(at),
                );
                json!({
                    "event": "left", "member": member_json(&member), "at": at,
                    "reason": leave_reason_code(reason), "time": time, "date": date, "text": text,
                })
            }
            SessionEvent::Message {
                from,
                message,
                reply_to,
                ts,
                sent_at,
                text,
                direct,
            } => {
                let (time, date) = clock_fields(ts);
                let reply_to = reply_to.map(|reply| self.reply_json(&reply));
                let number = self.messages.add(message, &from.name, &text, false);
                json!({
                    "event": "message", "from": member_json(&from), "number": number,
                    "message": message, "text": text, "ts": ts, "sent_at": sent_at,
                    "direct": direct, "time": time, "date": date, "reply_to": reply_to,
                })
            }
            SessionEvent::Edited {
                from,
                message,
                text,
            } => {
                let kept = self.messages.find_mut(&message);
                let number = kept.map(|kept| {
                    kept.text.clone_from(&text);
                    kept.number
                });
                json!({
                    "event": "edited", "from": member_json(&from), "number": number,
                    "message": message, "text": text,
                })
            }
            SessionEvent::Deleted { from, message } => {
                let kept = self.messages.find_mut(&message);
                let number = kept.map(|kept| {
                    kept.deleted = true;
                    kept.text.clear();
                    kept.number
                });
                json!({
                    "event": "deleted", "from": member_json(&from), "number": number,
                    "message": message,
                })
            }
            SessionEvent::Reacted {
                from,
                message,
                emoji,
                add,
                reactions,
            } => json!({
                "event": "reaction", "from": member_json(&from),
                "number": self.messages.find(&message).map(|m| m.number), "message": message,
                "emoji": emoji, "add": add, "reactions": reactions,
            }),
            SessionEvent::Typing { from } => json!({"event": "typing", "from": member_json(&from)}),
            SessionEvent::FileOffered { from, ts, file } => json!({
                "event": "file_offered", "from": member_json(&from), "ts": ts, "file": file,
            }),
            SessionEvent::FileReceived {
                from,
                ts,
                file,
                data,
            } => {
                let (number, dropped) = self.files.keep(file.clone(), data);
                let (time, date) = clock_fields(ts);
                json!({
                    "event": "file", "number": number, "from": member_json(&from), "ts": ts,
                    "file": file, "time": time, "date": date, "dropped": dropped,
                })
            }
            SessionEvent::FileFailed { from, file, reason } => json!({
                "event": "file_failed", "from": member_json(&from), "file": file, "reason": reason,
            }),
            SessionEvent::Sent { id, ts } => json!({"event": "sent", "id": id, "ts": ts}),
            SessionEvent::FileProgress { id, sent, chunks } => {
                json!({"event": "file_progress", "id": id, "sent": sent, "chunks": chunks})
            }
            SessionEvent::FileSent { id, file, ts } => {
                json!({"event": "file_sent", "id": id, "file": file, "ts": ts})
            }
            SessionEvent::SendFailed { id, reason } => {
                json!({"event": "send_failed", "id": id, "reason": reason})
            }
            SessionEvent::Warning { message } => json!({"event": "warning", "message": message}),
            SessionEvent::Waiting { knock_room } => json!({
                "event": "waiting", "knock_room": knock_room,
                "text": waiting_text(knock_room),
            }),
            SessionEvent::LetIn { epoch } => json!({"event": "let_in", "epoch": epoch}),
            SessionEvent::Knock { member } => {
                self.members
                    .insert(member.member.to_string(), member.clone());
                json!({"event": "knock", "member": member_json(&member), "text": knock_text(&member)})
            }
            SessionEvent::KeysChanged {
                epoch,
                by,
                added,
                removed,
            } => json!({
                "event": "keys_changed", "epoch": epoch, "by": by, "added": added,
                "removed": removed, "text": keys_changed_text(&by, &added, &removed),
            }),
            SessionEvent::KeysLost { message } => json!({"event": "keys_lost", "message": message}),
            SessionEvent::Notice { code, message } => {
                json!({"event": "notice", "code": code, "message": message})
            }
            SessionEvent::Disconnected { reason } => {
                json!({"event": "disconnected", "reason": reason})
            }
            SessionEvent::Resumed {
                offline_for,
                replayed,
            } => json!({
                "event": "resumed", "offline_ms": offline_for.as_millis() as u64,
                "replayed": replayed, "text": resumed_text(offline_for),
            }),
            SessionEvent::Gap {
                messages,
                exact,
                offline_for,
            } => json!({
                "event": "gap", "messages": messages, "exact": exact,
                "offline_ms": offline_for.as_millis() as u64,
                "text": gap_text(messages, exact, offline_for),
            }),
            SessionEvent::Closed { reason } => json!({"event": "closed", "reason": reason}),
        }
    }

    /// What a reply answers: the text by number and as it is now, if known here.
    fn reply_json(&self, reply: &ReplyTo) -> Value {
        let kept = self.messages.find(&reply.to);
        json!({
            "message": reply.to, "number": kept.map(|m| m.number),
            "text": kept.filter(|m| !m.deleted).map(|m| m.text.clone()),
            "deleted": kept.is_some_and(|m| m.deleted), "quote": reply.quote,
        })
    }

    /// Queues a text (a reply when `reply_to` names one) and numbers it.
    async fn send_text(
        &mut self,
        session: &Session,
        text: String,
        reply_to: Option<usize>,
    ) -> Value {
        let target = match reply_to.map(|n| self.messages.target(n)).transpose() {
            Ok(target) => target.map(|m| (m.message, m.text.clone())),
            Err(e) => return error(e),
        };
        let reply = target.as_ref().map(|(to, text)| (*to, text.as_str()));
        match session.queue_text(text.clone(), reply).await {
            Ok(queued) => {
                let own = self
                    .me
                    .as_ref()
                    .map_or("", |me| me.name.as_str())
                    .to_owned();
                let number = self.messages.add(queued.message, &own, &text, true);
                json!({
                    "event": "queued", "id": queued.id, "kind": "text", "number": number,
                    "message": queued.message, "reply_to": reply_to,
                })
            }
            Err(e) => error(e.to_string()),
        }
    }

    async fn react(&mut self, session: &Session, number: usize, emoji: &str) -> Value {
        let message = match self.messages.target(number) {
            Ok(m) => m.message,
            Err(e) => return error(e),
        };
        match session.react(message, emoji).await {
            Ok(reacted) => json!({
                "event": "queued", "id": reacted.id, "kind": "reaction", "number": number,
                "emoji": emoji, "add": reacted.add, "reactions": reacted.reactions,
            }),
            Err(e) => error(e.to_string()),
        }
    }

    async fn change(&mut self, session: &Session, number: usize, text: Option<String>) -> Value {
        let message: MessageRef = match self.messages.own_target(number) {
            Ok(m) => m.message,
            Err(e) => return error(e),
        };
        let (kind, result) = match &text {
            Some(text) => ("edit", session.edit(message, text.clone()).await),
            None => ("delete", session.delete(message).await),
        };
        match result {
            Ok(id) => {
                if let Some(kept) = self.messages.find_mut(&message) {
                    match text {
                        Some(text) => kept.text = text,
                        None => {
                            kept.deleted = true;
                            kept.text.clear();
                        }
                    }
                }
                json!({"event": "queued", "id": id, "kind": kind, "number": number})
            }
            Err(e) => error(e.to_string()),
        }
    }

    fn who(&self) -> Value {
        let mut all: Vec<&Member> = self.me.iter().collect();
        let mut others: Vec<&Member> = self.members.values().collect();
        others.sort_by_key(|m| m.joined_at);
        all.extend(others);
        json!({"event": "members", "members": all.into_iter().map(member_json).collect::<Vec<_>>()})
    }
}

fn error(message: impl Into<String>) -> Value {
    json!({"event": "error", "message": message.into()})
}

/// What to do after a line of input.
enum Next {
    Continue,
    Quit,
}

async fn handle_line(line: &str, session: &Session, state: &mut State, out: &Out) -> Next {
    let reply = match command::parse(line) {
        Err(message) => error(message),
        Ok(Input::Nothing) => return Next::Continue,
        Ok(Input::Quit) => return Next::Quit,
        Ok(Input::Help) => json!({"event": "help", "commands": COMMANDS_HELP}),
        Ok(Input::Who) => state.who(),
        Ok(Input::LetIn(who)) => match command::find_member(state.members.values(), &who) {
            Ok(member) => {
                let member = member.clone();
                match session.let_in(&member.member).await {
                    Ok(()) => json!({"event": "letting_in", "member": member_json(&member)}),
                    Err(e) => error(e.to_string()),
                }
            }
            Err(e) => error(e),
        },
        Ok(Input::Text(text)) => state.send_text(session, text, None).await,
        Ok(Input::Reply { number, text }) => state.send_text(session, text, Some(number)).await,
        Ok(Input::React { number, emoji }) => state.react(session, number, &emoji).await,
        Ok(Input::Edit { number, text }) => state.change(session, number, Some(text)).await,
        Ok(Input::Delete { number }) => state.change(session, number, None).await,
        Ok(Input::Send(path)) => {
            let max = state.limits.map_or(u64::MAX, |l| l.max_file_bytes);
            match files::read_for_sending(&path, max).await {
                Err(e) => error(e.to_string()),
                Ok((name, mime, data)) => match session.send_file(name.clone(), mime, data).await {
                    Ok(id) => json!({"event": "queued", "id": id, "kind": "file", "name": name}),
                    Err(e) => error(e.to_string()),
                },
            }
        }
        Ok(Input::Save { number, path }) => match state.files.get(number) {
            None => error(files::LocalFileError::NoSuchFile(number).to_string()),
            Some(file) => match files::save(file, &path) {
                Ok(written) => json!({
                    "event": "saved", "number": number, "path": written.display().to_string(),
                    "bytes": file.data.len(),
                }),
                Err(e) => error(e.to_string()),
            },
        },
    };
    if out.emit(reply) {
        Next::Continue
    } else {
        Next::Quit
    }
}

/// Runs the JSON mode until stdin ends, `/quit`, or the session closes.
pub async fn run(config: SessionConfig) -> Result<(), ChatError> {
    let out = Out;
    let room =
        streamchat_client::session::protocol_room_id(&config.secret.room_keys_for(config.kind))
            .to_string();
    let (session, mut events) = match Session::start(config).await {
        Ok(started) => started,
        Err(e) => {
            out.emit(json!({"event": "closed", "reason": e.to_string()}));
            return Err(e.into());
        }
    };
    let mut state = State {
        room,
        ..State::default()
    };
    // `ready` comes first, before anything typed is acknowledged as queued.
    if let Some(first) = events.recv().await
        && !out.emit(state.event_json(first))
    {
        return Ok(());
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if let Next::Quit = handle_line(&line, &session, &mut state, &out).await {
                        break;
                    }
                }
                // End of input (or unreadable input): leave after sending what is queued.
                Ok(None) | Err(_) => break,
            },
            event = events.recv() => match event {
                None => return Ok(()),
                Some(event) => {
                    let closed = matches!(event, SessionEvent::Closed { .. });
                    if !out.emit(state.event_json(event)) || closed {
                        return Ok(());
                    }
                }
            },
        }
    }
    let leaving = tokio::spawn(session.leave(DRAIN));
    while let Some(event) = events.recv().await {
        let closed = matches!(event, SessionEvent::Closed { .. });
        if !out.emit(state.event_json(event)) || closed {
            break;
        }
    }
    // The session is closed; the leave task has nothing left to wait for.
    let _ = leaving.await;
    Ok(())
}
