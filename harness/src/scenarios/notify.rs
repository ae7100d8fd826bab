//! notify-mailer over a CSV list: `count` addresses, each with its own name and token, one of
//! them listed twice (with two tokens). Every address must hold exactly one message whose body
//! is rendered from its own rows: its name, its email and exactly its tokens. One message is one
//! Message-ID: a copy resent after a lost reply is the same message, checked against that reply.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use anyhow::{Context, anyhow, ensure};

use super::copies::{Ledger, distinct};
use super::{Ctx, FROM, Sent, first_missing, summary_field};
use crate::api::Mail;
use crate::binaries::NOTIFY_MAILER;
use crate::mailers;
use crate::servers::Server;
use crate::transcripts::{Blame, Clue, suspect};

/// The body template: the first row's columns at the top level, every row in `rows`.
const BODY: &str = "Hello {{ name }},\n\nthis notice is for {{ email }} only.\n\
{% for row in rows %}Your token: {{ row.token }}\n{% endfor %}\nRegards,\nthe harness\n";
const SUBJECT: &str = "Harness notice for {{ name }}";

/// One address of the list and what its message must say.
struct Entry {
    address: String,
    name: String,
    tokens: BTreeSet<String>,
}

fn entries(tag: &str, count: usize, seed: u64) -> Vec<Entry> {
    let mut entries: Vec<Entry> = (0..count)
        .map(|i| Entry {
            address: format!("notify-{i:03}-{tag}@example.com"),
            name: format!("Person {i}"),
            tokens: BTreeSet::from([format!("tok-{seed:x}-{tag}-{i:03}")]),
        })
        .collect();
    // The first address appears twice in the list: one message, both tokens.
    if let Some(first) = entries.first_mut() {
        first.tokens.insert(format!("tok-{seed:x}-{tag}-again"));
    }
    entries
}

fn csv(entries: &[Entry]) -> String {
    let mut csv = String::from("email,name,token\n");
    for entry in entries {
        for token in &entry.tokens {
            csv.push_str(&format!("{},{},{token}\n", entry.address, entry.name));
        }
    }
    csv
}

/// Runs the scenario; returns the messages each of its addresses must hold.
pub async fn run(ctx: &Ctx, server: &Server, tag: &str, count: usize) -> anyhow::Result<Sent> {
    let dir = ctx.work.join(format!("notify-{tag}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let entries = entries(tag, count, ctx.seed);
    let list = dir.join("recipients.csv");
    let body = dir.join("body.txt");
    std::fs::write(&list, csv(&entries)).context("cannot write the recipient list")?;
    std::fs::write(&body, BODY).context("cannot write the body template")?;

    let mut args: Vec<OsString> = vec![
        "--recipients".into(),
        list.into_os_string(),
        "--body".into(),
        body.into_os_string(),
        "--subject".into(),
        SUBJECT.into(),
        "--dry-run=false".into(),
    ];
    args.extend(server.smtp().flags(FROM));
    let addresses = || entries.iter().map(|e| e.address.as_str());
    let ran = match mailers::run(&ctx.binaries.path(NOTIFY_MAILER), &args, &[], &dir).await {
        Ok(ran) => ran,
        Err(error) => return Err(first_missing(error, server, addresses()).await),
    };
    if let Some(sent) = summary_field(&ran.stdout, "sent")
        && sent as usize != count
    {
        let error = anyhow!(
            "notify-mailer says sent={sent}, expected {count}: {}",
            ran.stdout.trim()
        );
        return Err(first_missing(error, server, addresses()).await);
    }

    let mut expected = BTreeMap::new();
    for entry in &entries {
        let messages = distinct(server.api.records(Some(&entry.address)).await?)?;
        if messages.len() != 1 {
            return Err(suspect(
                anyhow!(
                    "{} should hold exactly 1 message; the server has {} (by Message-ID; list of \
                     {count}, seed {})",
                    entry.address,
                    messages.len(),
                    ctx.seed
                ),
                Some(server.name),
                Clue::count(&entry.address, messages.len(), 1),
            ));
        }
        check_message(entry, &messages[0].mail)
            .blame(Some(server.name), Clue::Stored(entry.address.clone()))?;
        expected.insert(entry.address.clone(), 1);
    }
    let copies = Ledger::fetch(server)
        .await?
        .check(|to| expected.contains_key(to))?;
    Ok(Sent {
        expected,
        resent: copies.duplicates,
    })
}

/// The message `entry` got is rendered from its own rows: its name, its address, its tokens.
fn check_message(entry: &Entry, mail: &Mail) -> anyhow::Result<()> {
    let who = &entry.address;
    ensure!(
        mail.subject == format!("Harness notice for {}", entry.name),
        "{who}: subject {:?}",
        mail.subject
    );
    ensure!(
        mail.body.contains(&format!("Hello {},", entry.name)),
        "{who}: body without its name:\n{}",
        mail.body
    );
    ensure!(
        mail.body.contains(&format!("for {who} only")),
        "{who}: body without its address:\n{}",
        mail.body
    );
    let tokens: BTreeSet<String> = mail
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("Your token: "))
        .map(|t| t.trim().to_owned())
        .collect();
    ensure!(
        tokens == entry.tokens,
        "{who}: the body has tokens {tokens:?}, its rows have {:?}:\n{}",
        entry.tokens,
        mail.body
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_repeats_the_first_address_with_its_second_token() {
        let entries = entries("t", 3, 0xab);
        let csv = csv(&entries);
        assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
        assert_eq!(csv.matches("notify-000-t@example.com").count(), 2);
        assert!(csv.contains("notify-002-t@example.com,Person 2,tok-ab-t-002\n"));
    }
}
