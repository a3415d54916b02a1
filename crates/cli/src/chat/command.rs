//! What a typed line means: a message, or one of the commands both the terminal UI and
//! the JSON mode understand. A line starting with `//` is a message starting with `/`.

/// The commands, for help texts.
pub const COMMANDS_HELP: &str = "/reply N TEXT · /react N EMOJI · /edit N TEXT · /delete N · /send PATH · /save N PATH · /who · /letin NAME · /quit (message numbers are #N, file numbers [file N])";

/// One line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Nothing to do (an empty line).
    Nothing,
    /// A message.
    Text(String),
    /// `/send PATH`: share a file.
    Send(String),
    /// `/save N PATH`: save received file number N.
    Save {
        /// The file's number.
        number: usize,
        /// Where.
        path: String,
    },
    /// `/reply N TEXT`: answer message number N.
    Reply {
        /// The message's number.
        number: usize,
        /// The answer.
        text: String,
    },
    /// `/react N EMOJI`: put a reaction on message N, or take it back.
    React {
        /// The message's number.
        number: usize,
        /// The emoji.
        emoji: String,
    },
    /// `/edit N TEXT`: replace the text of one's own message N.
    Edit {
        /// The message's number.
        number: usize,
        /// The new text.
        text: String,
    },
    /// `/delete N`: delete one's own message N for everyone.
    Delete {
        /// The message's number.
        number: usize,
    },
    /// `/who`: list who is online with fingerprints.
    Who,
    /// `/letin WHO`: let a knocking member into a v2 room (WHO: a name, the start of a
    /// fingerprint, or a member id).
    LetIn(String),
    /// `/help`.
    Help,
    /// `/quit`: leave and exit.
    Quit,
}

/// Parses a line; the error is a sentence for the person.
pub fn parse(line: &str) -> Result<Input, String> {
    let trimmed = line.trim_end_matches(['\r', '\n']);
    if trimmed.trim().is_empty() {
        return Ok(Input::Nothing);
    }
    if let Some(literal) = trimmed.strip_prefix("//") {
        return Ok(Input::Text(format!("/{literal}")));
    }
    let Some(command) = trimmed.strip_prefix('/') else {
        return Ok(Input::Text(trimmed.to_owned()));
    };
    let (name, rest) = command
        .split_once(char::is_whitespace)
        .map_or((command, ""), |(n, r)| (n, r.trim()));
    match name {
        "send" if !rest.is_empty() => Ok(Input::Send(rest.to_owned())),
        "send" => Err("usage: /send PATH".to_owned()),
        "save" => {
            let (number, path) = rest
                .split_once(char::is_whitespace)
                .map(|(n, p)| (n, p.trim()))
                .ok_or("usage: /save N PATH".to_owned())?;
            let number = number
                .trim_start_matches('#')
                .parse()
                .map_err(|_| format!("usage: /save N PATH (N is a file number, not {number:?})"))?;
            if path.is_empty() {
                return Err("usage: /save N PATH".to_owned());
            }
            Ok(Input::Save {
                number,
                path: path.to_owned(),
            })
        }
        "reply" | "edit" => {
            let usage = format!("usage: /{name} N TEXT (N is a message number)");
            let (number, text) = rest
                .split_once(char::is_whitespace)
                .map(|(n, t)| (n, t.trim()))
                .ok_or_else(|| usage.clone())?;
            let number = message_number(number).ok_or_else(|| usage.clone())?;
            if text.is_empty() {
                return Err(usage);
            }
            let text = text.to_owned();
            Ok(if name == "reply" {
                Input::Reply { number, text }
            } else {
                Input::Edit { number, text }
            })
        }
        "react" => {
            let usage =
                "usage: /react N EMOJI (N is a message number; the same emoji again takes it back)";
            let (number, emoji) = rest
                .split_once(char::is_whitespace)
                .map(|(n, e)| (n, e.trim()))
                .ok_or(usage)?;
            let number = message_number(number).ok_or(usage)?;
            if emoji.is_empty() {
                return Err(usage.to_owned());
            }
            Ok(Input::React {
                number,
                emoji: emoji.to_owned(),
            })
        }
        "delete" => match message_number(rest) {
            Some(number) => Ok(Input::Delete { number }),
            None => Err("usage: /delete N (N is the number of one of your messages)".to_owned()),
        },
        "who" => Ok(Input::Who),
        "letin" | "admit" if !rest.is_empty() => Ok(Input::LetIn(rest.to_owned())),
        "letin" | "admit" => Err(
            "usage: /letin NAME (or the start of their fingerprint, as /who shows it)".to_owned(),
        ),
        "help" | "?" => Ok(Input::Help),
        "quit" | "exit" | "q" => Ok(Input::Quit),
        other => Err(format!(
            "unknown command /{other}; commands: {COMMANDS_HELP} (start a message with // to send a leading /)"
        )),
    }
}

/// The one member `who` names among `members`: a name (case and surrounding space
/// ignored), the start of a fingerprint (at least 4 hex digits, spaces ignored), or a
/// member id. Several people answering to it is an error that asks for a fingerprint.
pub fn find_member<'a>(
    members: impl IntoIterator<Item = &'a streamchat_client::session::Member>,
    who: &str,
) -> Result<&'a streamchat_client::session::Member, String> {
    let who = who.trim();
    let hex: String = who.chars().filter(|c| !c.is_whitespace()).collect();
    let hex = hex.to_lowercase();
    let fingerprint_like = hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit());
    let found: Vec<_> = members
        .into_iter()
        .filter(|m| {
            m.name.trim().eq_ignore_ascii_case(who)
                || m.member.as_str() == who
                || (fingerprint_like && m.fingerprint.replace(' ', "").starts_with(&hex))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("nobody here answers to {who:?}")),
        _ => Err(format!(
            "several people answer to {who:?}: give the start of a fingerprint instead"
        )),
    }
}

/// A message number as shown (`3` or `#3`).
fn message_number(text: &str) -> Option<usize> {
    text.trim().trim_start_matches('#').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_commands() {
        assert_eq!(parse("hello\n"), Ok(Input::Text("hello".into())));
        assert_eq!(parse("   "), Ok(Input::Nothing));
        assert_eq!(parse("//etc/passwd"), Ok(Input::Text("/etc/passwd".into())));
        assert_eq!(
            parse("/send ~/a b.png"),
            Ok(Input::Send("~/a b.png".into()))
        );
        assert_eq!(
            parse("/save 2 /tmp/x y"),
            Ok(Input::Save {
                number: 2,
                path: "/tmp/x y".into()
            })
        );
        assert_eq!(parse("/who"), Ok(Input::Who));
        assert_eq!(
            parse("/reply #3 sure, see you"),
            Ok(Input::Reply {
                number: 3,
                text: "sure, see you".into()
            })
        );
        assert_eq!(
            parse("/react 2 👍"),
            Ok(Input::React {
                number: 2,
                emoji: "👍".into()
            })
        );
        assert_eq!(
            parse("/edit 4 fixed"),
            Ok(Input::Edit {
                number: 4,
                text: "fixed".into()
            })
        );
        assert_eq!(parse("/delete #5"), Ok(Input::Delete { number: 5 }));
        for bad in [
            "/reply 3",
            "/reply x hi",
            "/react 2",
            "/edit 1",
            "/delete",
            "/delete x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("/quit"), Ok(Input::Quit));
        assert!(parse("/send").is_err());
        assert!(parse("/save x y").is_err());
        assert!(parse("/save 1").is_err());
        assert!(
            parse("/frobnicate")
                .unwrap_err()
                .contains("unknown command")
        );
    }
}
