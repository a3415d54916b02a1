//! What a typed line means: a message, or one of the commands both the terminal UI and
//! the JSON mode understand. A line starting with `//` is a message starting with `/`.

/// The commands, for help texts.
pub const COMMANDS_HELP: &str = "/send PATH · /save N PATH · /who · /quit";

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
    /// `/who`: list who is online with fingerprints.
    Who,
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
        "who" => Ok(Input::Who),
        "help" | "?" => Ok(Input::Help),
        "quit" | "exit" | "q" => Ok(Input::Quit),
        other => Err(format!(
            "unknown command /{other}; commands: {COMMANDS_HELP} (start a message with // to send a leading /)"
        )),
    }
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
