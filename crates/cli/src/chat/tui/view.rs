//! Draws the [`Model`]: the encryption status line, the timeline of messages (time and
//! date in the local zone, sender, fingerprint badge) and system alerts, the online
//! list with fingerprints, the typing line and the input line.
//!
//! Text from others goes through [`safe_text`] before it is drawn, and the timeline is
//! wrapped here (not by the widget) so that scrolling counts real screen lines.

use super::model::{Connection, Entry, Model, Quote, Status};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use streamchat_client::display::{local_time_and_date, safe_line, safe_text, short_fingerprint};
use streamchat_client::session::ReactionCount;
use unicode_width::UnicodeWidthChar;

/// Width of the online list.
const MEMBERS_WIDTH: u16 = 30;
/// Characters of an answered message shown above a reply.
const QUOTE_CHARS: usize = 60;

/// Draws the whole screen. `now` is local Unix ms (for the typing line).
pub fn view(model: &Model, frame: &mut Frame<'_>, now: u64) {
    let [status, body, typing, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(3),
    ])
    .areas(frame.area());
    let members_width = if body.width > MEMBERS_WIDTH * 2 {
        MEMBERS_WIDTH
    } else {
        0
    };
    let [timeline, members] =
        Layout::horizontal([Constraint::Min(10), Constraint::Length(members_width)]).areas(body);

    frame.render_widget(Paragraph::new(status_line(model)), status);
    draw_timeline(model, frame, timeline);
    if members_width > 0 {
        draw_members(model, frame, members);
    }
    frame.render_widget(
        Paragraph::new(
            Line::from(activity_text(model, now)).style(Style::new().fg(Color::DarkGray)),
        ),
        typing,
    );
    draw_input(model, frame, input);
}

fn status_line(model: &Model) -> Line<'static> {
    let (label, color) = match &model.connection {
        Connection::Online => ("Connected".to_owned(), Color::Green),
        Connection::Reconnecting(_) => ("Reconnecting…".to_owned(), Color::Yellow),
        Connection::Closed(reason) => (format!("Closed: {reason}"), Color::Red),
    };
    Line::from(vec![
        Span::styled(
            " End-to-end encrypted ",
            Style::new().fg(Color::Black).bg(Color::Green).bold(),
        ),
        Span::raw(" StreamChat · you: "),
        Span::styled(model.me.name.clone(), Style::new().bold()),
        Span::raw(format!(" ({}) · ", model.me.fingerprint)),
        Span::styled(label, Style::new().fg(color).bold()),
        Span::raw(format!(" · {} online", model.members.len() + 1)),
    ])
}

fn activity_text(model: &Model, now: u64) -> String {
    let mut parts = Vec::new();
    let typing = model.typing_text(now);
    if !typing.is_empty() {
        parts.push(safe_line(&typing));
    }
    for (name, sent, chunks) in model.uploads.values() {
        if *chunks > 0 {
            parts.push(format!(
                "Sending {}: {sent}/{chunks} chunks",
                safe_line(name)
            ));
        } else {
            parts.push(format!("Sending {}…", safe_line(name)));
        }
    }
    if model.scroll > 0 {
        parts.push(format!(
            "↑ scrolled {} lines (PgDn to return)",
            model.scroll
        ));
    }
    format!(" {}", parts.join(" · "))
}

/// A piece of styled text before wrapping.
type Segment = (String, Style);

fn entry_segments(entry: &Entry) -> (Vec<Segment>, usize) {
    match entry {
        Entry::Message {
            number,
            reply,
            edited,
            deleted,
            reactions,
            author,
            fingerprint,
            ts,
            text,
            own,
            status,
            direct,
            ..
        } => {
            let (time, date) = local_time_and_date(*ts);
            let author_style = if *own {
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD)
            };
            let dim = Style::new().fg(Color::DarkGray);
            let mut segments = Vec::new();
            segments.extend([
                (format!("#{number} "), dim),
                (format!("{time} · {date} "), dim),
                (
                    if *own {
                        format!("{author} (you)")
                    } else {
                        safe_line(author)
                    },
                    author_style,
                ),
                (
                    format!(" [{}]", short_fingerprint(fingerprint)),
                    Style::new().fg(Color::DarkGray),
                ),
            ]);
            if *direct {
                segments.push((" direct".to_owned(), Style::new().fg(Color::Yellow)));
            }
            match status {
                Some((_, Status::Sending)) => {
                    segments.push((" sending…".to_owned(), Style::new().fg(Color::DarkGray)));
                }
                Some((_, Status::Failed(reason))) => segments.push((
                    format!(" not sent: {}", safe_line(reason)),
                    Style::new().fg(Color::Red),
                )),
                Some((_, Status::Sent)) | None => {}
            }
            segments.push((": ".to_owned(), Style::new()));
            if let Some(quote) = reply {
                segments.push((format!("\n{}\n", quote_line(quote)), dim));
            }
            if *deleted {
                segments.push((
                    "message deleted".to_owned(),
                    dim.add_modifier(Modifier::ITALIC),
                ));
            } else {
                segments.push((safe_text(text), Style::new()));
            }
            if *edited && !*deleted {
                segments.push((" (edited)".to_owned(), dim));
            }
            if !reactions.is_empty() {
                segments.push(("\n".to_owned(), Style::new()));
                segments.push((reactions_line(reactions), Style::new().fg(Color::Yellow)));
            }
            (segments, 4)
        }
        Entry::Alert { text, warning, .. } => {
            let style = if *warning {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new().fg(Color::Blue)
            };
            let marker = if *warning { "! " } else { "* " };
            (vec![(format!("{marker}{}", safe_text(text)), style)], 2)
        }
    }
}

/// "↪ Alice #3: the answered text" (cut to one short line), above a reply.
fn quote_line(quote: &Quote) -> String {
    let text: String = if quote.deleted {
        "message deleted".to_owned()
    } else {
        let line = safe_line(&quote.text);
        let mut cut: String = line.chars().take(QUOTE_CHARS).collect();
        if cut.len() < line.len() {
            cut.push('…');
        }
        cut
    };
    let who = match (&quote.author, quote.number) {
        (Some(author), Some(number)) => format!("{} #{number}", safe_line(author)),
        _ => "an earlier message".to_owned(),
    };
    format!("↪ {who}: {text}")
}

/// "👍 2 (Alice, Bob) · 🎉 1 (Carol)".
fn reactions_line(reactions: &[ReactionCount]) -> String {
    reactions
        .iter()
        .map(|r| {
            let names: Vec<String> = r.names.iter().map(|n| safe_line(n)).collect();
            format!("{} {} ({})", safe_line(&r.emoji), r.count, names.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Wraps segments into lines of at most `width` columns, between words where it can
/// (a word longer than a line is cut); continuation lines (after a wrap or a newline in
/// the text) are indented by `indent`.
fn wrap(segments: Vec<Segment>, width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(indent + 8);
    let mut wrapper = Wrapper {
        width,
        indent,
        lines: Vec::new(),
        current: Vec::new(),
        column: 0,
    };
    for (text, style) in segments {
        for token in tokens(&text) {
            wrapper.push(token, style);
        }
    }
    if !wrapper.current.is_empty() {
        wrapper.lines.push(Line::from(wrapper.current));
    }
    wrapper.lines
}

/// Splits text into newlines and words with their trailing spaces.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in text.char_indices() {
        if c == '\n' {
            if start < i {
                out.push(&text[start..i]);
            }
            out.push("\n");
            start = i + 1;
            in_space = false;
        } else if c == ' ' {
            in_space = true;
        } else if in_space {
            out.push(&text[start..i]);
            start = i;
            in_space = false;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

fn text_width(text: &str) -> usize {
    text.chars()
        .map(|c| UnicodeWidthChar::width(c).unwrap_or(0))
        .sum()
}

struct Wrapper {
    width: usize,
    indent: usize,
    lines: Vec<Line<'static>>,
    current: Vec<Span<'static>>,
    column: usize,
}

impl Wrapper {
    fn new_line(&mut self) {
        self.lines
            .push(Line::from(std::mem::take(&mut self.current)));
        self.current.push(Span::raw(" ".repeat(self.indent)));
        self.column = self.indent;
    }

    fn push(&mut self, token: &str, style: Style) {
        if token == "\n" {
            self.new_line();
            return;
        }
        let word = text_width(token.trim_end_matches(' '));
        let at_line_start = self.column <= self.indent;
        if self.column + word > self.width && !at_line_start && word <= self.width - self.indent {
            self.new_line();
        }
        if self.column + text_width(token) <= self.width {
            self.current.push(Span::styled(token.to_owned(), style));
            self.column += text_width(token);
            return;
        }
        // Too long for what is left of the line: cut it, character by character.
        let mut piece = String::new();
        for c in token.chars() {
            let w = UnicodeWidthChar::width(c).unwrap_or(0);
            if self.column + w > self.width {
                if c == ' ' {
                    continue; // Spaces at a wrap point are dropped.
                }
                if !piece.is_empty() {
                    self.current
                        .push(Span::styled(std::mem::take(&mut piece), style));
                }
                self.new_line();
            }
            piece.push(c);
            self.column += w;
        }
        if !piece.is_empty() {
            self.current.push(Span::styled(piece, style));
        }
    }
}

/// The timeline's screen lines for a width, oldest first.
pub fn timeline_lines(model: &Model, width: usize) -> Vec<Line<'static>> {
    model
        .timeline
        .iter()
        .flat_map(|entry| {
            let (segments, indent) = entry_segments(entry);
            wrap(segments, width, indent)
        })
        .collect()
}

fn draw_timeline(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let block = Block::new().borders(Borders::TOP).title(" Messages ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lines = timeline_lines(model, inner.width as usize);
    let height = inner.height as usize;
    let max_scroll = lines.len().saturating_sub(height);
    let scroll = model.scroll.min(max_scroll);
    let end = lines.len() - scroll;
    let start = end.saturating_sub(height);
    let visible: Vec<Line<'static>> = lines[start..end].to_vec();
    frame.render_widget(Paragraph::new(visible), inner);
}

fn draw_members(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let block = Block::new()
        .borders(Borders::TOP | Borders::LEFT)
        .title(format!(" Online ({}) ", model.members.len() + 1));
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", model.me.name), Style::new().bold()),
            Span::styled("(you)", Style::new().fg(Color::DarkGray)),
        ]),
        Line::from(Span::styled(
            format!(" {}", model.me.fingerprint),
            Style::new().fg(Color::DarkGray),
        )),
    ];
    for m in &model.members {
        let mut name = vec![Span::styled(safe_line(&m.name), Style::new().bold())];
        if model.away.contains(&m.member) {
            name.push(Span::styled(
                " (reconnecting)",
                Style::new().fg(Color::DarkGray),
            ));
        }
        lines.push(Line::from(name));
        lines.push(Line::from(Span::styled(
            format!(" {}", m.fingerprint),
            Style::new().fg(Color::DarkGray),
        )));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_input(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let block = Block::bordered()
        .title(" Message · Enter sends · /send PATH · /save N PATH · /who · /quit ");
    let inner = block.inner(area);
    // Keep the cursor visible on long input: show the tail that fits.
    let chars: Vec<char> = model.input.chars().collect();
    let width = inner.width.saturating_sub(1) as usize;
    let start = model.cursor.saturating_sub(width);
    let shown: String = chars.iter().skip(start).take(width + 1).collect();
    frame.render_widget(Paragraph::new(safe_line(&shown)).block(block), area);
    let x = inner.x + (model.cursor - start) as u16;
    frame.set_cursor_position(Position::new(
        x.min(inner.right().saturating_sub(1)),
        inner.y,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::tui::model::{Msg, tests::member, update};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use streamchat_client::session::SessionEvent;

    fn screen(model: &Model, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| view(model, frame, 0)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                out.push_str(buffer[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn shows_status_members_fingerprints_and_messages_with_time_and_date() {
        let alice = member("Alice", "a", 1, true);
        let bob = member("Bob", "b", 2, false);
        let mut model = Model::new(alice.clone());
        update(
            &mut model,
            Msg::from(SessionEvent::MemberJoined {
                member: bob.clone(),
                returning: false,
            }),
            0,
        );
        update(
            &mut model,
            Msg::from(SessionEvent::Message {
                from: bob.clone(),
                message: streamchat_client::session::MessageRef {
                    key: bob.key,
                    sent_at: 0,
                },
                reply_to: None,
                ts: 1_795_962_645_000,
                sent_at: 0,
                text: "hello \u{1b}[31mthere".into(),
                direct: false,
            }),
            0,
        );
        let text = screen(&model, 120, 20);
        assert!(text.contains("End-to-end encrypted"), "{text}");
        assert!(text.contains("Online (2)"), "{text}");
        assert!(text.contains(&alice.fingerprint), "{text}");
        assert!(text.contains(&bob.fingerprint), "{text}");
        assert!(text.contains("Bob joined the chat at "), "{text}");
        let (time, date) = local_time_and_date(1_795_962_645_000);
        assert!(
            text.contains(&format!(
                "{time} · {date} Bob [{}]: hello [31mthere",
                short_fingerprint(&bob.fingerprint)
            )),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn long_text_wraps_with_an_indent() {
        let rendered = |segments: Vec<Segment>, width, indent| -> Vec<String> {
            wrap(segments, width, indent)
                .iter()
                .map(|l| l.to_string())
                .collect()
        };
        assert_eq!(
            rendered(vec![("abcdefghijkl".into(), Style::new())], 10, 2),
            ["abcdefghij", "  kl"]
        );
        assert_eq!(
            rendered(vec![("one two three four".into(), Style::new())], 10, 2),
            ["one two ", "  three ", "  four"]
        );
        assert_eq!(
            rendered(
                vec![("a: ".into(), Style::new()), ("bb cc".into(), Style::new())],
                10,
                4
            ),
            ["a: bb cc"]
        );
        let lines = wrap(vec![("ab\ncd".into(), Style::new())], 20, 4);
        let rendered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(rendered, ["ab", "    cd"]);
    }

    #[test]
    fn shows_numbers_replies_reactions_edits_and_deletions() {
        use crate::chat::tui::model::tests::{bob_says, conversation};
        let (mut model, bob) = conversation();
        bob_says(&mut model, &bob, 2, "second \u{1b}[1m", Some(1));
        let text = screen(&model, 120, 24);
        assert!(text.contains("#1 "), "{text}");
        assert!(text.contains("#2 "), "{text}");
        assert!(text.contains("↪ Alice #1: are you there?"), "{text}");
        assert!(text.contains("(edited)"), "{text}");
        assert!(text.contains("👍") && text.contains(" 1 (Bob)"), "{text}");
        assert!(!text.contains('\u{1b}'));
        let first = model.messages.get(2).unwrap().message;
        update(
            &mut model,
            Msg::from(SessionEvent::Deleted {
                from: bob.clone(),
                message: first,
            }),
            0,
        );
        let text = screen(&model, 120, 24);
        assert!(text.contains("message deleted"), "{text}");
        assert!(!text.contains("second"), "{text}");
    }
}
