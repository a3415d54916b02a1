//! `streamchat chat <link> --name NAME`: the full-screen terminal UI (ratatui +
//! crossterm), Elm-style: [`model`] holds the state and its `update`, [`view`] draws it,
//! and this module is the runtime that feeds it keys, session events and ticks, runs
//! the effects (send, read a file, save a file, quit) and redraws.
//!
//! Keys are read on a thread of their own (crossterm's reader blocks) and forwarded on
//! a bounded channel; the terminal is restored on every exit path, panics included
//! (`ratatui::init` installs that hook).

pub mod model;
pub mod view;

use super::ChatError;
use super::files;
use model::{Effect, Model, Msg, update};
use ratatui::crossterm::event::{self, Event};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use streamchat_client::session::{Session, SessionConfig, SessionEvent, now_ms};
use tokio::sync::mpsc;

/// How long queued sends may take after `/quit`.
const DRAIN: Duration = Duration::from_secs(10);
/// How often the screen is refreshed without input (typing indicators expire).
const TICK: Duration = Duration::from_secs(1);

/// Reads terminal events on a thread until `stop` is set.
fn spawn_input_reader(tx: mpsc::Sender<Msg>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(100)) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => break,
            }
            let msg = match event::read() {
                Ok(Event::Key(key)) => Msg::Key(key),
                Ok(Event::Paste(text)) => Msg::Paste(text),
                Ok(Event::Resize(..)) => Msg::Tick,
                Ok(_) => continue,
                Err(_) => break,
            };
            if tx.blocking_send(msg).is_err() {
                break;
            }
        }
    });
}

/// Runs the terminal UI until the person quits.
pub async fn run(config: SessionConfig) -> Result<(), ChatError> {
    // Join before taking over the screen, so a bad link or a full room is a plain error.
    let (session, mut events) = Session::start(config).await?;
    let mut model = Model::new(session.me().clone());
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(e) => {
            session.leave(Duration::ZERO).await;
            return Err(ChatError::Terminal(e));
        }
    };
    // Pasted text arrives as one event rather than as keys (so a pasted newline does
    // not send half a message); failing to enable it only loses that nicety.
    let _ = ratatui::crossterm::execute!(std::io::stdout(), event::EnableBracketedPaste);
    let stop = Arc::new(AtomicBool::new(false));
    let (input_tx, mut input_rx) = mpsc::channel(256);
    spawn_input_reader(input_tx, stop.clone());
    let mut tick = tokio::time::interval(TICK);
    let mut session_open = true;
    let result = loop {
        let msg = tokio::select! {
            Some(msg) = input_rx.recv() => msg,
            event = events.recv(), if session_open => match event {
                Some(event) => Msg::from(event),
                None => {
                    session_open = false;
                    Msg::from(SessionEvent::Closed { reason: "the session ended".to_owned() })
                }
            },
            _ = tick.tick() => Msg::Tick,
        };
        let effects = update(&mut model, msg, now_ms());
        let mut quit = false;
        for effect in effects {
            match effect {
                Effect::Quit => quit = true,
                other => {
                    // Applied before the session's events are read again: the entry a
                    // send's outcome (`Sent`, `SendFailed`, file progress) refers to must
                    // be in the model before that outcome can be handled.
                    if let Some(msg) = run_effect(other, &session, &model).await {
                        update(&mut model, msg, now_ms());
                    }
                }
            }
        }
        if quit {
            break Ok(());
        }
        if let Err(e) = terminal.draw(|frame| view::view(&model, frame, now_ms())) {
            break Err(ChatError::Terminal(e));
        }
    };
    stop.store(true, Ordering::Relaxed);
    let _ = ratatui::crossterm::execute!(std::io::stdout(), event::DisableBracketedPaste);
    ratatui::restore();
    // Events of the queued sends are no longer shown; dropping the receiver lets the
    // session finish without waiting for a reader.
    drop(events);
    session.leave(DRAIN).await;
    result
}

/// Runs one effect and returns what it came to, for the caller to apply at once. That
/// must happen before the session's events are read again: the session may report a
/// send's outcome (`Sent`, `SendFailed`, file progress) as soon as the send is queued,
/// and an outcome handled before the entry it refers to exists is lost (the message
/// then shows "sending…" for good).
async fn run_effect(effect: Effect, session: &Session, model: &Model) -> Option<Msg> {
    match effect {
        Effect::SendText(text) => Some(queue_text(session, text, None).await),
        Effect::Reply {
            number,
            to,
            quote,
            text,
        } => Some(queue_text(session, text, Some((number, to, &quote))).await),
        Effect::React { number, to, emoji } => Some(match session.react(to, &emoji).await {
            Ok(reacted) => Msg::Reacted {
                number,
                reactions: reacted.reactions,
            },
            Err(e) => Msg::Failed(format!("No reaction: {e}")),
        }),
        Effect::Change { number, to, text } => {
            let result = match &text {
                Some(text) => session.edit(to, text.clone()).await,
                None => session.delete(to).await,
            };
            Some(match result {
                Ok(_) => Msg::Changed { number, text },
                Err(e) => Msg::Failed(format!("Not changed: {e}")),
            })
        }
        Effect::SendFile(path) => {
            let max = model.limits.map_or(u64::MAX, |l| l.max_file_bytes);
            Some(match files::read_for_sending(&path, max).await {
                Err(e) => Msg::Failed(format!("Cannot send: {e}")),
                Ok((name, mime, data)) => {
                    let size = data.len() as u64;
                    match session.send_file(name.clone(), mime, data).await {
                        Ok(id) => Msg::FileQueued { id, name, size },
                        Err(e) => Msg::Failed(format!("Cannot send: {e}")),
                    }
                }
            })
        }
        Effect::Save { number, path } => Some(match model.files.get(number) {
            None => Msg::Failed(files::LocalFileError::NoSuchFile(number).to_string()),
            Some(file) => {
                let file = file.clone();
                let saved = tokio::task::spawn_blocking(move || files::save(&file, &path)).await;
                match saved {
                    Ok(Ok(written)) => Msg::Saved {
                        number,
                        path: written.display().to_string(),
                    },
                    Ok(Err(e)) => Msg::Failed(format!("Not saved: {e}")),
                    Err(e) => Msg::Failed(format!("Not saved: {e}")),
                }
            }
        }),
        Effect::LetIn(member) => Some(match session.let_in(&member.member).await {
            Ok(()) => Msg::Info(format!("Letting {} in…", member.name)),
            Err(e) => Msg::Failed(format!("Not let in: {e}")),
        }),
        Effect::Typing => {
            session.typing();
            None
        }
        Effect::Quit => None,
    }
}

/// Queues a text (a reply to text `number` when `reply` names it).
async fn queue_text(
    session: &Session,
    text: String,
    reply: Option<(usize, streamchat_client::session::MessageRef, &str)>,
) -> Msg {
    let at = now_ms();
    match session
        .queue_text(text.clone(), reply.map(|(_, to, quote)| (to, quote)))
        .await
    {
        Ok(queued) => Msg::TextQueued {
            id: queued.id,
            message: queued.message,
            reply_to: reply.map(|(number, ..)| number),
            text,
            at,
        },
        Err(e) => Msg::Failed(format!("Not sent: {e}")),
    }
}
