//! The terminal UI's state and how it changes, Elm-style: [`Model`] is everything the
//! screen shows, [`Msg`] is everything that can happen (a key, a session event, a tick,
//! the result of an effect), and [`update`] turns one into the next model plus the
//! [`Effect`]s to run. No I/O here, so tests drive it directly.

use super::super::command::{self, COMMANDS_HELP, Input, find_member};
use super::super::files::KeptFiles;
use super::super::messages::Messages;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::{HashMap, HashSet, VecDeque};
use streamchat_client::display::{
    PresenceAlert, at_time, byte_size, leave_reason_suffix, presence_alert_text, safe_line,
};
use streamchat_client::display::{
    gap_text, keys_changed_text, knock_text, resumed_text, waiting_text,
};
use streamchat_client::session::{
    FileInfo, Member, MessageRef, ReactionCount, ReplyTo, SendId, SessionEvent,
};
use streamchat_protocol::{Limits, MemberId};

/// Timeline entries kept, at most; older ones scroll away for good.
pub const MAX_TIMELINE: usize = 2000;
/// How long "Bob is typing…" shows after Bob's last typing news.
pub const TYPING_SHOW_MS: u64 = 6000;
/// Typing news is sent at most this often.
pub const TYPING_SEND_INTERVAL_MS: u64 = 3000;

/// Where one of this person's own messages stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the server's ack.
    Sending,
    /// Accepted by the server.
    Sent,
    /// Not sent.
    Failed(String),
}

/// The message a reply answers, as shown above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The answered message.
    pub message: MessageRef,
    /// The answered message's number, if it is known here.
    pub number: Option<usize>,
    /// Its author, if known here.
    pub author: Option<String>,
    /// Its text as it is now if known here, else the quote the replier sent (untrusted).
    pub text: String,
    /// Whether it was deleted.
    pub deleted: bool,
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // Most entries are messages; boxing them would only add a pointer.
pub enum Entry {
    /// A text message.
    Message {
        /// Its number, for `/reply`, `/react`, `/edit` and `/delete`.
        number: usize,
        /// How the session names it.
        message: MessageRef,
        /// The message it answers.
        reply: Option<Quote>,
        /// Its author changed it.
        edited: bool,
        /// Its author deleted it (the text is gone).
        deleted: bool,
        /// Reactions, per emoji.
        reactions: Vec<ReactionCount>,
        /// Sender's name (cleaned).
        author: String,
        /// Sender's fingerprint.
        fingerprint: String,
        /// Server time (local time of typing until an own message is acked).
        ts: u64,
        /// The text (untrusted: the view makes it safe).
        text: String,
        /// Whether it is this person's own.
        own: bool,
        /// For own messages, the send id and status.
        status: Option<(SendId, Status)>,
        /// Sent to this member only.
        direct: bool,
    },
    /// A system alert: presence, files, warnings.
    Alert {
        /// The text.
        text: String,
        /// Warnings stand out.
        warning: bool,
        /// When.
        ts: u64,
    },
}

/// The connection as the status line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Joined.
    Online,
    /// Lost; reconnecting.
    Reconnecting(String),
    /// The session ended.
    Closed(String),
}

/// Everything the screen shows.
#[derive(Debug)]
pub struct Model {
    /// This person.
    pub me: Member,
    /// The connection.
    pub connection: Connection,
    /// The others present, in join order.
    pub members: Vec<Member>,
    /// Those of them whose connection dropped and who are reconnecting.
    pub away: HashSet<MemberId>,
    /// The timeline, oldest first.
    pub timeline: VecDeque<Entry>,
    /// Received files in memory.
    pub files: KeptFiles,
    /// Texts by number.
    pub messages: Messages,
    /// The server's limits, once joined.
    pub limits: Option<Limits>,
    /// The input line.
    pub input: String,
    /// Cursor position in `input`, in characters.
    pub cursor: usize,
    /// Lines scrolled up from the bottom of the timeline.
    pub scroll: usize,
    /// Who is typing, and until when (local ms).
    pub typing: HashMap<MemberId, (String, u64)>,
    /// Own files on their way: send id → (name, sent chunks, chunks).
    pub uploads: HashMap<SendId, (String, u32, u32)>,
    /// When typing news was last sent (local ms).
    pub last_typing_sent: u64,
    /// Set once the person asked to quit.
    pub quitting: bool,
}

/// Everything that can happen.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One at a time, never stored.
pub enum Msg {
    /// A key was pressed.
    Key(KeyEvent),
    /// Text was pasted.
    Paste(String),
    /// The session reported something (boxed: events are large, keys are small).
    Session(Box<SessionEvent>),
    /// A text was queued for sending with this id.
    TextQueued {
        /// The id.
        id: SendId,
        /// How the session names it.
        message: MessageRef,
        /// The number of the text it answers, for a reply.
        reply_to: Option<usize>,
        /// The text.
        text: String,
        /// Local time it was typed.
        at: u64,
    },
    /// This person's reaction on text `number` was put on or taken back.
    Reacted {
        /// The text's number.
        number: usize,
        /// Its reactions now.
        reactions: Vec<ReactionCount>,
    },
    /// This person edited (`Some(new text)`) or deleted (`None`) their text `number`.
    Changed {
        /// The text's number.
        number: usize,
        /// The new text, or `None` when deleted.
        text: Option<String>,
    },
    /// A file was read and queued for sending.
    FileQueued {
        /// The id.
        id: SendId,
        /// Its name.
        name: String,
        /// Its size.
        size: u64,
    },
    /// A received file was saved.
    Saved {
        /// Its number.
        number: usize,
        /// Where.
        path: String,
    },
    /// An effect failed; shown as a warning.
    Failed(String),
    /// An effect's news; shown as an alert.
    Info(String),
    /// Time passed (typing indicators expire).
    Tick,
}

impl From<SessionEvent> for Msg {
    fn from(event: SessionEvent) -> Self {
        Msg::Session(Box::new(event))
    }
}

/// What the runtime should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Queue a text.
    SendText(String),
    /// Queue a reply to text `number`.
    Reply {
        /// The text answered.
        number: usize,
        /// How the session names it.
        to: MessageRef,
        /// Its text, for the quote.
        quote: String,
        /// The reply.
        text: String,
    },
    /// Put a reaction on text `number`, or take it back.
    React {
        /// The text.
        number: usize,
        /// How the session names it.
        to: MessageRef,
        /// The emoji.
        emoji: String,
    },
    /// Edit (`Some`) or delete (`None`) this person's text `number`.
    Change {
        /// The text.
        number: usize,
        /// How the session names it.
        to: MessageRef,
        /// The new text, or `None` to delete it.
        text: Option<String>,
    },
    /// Read a file and queue it.
    SendFile(String),
    /// Save received file `number` to `path`.
    Save {
        /// Its number.
        number: usize,
        /// Where.
        path: String,
    },
    /// Let a knocking member in (v2 knock rooms).
    LetIn(streamchat_client::session::Member),
    /// Tell the others this person is typing.
    Typing,
    /// Leave and exit.
    Quit,
}

impl Model {
    /// A fresh model for `me`.
    pub fn new(me: Member) -> Self {
        Self {
            me,
            connection: Connection::Online,
            members: Vec::new(),
            away: HashSet::new(),
            timeline: VecDeque::new(),
            files: KeptFiles::default(),
            messages: Messages::default(),
            limits: None,
            input: String::new(),
            cursor: 0,
            scroll: 0,
            typing: HashMap::new(),
            uploads: HashMap::new(),
            last_typing_sent: 0,
            quitting: false,
        }
    }

    fn push(&mut self, entry: Entry) {
        self.timeline.push_back(entry);
        if self.timeline.len() > MAX_TIMELINE {
            self.timeline.pop_front();
        }
    }

    fn alert(&mut self, text: impl Into<String>, ts: u64) {
        self.push(Entry::Alert {
            text: text.into(),
            warning: false,
            ts,
        });
    }

    fn warning(&mut self, text: impl Into<String>, ts: u64) {
        self.push(Entry::Alert {
            text: text.into(),
            warning: true,
            ts,
        });
    }

    /// The timeline entry of text `message`, if still shown.
    fn message_mut(&mut self, message: &MessageRef) -> Option<&mut Entry> {
        self.timeline
            .iter_mut()
            .rev()
            .find(|e| matches!(e, Entry::Message { message: m, .. } if m == message))
    }

    /// Adds a text to the timeline, numbered.
    fn push_message(
        &mut self,
        from: &Member,
        message: MessageRef,
        text: String,
        reply: Option<Quote>,
    ) -> usize {
        let own = from.is_self;
        let number = self.messages.add(message, &from.name, &text, own);
        self.push(Entry::Message {
            number,
            message,
            reply,
            edited: false,
            deleted: false,
            reactions: Vec::new(),
            author: from.name.clone(),
            fingerprint: from.fingerprint.clone(),
            ts: 0,
            text,
            own,
            status: None,
            direct: false,
        });
        number
    }

    /// What a reply answers, as shown above it.
    fn quote(&self, reply: &ReplyTo) -> Quote {
        match self.messages.find(&reply.to) {
            Some(kept) => Quote {
                message: reply.to,
                number: Some(kept.number),
                author: Some(kept.author.clone()),
                text: kept.text.clone(),
                deleted: kept.deleted,
            },
            None => Quote {
                message: reply.to,
                number: None,
                author: None,
                text: reply.quote.clone().unwrap_or_default(),
                deleted: false,
            },
        }
    }

    /// Applies an edit (`Some`) or a deletion (`None`) of text `message`.
    fn change(&mut self, message: &MessageRef, new_text: Option<String>) {
        if let Some(kept) = self.messages.find_mut(message) {
            match &new_text {
                Some(text) => kept.text.clone_from(text),
                None => {
                    kept.deleted = true;
                    kept.text.clear();
                }
            }
        }
        // Replies quoting it show it as it is now.
        for entry in &mut self.timeline {
            if let Entry::Message {
                reply: Some(quote), ..
            } = entry
                && quote.message == *message
                && !quote.deleted
            {
                match &new_text {
                    Some(text) => quote.text.clone_from(text),
                    None => {
                        quote.deleted = true;
                        quote.text.clear();
                    }
                }
            }
        }
        if let Some(Entry::Message {
            text,
            edited,
            deleted,
            reactions,
            ..
        }) = self.message_mut(message)
        {
            match new_text {
                Some(new_text) => {
                    *text = new_text;
                    *edited = true;
                }
                None => {
                    text.clear();
                    *deleted = true;
                    reactions.clear();
                }
            }
        }
    }

    fn set_reactions(&mut self, message: &MessageRef, counts: Vec<ReactionCount>) {
        if let Some(Entry::Message { reactions, .. }) = self.message_mut(message) {
            *reactions = counts;
        }
    }

    fn set_status(&mut self, id: SendId, status: Status, ts: Option<u64>) {
        for entry in self.timeline.iter_mut().rev() {
            if let Entry::Message {
                status: Some((sid, s)),
                ts: entry_ts,
                ..
            } = entry
                && *sid == id
            {
                *s = status;
                if let Some(ts) = ts {
                    *entry_ts = ts;
                }
                return;
            }
        }
    }

    /// "Bob is typing…", "Bob and Carol are typing…", "3 people are typing…", or "".
    pub fn typing_text(&self, now: u64) -> String {
        let mut names: Vec<&str> = self
            .typing
            .values()
            .filter(|(_, until)| *until > now)
            .map(|(name, _)| name.as_str())
            .collect();
        names.sort_unstable();
        match names.as_slice() {
            [] => String::new(),
            [one] => format!("{one} is typing…"),
            [a, b] => format!("{a} and {b} are typing…"),
            more => format!("{} people are typing…", more.len()),
        }
    }

    fn who(&mut self, now: u64) {
        let mut lines = vec![format!(
            "Online ({}): {} (you) {}",
            self.members.len() + 1,
            self.me.name,
            self.me.fingerprint
        )];
        for m in &self.members {
            lines.push(format!("  {} {}", m.name, m.fingerprint));
        }
        lines.push("Compare fingerprints out of band: if they match, messages marked with them really come from those people.".to_owned());
        for line in lines {
            self.alert(line, now);
        }
    }
}

/// The next model and what to do, for one message. `now` is local Unix ms.
pub fn update(model: &mut Model, msg: Msg, now: u64) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => on_key(model, key, now),
        Msg::Paste(text) => {
            for c in text.chars().filter(|c| *c != '\r') {
                insert(model, if c == '\n' { ' ' } else { c });
            }
            Vec::new()
        }
        Msg::Session(event) => {
            on_session(model, *event, now);
            Vec::new()
        }
        Msg::TextQueued {
            id,
            message,
            reply_to,
            text,
            at,
        } => {
            model.scroll = 0;
            let reply = reply_to
                .and_then(|n| model.messages.get(n).map(|m| m.message))
                .map(|to| model.quote(&ReplyTo { to, quote: None }));
            let me = model.me.clone();
            model.push_message(&me, message, text, reply);
            if let Some(Entry::Message { ts, status, .. }) = model.timeline.back_mut() {
                *ts = at;
                *status = Some((id, Status::Sending));
            }
            Vec::new()
        }
        Msg::Reacted { number, reactions } => {
            if let Some(message) = model.messages.get(number).map(|m| m.message) {
                model.set_reactions(&message, reactions);
            }
            Vec::new()
        }
        Msg::Changed { number, text } => {
            if let Some(message) = model.messages.get(number).map(|m| m.message) {
                model.change(&message, text);
            }
            Vec::new()
        }
        Msg::FileQueued { id, name, size } => {
            model.alert(
                format!("Sending {} ({})…", safe_line(&name), byte_size(size)),
                now,
            );
            model.uploads.insert(id, (name, 0, 0));
            Vec::new()
        }
        Msg::Saved { number, path } => {
            model.alert(format!("Saved file {number} to {}", safe_line(&path)), now);
            Vec::new()
        }
        Msg::Failed(message) => {
            model.warning(message, now);
            Vec::new()
        }
        Msg::Info(message) => {
            model.alert(message, now);
            Vec::new()
        }
        Msg::Tick => {
            model.typing.retain(|_, (_, until)| *until > now);
            Vec::new()
        }
    }
}

fn insert(model: &mut Model, c: char) {
    let at = byte_index(&model.input, model.cursor);
    model.input.insert(at, c);
    model.cursor += 1;
}

fn byte_index(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(i, _)| i)
}

fn on_key(model: &mut Model, key: KeyEvent, now: u64) -> Vec<Effect> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c' | 'd') if ctrl => {
            model.quitting = true;
            vec![Effect::Quit]
        }
        KeyCode::Char('u') if ctrl => {
            model.input.clear();
            model.cursor = 0;
            Vec::new()
        }
        KeyCode::Char(c) if !ctrl => {
            insert(model, c);
            if now.saturating_sub(model.last_typing_sent) >= TYPING_SEND_INTERVAL_MS
                && !model.input.starts_with('/')
            {
                model.last_typing_sent = now;
                return vec![Effect::Typing];
            }
            Vec::new()
        }
        KeyCode::Backspace if model.cursor > 0 => {
            model.cursor -= 1;
            let at = byte_index(&model.input, model.cursor);
            model.input.remove(at);
            Vec::new()
        }
        KeyCode::Delete if model.cursor < model.input.chars().count() => {
            let at = byte_index(&model.input, model.cursor);
            model.input.remove(at);
            Vec::new()
        }
        KeyCode::Left => {
            model.cursor = model.cursor.saturating_sub(1);
            Vec::new()
        }
        KeyCode::Right => {
            model.cursor = (model.cursor + 1).min(model.input.chars().count());
            Vec::new()
        }
        KeyCode::Home => {
            model.cursor = 0;
            Vec::new()
        }
        KeyCode::End => {
            model.cursor = model.input.chars().count();
            Vec::new()
        }
        KeyCode::Esc => {
            model.input.clear();
            model.cursor = 0;
            Vec::new()
        }
        KeyCode::PageUp | KeyCode::Up => {
            let step = if key.code == KeyCode::Up { 1 } else { 10 };
            model.scroll = model.scroll.saturating_add(step);
            Vec::new()
        }
        KeyCode::PageDown | KeyCode::Down => {
            let step = if key.code == KeyCode::Down { 1 } else { 10 };
            model.scroll = model.scroll.saturating_sub(step);
            Vec::new()
        }
        KeyCode::Enter => submit(model, now),
        _ => Vec::new(),
    }
}

fn submit(model: &mut Model, now: u64) -> Vec<Effect> {
    let line = std::mem::take(&mut model.input);
    model.cursor = 0;
    model.last_typing_sent = 0;
    match command::parse(&line) {
        Err(message) => {
            model.warning(message, now);
            Vec::new()
        }
        Ok(Input::Nothing) => Vec::new(),
        Ok(Input::Text(text)) => vec![Effect::SendText(text)],
        Ok(Input::Reply { number, text }) => match model.messages.target(number) {
            Ok(m) => vec![Effect::Reply {
                number,
                to: m.message,
                quote: m.text.clone(),
                text,
            }],
            Err(e) => {
                model.warning(e, now);
                Vec::new()
            }
        },
        Ok(Input::React { number, emoji }) => match model.messages.target(number) {
            Ok(m) => vec![Effect::React {
                number,
                to: m.message,
                emoji,
            }],
            Err(e) => {
                model.warning(e, now);
                Vec::new()
            }
        },
        Ok(Input::Edit { number, text }) => change(model, number, Some(text), now),
        Ok(Input::Delete { number }) => change(model, number, None, now),
        Ok(Input::Send(path)) => vec![Effect::SendFile(path)],
        Ok(Input::Save { number, path }) => vec![Effect::Save { number, path }],
        Ok(Input::Who) => {
            model.who(now);
            Vec::new()
        }
        Ok(Input::LetIn(who)) => match find_member(&model.members, &who) {
            Ok(member) => vec![Effect::LetIn(member.clone())],
            Err(e) => {
                model.warning(e, now);
                Vec::new()
            }
        },
        Ok(Input::Help) => {
            model.alert(
                format!("Commands: {COMMANDS_HELP}. Enter sends; PgUp/PgDn scroll; Ctrl-C quits."),
                now,
            );
            Vec::new()
        }
        Ok(Input::Quit) => {
            model.quitting = true;
            vec![Effect::Quit]
        }
    }
}

fn change(model: &mut Model, number: usize, text: Option<String>, now: u64) -> Vec<Effect> {
    match model.messages.own_target(number) {
        Ok(m) => vec![Effect::Change {
            number,
            to: m.message,
            text,
        }],
        Err(e) => {
            model.warning(e, now);
            Vec::new()
        }
    }
}

fn file_line(from: &Member, file: &FileInfo) -> String {
    format!(
        "{} shared {} ({}, {})",
        from.name,
        safe_line(&file.name),
        file.mime,
        byte_size(file.size)
    )
}

fn on_session(model: &mut Model, event: SessionEvent, now: u64) {
    match event {
        SessionEvent::Ready {
            me,
            members,
            limits,
            rejoin,
        } => {
            model.me = me;
            model.members = members;
            model.away.clear();
            model.limits = Some(limits);
            model.connection = Connection::Online;
            let alert = if rejoin {
                PresenceAlert::YouRejoined
            } else {
                PresenceAlert::YouJoined
            };
            model.alert(
                presence_alert_text(&alert, &at_time(model.me.joined_at)),
                model.me.joined_at,
            );
            if !rejoin {
                model.alert(
                    "Messages and files are end-to-end encrypted: the server sees neither them nor your name. Compare fingerprints (/who) to know who you are talking to.",
                    now,
                );
            }
        }
        SessionEvent::MemberJoined { member, returning } => {
            let alert = if returning {
                PresenceAlert::Rejoined { name: &member.name }
            } else {
                PresenceAlert::Joined { name: &member.name }
            };
            let text = presence_alert_text(&alert, &at_time(member.joined_at));
            model.alert(text, member.joined_at);
            model.members.retain(|m| m.member != member.member);
            model.members.push(member);
        }
        // Nothing in the timeline: the member list marks them while they reconnect.
        SessionEvent::MemberAway { member } => {
            model.away.insert(member.member);
        }
        SessionEvent::MemberBack { member } => {
            model.away.remove(&member.member);
        }
        SessionEvent::MemberLeft { member, at, reason } => {
            let text = presence_alert_text(
                &PresenceAlert::Left {
                    name: &member.name,
                    reason,
                },
                &at_time(at),
            );
            debug_assert!(text.ends_with(leave_reason_suffix(reason)));
            model.alert(text, at);
            model.members.retain(|m| m.member != member.member);
            model.away.remove(&member.member);
            model.typing.remove(&member.member);
        }
        SessionEvent::Message {
            from,
            message,
            reply_to,
            ts,
            text,
            direct,
            ..
        } => {
            model.typing.remove(&from.member);
            let reply = reply_to.map(|reply| model.quote(&reply));
            model.push_message(&from, message, text, reply);
            if let Some(Entry::Message {
                ts: entry_ts,
                direct: entry_direct,
                ..
            }) = model.timeline.back_mut()
            {
                *entry_ts = ts;
                *entry_direct = direct;
            }
        }
        SessionEvent::Edited { message, text, .. } => model.change(&message, Some(text)),
        SessionEvent::Deleted { message, .. } => model.change(&message, None),
        SessionEvent::Reacted {
            message, reactions, ..
        } => model.set_reactions(&message, reactions),
        SessionEvent::Typing { from } => {
            model
                .typing
                .insert(from.member.clone(), (from.name, now + TYPING_SHOW_MS));
        }
        SessionEvent::FileOffered { from, file, .. } => {
            model.typing.remove(&from.member);
            model.alert(format!("{}; receiving…", file_line(&from, &file)), now);
        }
        SessionEvent::FileReceived {
            from,
            ts,
            file,
            data,
        } => {
            let line = file_line(&from, &file);
            let (number, dropped) = model.files.keep(file, data);
            model.alert(
                format!(
                    "[file {number}] {line}: received and verified. /save {number} PATH to keep it."
                ),
                ts,
            );
            if !dropped.is_empty() {
                model.warning(
                    format!("Files {dropped:?} were dropped from memory to make room."),
                    now,
                );
            }
        }
        SessionEvent::FileFailed { from, file, reason } => {
            model.warning(format!("{} failed: {reason}", file_line(&from, &file)), now);
        }
        SessionEvent::Sent { id, ts } => model.set_status(id, Status::Sent, Some(ts)),
        SessionEvent::FileProgress { id, sent, chunks } => {
            if let Some(upload) = model.uploads.get_mut(&id) {
                upload.1 = sent;
                upload.2 = chunks;
            }
        }
        SessionEvent::FileSent { id, file, ts } => {
            model.uploads.remove(&id);
            model.alert(
                format!(
                    "You shared {} ({}).",
                    safe_line(&file.name),
                    byte_size(file.size)
                ),
                ts,
            );
        }
        SessionEvent::SendFailed { id, reason } => {
            if let Some((name, ..)) = model.uploads.remove(&id) {
                model.warning(format!("{} was not sent: {reason}", safe_line(&name)), now);
            } else {
                model.set_status(id, Status::Failed(reason), None);
            }
        }
        SessionEvent::Warning { message } => model.warning(message, now),
        SessionEvent::Waiting { knock_room } => model.alert(waiting_text(knock_room), now),
        SessionEvent::LetIn { .. } => {
            model.alert("You are in: the room's keys are yours too.", now)
        }
        SessionEvent::Knock { member } => model.warning(knock_text(&member), now),
        SessionEvent::KeysChanged {
            by, added, removed, ..
        } => model.alert(keys_changed_text(&by, &added, &removed), now),
        SessionEvent::KeysLost { message } => model.warning(message, now),
        SessionEvent::Notice { message, .. } => model.warning(message, now),
        SessionEvent::Disconnected { reason } => {
            model.warning(format!("Connection lost ({reason}); reconnecting…"), now);
            model.connection = Connection::Reconnecting(reason);
            model.typing.clear();
        }
        SessionEvent::Resumed { offline_for, .. } => {
            model.connection = Connection::Online;
            model.alert(resumed_text(offline_for), now);
        }
        SessionEvent::Gap {
            messages,
            exact,
            offline_for,
        } => model.warning(gap_text(messages, exact, offline_for), now),
        SessionEvent::Closed { reason } => {
            model.connection = Connection::Closed(reason.clone());
            model.warning(format!("The session ended: {reason}. /quit to exit."), now);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use streamchat_crypto::IdentityKey;

    pub(crate) fn member(name: &str, id: &str, seed: u8, is_self: bool) -> Member {
        let key = IdentityKey::from_seed(&[seed; 32]).public_key();
        Member {
            member: MemberId::new(id).unwrap(),
            name: name.into(),
            fingerprint: key.fingerprint().to_string(),
            key,
            joined_at: 1_795_962_645_000,
            is_self,
        }
    }

    fn key(code: KeyCode) -> Msg {
        Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_line(model: &mut Model, line: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        for c in line.chars() {
            effects.extend(update(model, key(KeyCode::Char(c)), 10_000));
        }
        effects.extend(update(model, key(KeyCode::Enter), 10_000));
        effects
    }

    #[test]
    fn typing_a_line_sends_it_and_commands_become_effects() {
        let mut model = Model::new(member("Alice", "a", 1, true));
        let effects = type_line(&mut model, "hello");
        assert_eq!(
            effects,
            vec![Effect::Typing, Effect::SendText("hello".into())]
        );
        assert!(model.input.is_empty());
        assert_eq!(
            type_line(&mut model, "/send ~/cat.png"),
            vec![Effect::SendFile("~/cat.png".into())]
        );
        assert_eq!(
            type_line(&mut model, "/save 3 /tmp"),
            vec![Effect::Save {
                number: 3,
                path: "/tmp".into()
            }]
        );
        assert_eq!(type_line(&mut model, "/quit"), vec![Effect::Quit]);
        assert!(model.quitting);
        assert!(type_line(&mut model, "/nope").is_empty());
        assert!(matches!(
            model.timeline.back(),
            Some(Entry::Alert { warning: true, .. })
        ));
    }

    #[test]
    fn a_knock_is_shown_and_letin_finds_the_knocker_by_name_or_fingerprint() {
        let mut model = Model::new(member("Alice", "a", 1, true));
        let bob = member("Bob", "b", 2, false);
        let other_bob = member("bob", "c", 3, false);
        update(
            &mut model,
            SessionEvent::MemberJoined {
                member: bob.clone(),
                returning: false,
            }
            .into(),
            0,
        );
        update(
            &mut model,
            SessionEvent::Knock {
                member: bob.clone(),
            }
            .into(),
            0,
        );
        let Some(Entry::Alert { text, warning, .. }) = model.timeline.back() else {
            panic!("the knock is in the timeline");
        };
        assert!(*warning);
        assert!(
            text.contains(&bob.fingerprint) && text.contains("/letin Bob"),
            "{text}"
        );
        assert_eq!(
            type_line(&mut model, "/letin bob"),
            vec![Effect::LetIn(bob.clone())]
        );
        // Two people answer to the name: the start of a fingerprint tells them apart.
        update(
            &mut model,
            SessionEvent::MemberJoined {
                member: other_bob.clone(),
                returning: false,
            }
            .into(),
            0,
        );
        assert!(type_line(&mut model, "/letin Bob").is_empty());
        let start: String = bob.fingerprint.chars().take(9).collect();
        assert_eq!(
            type_line(&mut model, &format!("/letin {start}")),
            vec![Effect::LetIn(bob)]
        );
    }

    #[test]
    fn own_messages_move_from_sending_to_sent_with_the_server_time() {
        let mut model = Model::new(member("Alice", "a", 1, true));
        update(
            &mut model,
            Msg::TextQueued {
                id: 7,
                message: MessageRef {
                    key: member("Alice", "a", 1, true).key,
                    sent_at: 5,
                },
                reply_to: None,
                text: "hi".into(),
                at: 5,
            },
            5,
        );
        update(
            &mut model,
            Msg::from(SessionEvent::Sent { id: 7, ts: 9 }),
            6,
        );
        match model.timeline.back() {
            Some(Entry::Message {
                status, ts, own, ..
            }) => {
                assert_eq!(status, &Some((7, Status::Sent)));
                assert_eq!(*ts, 9);
                assert!(own);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Alice's model once Bob has joined, and Bob.
    fn alice_sees_bob_join() -> (Model, Member) {
        let mut model = Model::new(member("Alice", "a", 1, true));
        let bob = member("Bob", "b", 2, false);
        update(
            &mut model,
            Msg::from(SessionEvent::MemberJoined {
                member: bob.clone(),
                returning: false,
            }),
            0,
        );
        (model, bob)
    }

    #[test]
    fn presence_and_typing() {
        let (mut model, bob) = alice_sees_bob_join();
        assert_eq!(model.members.len(), 1);
        match model.timeline.back() {
            Some(Entry::Alert { text, .. }) => {
                assert!(text.starts_with("Bob joined the chat at "), "{text}");
                assert!(text.contains(" on 2026-11-"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        update(
            &mut model,
            Msg::from(SessionEvent::Typing { from: bob.clone() }),
            1000,
        );
        assert_eq!(model.typing_text(2000), "Bob is typing…");
        assert_eq!(model.typing_text(1000 + TYPING_SHOW_MS), "");
        update(
            &mut model,
            Msg::from(SessionEvent::MemberLeft {
                member: bob,
                at: 1_795_962_645_000,
                reason: streamchat_protocol::LeaveReason::Timeout,
            }),
            0,
        );
        assert!(model.members.is_empty());
        match model.timeline.back() {
            Some(Entry::Alert { text, .. }) => assert!(text.ends_with("(timed out)"), "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reconnections_mark_members_and_gaps_are_plain_lines() {
        let (mut model, bob) = alice_sees_bob_join();
        let lines = model.timeline.len();
        update(
            &mut model,
            Msg::from(SessionEvent::MemberAway {
                member: bob.clone(),
            }),
            0,
        );
        assert!(model.away.contains(&bob.member));
        update(
            &mut model,
            Msg::from(SessionEvent::MemberBack {
                member: bob.clone(),
            }),
            0,
        );
        assert!(model.away.is_empty());
        assert_eq!(model.timeline.len(), lines, "nothing in the timeline");

        update(
            &mut model,
            Msg::from(SessionEvent::Disconnected {
                reason: "the connection was lost".into(),
            }),
            0,
        );
        assert!(matches!(model.connection, Connection::Reconnecting(_)));
        update(
            &mut model,
            Msg::from(SessionEvent::Resumed {
                offline_for: std::time::Duration::from_secs(4),
                replayed: 2,
            }),
            0,
        );
        assert_eq!(model.connection, Connection::Online);
        update(
            &mut model,
            Msg::from(SessionEvent::Gap {
                messages: 41,
                exact: true,
                offline_for: std::time::Duration::from_secs(180),
            }),
            0,
        );
        match model.timeline.back() {
            Some(Entry::Alert { text, warning, .. }) => {
                assert!(warning);
                assert_eq!(
                    text,
                    "You were offline for 3 minutes: 41 messages could not be recovered."
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn editing_keys() {
        let mut model = Model::new(member("Alice", "a", 1, true));
        for c in "héllo".chars() {
            update(&mut model, key(KeyCode::Char(c)), 0);
        }
        update(&mut model, key(KeyCode::Left), 0);
        update(&mut model, key(KeyCode::Backspace), 0);
        assert_eq!(model.input, "hélo");
        update(&mut model, key(KeyCode::Home), 0);
        update(&mut model, key(KeyCode::Delete), 0);
        assert_eq!(model.input, "élo");
        update(&mut model, Msg::Paste("a\nb".into()), 0);
        assert_eq!(model.input, "a bélo");
    }

    /// Bob says `text` (sent at `sent_at`), replying to message number `reply_to`.
    pub(crate) fn bob_says(
        model: &mut Model,
        bob: &Member,
        sent_at: u64,
        text: &str,
        reply_to: Option<usize>,
    ) {
        let reply_to = reply_to.map(|n| {
            Box::new(ReplyTo {
                to: model.messages.get(n).unwrap().message,
                quote: Some("what Bob quoted".into()),
            })
        });
        update(
            model,
            Msg::from(SessionEvent::Message {
                from: bob.clone(),
                message: MessageRef {
                    key: bob.key,
                    sent_at,
                },
                reply_to,
                ts: 1_795_962_645_000,
                sent_at,
                text: text.into(),
                direct: false,
            }),
            0,
        );
    }

    /// Alice asked "are you there?" (#1), Bob reacted 👍 and Alice edited it.
    pub(crate) fn conversation() -> (Model, Member) {
        let (mut model, bob) = alice_sees_bob_join();
        let mine = MessageRef {
            key: model.me.key,
            sent_at: 1,
        };
        update(
            &mut model,
            Msg::TextQueued {
                id: 1,
                message: mine,
                reply_to: None,
                text: "are you their?".into(),
                at: 1,
            },
            1,
        );
        update(
            &mut model,
            Msg::from(SessionEvent::Reacted {
                from: bob.clone(),
                message: mine,
                emoji: "👍".into(),
                add: true,
                reactions: vec![ReactionCount {
                    emoji: "👍".into(),
                    count: 1,
                    names: vec!["Bob".into()],
                    mine: false,
                }],
            }),
            2,
        );
        update(
            &mut model,
            Msg::Changed {
                number: 1,
                text: Some("are you there?".into()),
            },
            3,
        );
        (model, bob)
    }

    #[test]
    fn commands_name_messages_by_number_and_only_own_ones_change() {
        let (mut model, bob) = conversation();
        bob_says(&mut model, &bob, 9, "yes", Some(1));
        let mine = model.messages.get(1).unwrap().message;
        let bobs = model.messages.get(2).unwrap().message;
        match model.timeline.back() {
            Some(Entry::Message { number, reply, .. }) => {
                assert_eq!(*number, 2);
                let reply = reply.as_ref().unwrap();
                assert_eq!(reply.number, Some(1));
                assert_eq!(
                    reply.text, "are you there?",
                    "the text as it is now, not Bob's quote"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            type_line(&mut model, "/reply 2 great"),
            vec![Effect::Reply {
                number: 2,
                to: bobs,
                quote: "yes".into(),
                text: "great".into()
            }]
        );
        assert_eq!(
            type_line(&mut model, "/react 2 🎉"),
            vec![Effect::React {
                number: 2,
                to: bobs,
                emoji: "🎉".into()
            }]
        );
        assert_eq!(
            type_line(&mut model, "/edit 1 hello?"),
            vec![Effect::Change {
                number: 1,
                to: mine,
                text: Some("hello?".into())
            }]
        );
        assert_eq!(
            type_line(&mut model, "/delete 1"),
            vec![Effect::Change {
                number: 1,
                to: mine,
                text: None
            }]
        );
        // Bob's message is not Alice's to change; an unknown number is said so.
        assert!(type_line(&mut model, "/edit 2 mine now").is_empty());
        assert!(
            matches!(model.timeline.back(), Some(Entry::Alert { text, warning: true, .. }) if text.contains("only your own"))
        );
        assert!(type_line(&mut model, "/delete 2").is_empty());
        assert!(type_line(&mut model, "/react 7 👍").is_empty());
        assert!(
            matches!(model.timeline.back(), Some(Entry::Alert { text, .. }) if text.contains("no message number 7"))
        );
        // A reply to a message unknown here shows the quote it carries.
        bob_says(&mut model, &bob, 10, "old news", None);
        update(
            &mut model,
            Msg::from(SessionEvent::Message {
                from: bob.clone(),
                message: MessageRef {
                    key: bob.key,
                    sent_at: 11,
                },
                reply_to: Some(Box::new(ReplyTo {
                    to: MessageRef {
                        key: bob.key,
                        sent_at: 0,
                    },
                    quote: Some("before you came".into()),
                })),
                ts: 1,
                sent_at: 11,
                text: "as I said".into(),
                direct: false,
            }),
            0,
        );
        match model.timeline.back() {
            Some(Entry::Message {
                reply: Some(quote), ..
            }) => {
                assert_eq!(
                    (quote.number, quote.text.as_str()),
                    (None, "before you came")
                );
            }
            other => panic!("{other:?}"),
        }
        // Bob deletes the message from before Alice came: its quote goes.
        update(
            &mut model,
            Msg::from(SessionEvent::Deleted {
                from: bob.clone(),
                message: MessageRef {
                    key: bob.key,
                    sent_at: 0,
                },
            }),
            0,
        );
        match model.timeline.back() {
            Some(Entry::Message {
                reply: Some(quote), ..
            }) => assert!(quote.deleted && quote.text.is_empty()),
            other => panic!("{other:?}"),
        }
        // Bob deletes his: gone from the timeline, and a reply to it can no longer be made.
        update(
            &mut model,
            Msg::from(SessionEvent::Deleted {
                from: bob.clone(),
                message: bobs,
            }),
            0,
        );
        assert!(type_line(&mut model, "/reply 2 hm").is_empty());
        let deleted = model.timeline.iter().any(|e| matches!(e, Entry::Message { number: 2, deleted: true, text, .. } if text.is_empty()));
        assert!(deleted);
    }
}
