//! Go's flag spellings: the original server was a Go program, and Go's `flag` package takes
//! `-name`, `-name=value` and `--name` alike, so its start scripts say `-closeFirst 5` and
//! `-smtp 127.0.0.1:9380`. clap wants two dashes for a long flag, so a one-dash word that
//! names one of our long flags (or its alias) gets the second dash before clap sees it.
//!
//! Only words in flag position are touched: a value that follows a flag expecting one is
//! passed as it is, and so is everything after `--`.

use std::ffi::OsString;

use clap::CommandFactory;

use crate::cli::Cli;

/// The arguments with one-dash long flags rewritten to two dashes.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let command = Cli::command();
    let mut out = Vec::new();
    let mut value_expected = false;
    let mut rest_positional = false;
    for arg in args {
        if rest_positional || std::mem::take(&mut value_expected) {
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_positional = true;
            out.push(arg);
            continue;
        }
        let long = match text.strip_prefix("--") {
            Some(long) => Some(long.to_owned()),
            None => text
                .strip_prefix('-')
                .filter(|word| single_dash_long(&command, word))
                .map(str::to_owned),
        };
        let Some(long) = long else {
            out.push(arg);
            continue;
        };
        let (name, inline_value) = match long.split_once('=') {
            Some((name, _)) => (name, true),
            None => (long.as_str(), false),
        };
        value_expected = !inline_value && takes_value(&command, name);
        out.push(format!("--{long}").into());
    }
    out
}

/// A word after one dash that is meant as a long flag: one of ours, or any word that is not
/// a cluster of our short flags (`-h`, `-V`), so a mistyped Go flag (`-closefirst`) gets
/// clap's error about `--closefirst` and its suggestion, not one about `-c`.
fn single_dash_long(command: &clap::Command, word: &str) -> bool {
    let name = word.split_once('=').map_or(word, |(name, _)| name);
    let shorts: Vec<char> = command
        .get_arguments()
        .filter_map(clap::Arg::get_short)
        .chain(['h', 'V'])
        .collect();
    name.len() > 1 && (find(command, name).is_some() || !name.chars().all(|c| shorts.contains(&c)))
}

fn takes_value(command: &clap::Command, name: &str) -> bool {
    find(command, name).is_some_and(|arg| arg.get_action().takes_values())
}

fn find<'a>(command: &'a clap::Command, name: &str) -> Option<&'a clap::Arg> {
    command.get_arguments().find(|arg| {
        arg.get_long() == Some(name)
            || arg
                .get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(Into::into))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn one_dash_long_flags_get_two() {
        assert_eq!(
            normalized(&[
                "-closeFirst",
                "5",
                "-smtp=127.0.0.1:0",
                "-closeChance",
                "35"
            ]),
            [
                "--closeFirst",
                "5",
                "--smtp=127.0.0.1:0",
                "--closeChance",
                "35"
            ]
        );
        assert_eq!(
            normalized(&["-cert", "c.pem", "-key", "k.pem"]),
            ["--cert", "c.pem", "--key", "k.pem"]
        );
    }

    #[test]
    fn values_short_flags_and_unknown_words_are_left_alone() {
        // `-smtp` here is the hostname's value, not a flag.
        assert_eq!(
            normalized(&["--hostname", "-smtp", "-h", "-V", "-hV"]),
            ["--hostname", "-smtp", "-h", "-V", "-hV"]
        );
        // A mistyped Go flag reads as the long flag it was meant to be.
        assert_eq!(normalized(&["-closefirst", "5"]), ["--closefirst", "5"]);
        assert_eq!(normalized(&["--", "-smtp"]), ["--", "-smtp"]);
        // A boolean flag takes no value, so the next word is a flag again.
        assert_eq!(
            normalized(&["-strict", "-http", "127.0.0.1:0"]),
            ["--strict", "--http", "127.0.0.1:0"]
        );
    }
}
