//! The Go client (`test/clients/go-netsmtp`): net/smtp with PlainAuth, the way the Go mailer
//! this workspace replaced sent mail. It gives net/smtp the sender with its display name, so the
//! server sees `MAIL FROM:<"Expiry bot" <test@example.com>>` and must store `test@example.com`;
//! it reconnects and resends (same Message-ID) on EOF or 421. Against the plain server (closes
//! at MAIL, lost replies after DATA) each of its 200 recipients must hold exactly one message
//! (by Message-ID), closes must have fired, every copy beyond the first must answer one lost
//! reply, and every closed connection must have cost exactly one reconnect.
//!
//! The program is built with the `go` on PATH. Without one the scenario is skipped with the
//! reason, except under CI, where a skip would hide that it never ran, so it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};

use super::copies::{Ledger, distinct, is_lost_reply};
use super::{Ctx, Outcome, first_missing, summary_field};
use crate::api::Record;
use crate::mailers;
use crate::transcripts::{Clue, on_server, suspect};

/// Messages sent, one per recipient.
pub const RECIPIENTS: usize = 200;
/// Only this scenario sends here, so its check sees nothing of the others' mail and theirs
/// nothing of its own.
const DOMAIN: &str = "go-client.example";
/// The sender as the Go mailer was configured.
const FROM: &str = "\"Expiry bot\" <test@example.com>";
/// The envelope sender the server must store: the address inside [`FROM`].
const ENVELOPE_FROM: &str = "test@example.com";
/// Tries per message. At 35% closes and 10% lost replies a try fails with a chance of 0.415, all
/// of them for some message of 200 with 200 * 0.415^20, about 5e-6: a failure means a bug, not
/// bad luck.
const MAX_ATTEMPTS: u32 = 20;
/// A cold build compiles net/smtp and crypto/tls from the standard library: a minute or more on
/// a busy machine. A warm one takes a second.
const BUILD_LIMIT: Duration = Duration::from_secs(600);
/// Where the Go client's source is, from this crate.
const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../test/clients/go-netsmtp");

pub async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let ci = std::env::var_os("CI").is_some();
    let Some(go) = find_go(std::env::var_os("PATH").as_deref(), ci)? else {
        return Ok(Outcome {
            skipped: Some(MISSING_GO.to_owned()),
            ..Outcome::default()
        });
    };
    let client = build(ctx, &go).await?;

    let server = &ctx.plain;
    let dir = ctx.work.join("go-client");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let recipients = recipients();
    let list = dir.join("recipients.txt");
    std::fs::write(&list, recipients.join("\n") + "\n")
        .context("cannot write the recipient list")?;

    // Faults of this scenario only: the events after the last one so far.
    let since = server.api.events(0).await?.last_seq;
    let args: Vec<OsString> = vec![
        "-addr".into(),
        server.smtp.to_string().into(),
        "-from".into(),
        FROM.into(),
        // The plain server takes any credentials; these only have to be sent.
        "-user".into(),
        "harness".into(),
        "-password".into(),
        "harness-password".into(),
        "-recipients".into(),
        list.into_os_string(),
        "-max-attempts".into(),
        MAX_ATTEMPTS.to_string().into(),
        "-timeout".into(),
        "10s".into(),
    ];
    let addresses = || recipients.iter().map(String::as_str);
    let ran = match mailers::run(&client, &args, &[], &dir).await {
        Ok(ran) => ran,
        Err(error) => return Err(first_missing(error, server, addresses()).await),
    };
    let said = ran.stdout.trim();
    let field = |key: &str| {
        summary_field(&ran.stdout, key)
            .with_context(|| format!("the Go client printed no {key}=N: {said:?}"))
    };
    let (sent, failed, reconnects) = (field("sent")?, field("failed")?, field("reconnects")?);
    if sent != RECIPIENTS as u64 || failed != 0 {
        let error = anyhow!("the Go client says {said:?}; expected sent={RECIPIENTS} failed=0");
        return Err(first_missing(error, server, addresses()).await);
    }

    check_mail(&server.api.records(None).await?, &recipients)
        .map_err(|e| on_server(e, server.name))?;

    let log = server.api.events(since).await?;
    let (mut closes, mut lost) = (0, 0);
    for event in &log.events {
        if is_lost_reply(event) {
            lost += 1;
            continue;
        }
        if !(event.stage == "mail" && event.action.contains("close") && !event.stored) {
            return Err(suspect(
                anyhow!(
                    "unexpected fault {} at {} ({}, stored: {}): only closes at MAIL and accept-close \
                     after DATA were configured",
                    event.action,
                    event.stage,
                    event.rule,
                    event.stored
                ),
                Some(server.name),
                Clue::Sessions(vec![event.connection]),
            ));
        }
        closes += 1;
    }
    let copies = Ledger::fetch(server)
        .await?
        .check(|to| to.ends_with(&format!("@{DOMAIN}")))?;
    ensure!(
        copies.duplicates == lost,
        "the server lost {lost} replies to the Go client (accept-close), and {} of its messages \
         were stored again: each lost reply must cause exactly one resend",
        copies.duplicates
    );
    if ctx.close_chance > 0 {
        ensure!(
            closes > 0,
            "no close at MAIL fired while the Go client sent {RECIPIENTS} messages at close chance {}%",
            ctx.close_chance
        );
    }
    // Every close and every lost reply ended a connection with a message still to send (again):
    // each costs exactly one reconnect, and nothing else does.
    ensure!(
        reconnects == closes + lost,
        "the server closed {closes} connections at MAIL and {lost} after DATA (lost replies), \
         but the Go client reports reconnects={reconnects}"
    );
    Ok(Outcome {
        mails: RECIPIENTS,
        resent: Some(copies.duplicates),
        ..Outcome::default()
    })
}

const MISSING_GO: &str = "`go` is not on PATH, so the Go client cannot be built (run .ci/install-deps; with CI set this fails)";

/// `go` on `path`; `None` (skip) when there is none, an error under CI.
fn find_go(path: Option<&OsStr>, ci: bool) -> anyhow::Result<Option<PathBuf>> {
    let found = path
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("go"))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    match found {
        Some(go) => Ok(Some(go)),
        None if ci => bail!("{MISSING_GO}"),
        None => Ok(None),
    }
}

/// Builds the Go client under the cargo target folder: kept between runs (so a rebuild takes a
/// second), gone with `cargo clean`, and writable without a HOME (GOCACHE and GOPATH point there).
async fn build(ctx: &Ctx, go: &Path) -> anyhow::Result<PathBuf> {
    let source = Path::new(SOURCE);
    ensure!(
        source.join("go.mod").is_file(),
        "the Go client's source is missing: no {}",
        source.join("go.mod").display()
    );
    let target = ctx.binaries.dir.parent().unwrap_or(&ctx.binaries.dir);
    let out = target.join("go-netsmtp");
    let binary = out.join("go-netsmtp");
    let env = [
        // The installed toolchain, never one go.mod would have it download.
        ("GOTOOLCHAIN", "local".to_owned()),
        ("GOFLAGS", "-mod=mod".to_owned()),
        // The standard library only: nothing to fetch, and nothing may be fetched.
        ("GOPROXY", "off".to_owned()),
        ("GOCACHE", out.join("cache").display().to_string()),
        ("GOPATH", out.join("gopath").display().to_string()),
    ];
    let args: Vec<OsString> = vec![
        "build".into(),
        "-o".into(),
        binary.clone().into_os_string(),
        ".".into(),
    ];
    mailers::run_within(BUILD_LIMIT, go, &args, &env, source)
        .await
        .context("cannot build the Go client")?;
    Ok(binary)
}

fn recipients() -> Vec<String> {
    (0..RECIPIENTS)
        .map(|i| format!("go-{i:03}@{DOMAIN}"))
        .collect()
}

/// Each recipient holds exactly one message (by Message-ID; a copy resent after a lost reply is
/// the same message) from [`ENVELOPE_FROM`], with its own Message-ID; no other address of
/// [`DOMAIN`] got mail. A failure names the address (not the server: the caller knows it).
fn check_mail(records: &[Record], recipients: &[String]) -> anyhow::Result<()> {
    let blame = |error, clue| suspect(error, None, clue);
    let suffix = format!("@{DOMAIN}");
    let ours = records
        .iter()
        .filter(|r| r.to.ends_with(&suffix))
        .cloned()
        .collect();
    let mut by_to: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for message in distinct(ours)? {
        let record = &message.record;
        if record.from != ENVELOPE_FROM {
            return Err(blame(
                anyhow!(
                    "the message to {} has envelope sender {:?}; expected {ENVELOPE_FROM:?}, the address inside {FROM:?}",
                    record.to,
                    record.from
                ),
                Clue::Stored(record.to.clone()),
            ));
        }
        let id = message.mail.message_id.unwrap_or_default();
        if !ids.insert(id.clone()) {
            return Err(blame(
                anyhow!(
                    "Message-ID <{id}> is stored for two recipients (the second {}): one message per \
                     recipient, each with its own Message-ID",
                    record.to
                ),
                Clue::Stored(record.to.clone()),
            ));
        }
        *by_to.entry(message.record.to).or_default() += 1;
    }
    for address in recipients {
        let held = by_to.remove(address.as_str()).unwrap_or(0);
        if held != 1 {
            return Err(blame(
                anyhow!(
                    "{address} should hold exactly 1 message from the Go client; the server has {held}"
                ),
                Clue::count(address, held, 1),
            ));
        }
    }
    if let Some((stray, n)) = by_to.first_key_value() {
        return Err(blame(
            anyhow!("{n} message(s) to {stray}, which is not in the Go client's list"),
            Clue::Stored(stray.clone()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(to: &str, from: &str, id: &str) -> Record {
        Record {
            from: from.to_owned(),
            to: to.to_owned(),
            raw: format!("Message-ID: <{id}>\r\nSubject: s\r\n\r\nbody\r\n"),
        }
    }

    #[test]
    fn recipients_are_numbered_in_the_scenario_domain() {
        let list = recipients();
        assert_eq!(list.len(), RECIPIENTS);
        assert_eq!(list[0], "go-000@go-client.example");
        assert_eq!(list[199], "go-199@go-client.example");
    }

    #[test]
    fn each_recipient_once_from_the_inner_address_passes() {
        let to = ["go-000@go-client.example", "go-001@go-client.example"];
        let list: Vec<String> = to.iter().map(|s| (*s).to_owned()).collect();
        let mut records = vec![
            record(to[0], ENVELOPE_FROM, "a@h"),
            record(to[1], ENVELOPE_FROM, "b@h"),
            // Other scenarios' mail is not this check's business.
            record("notify-000-plain@example.com", "harness@example.com", "a@h"),
        ];
        check_mail(&records, &list).unwrap();

        // A copy of b@h (resent after a lost reply) is still one message.
        records.push(record(to[1], ENVELOPE_FROM, "b@h"));
        check_mail(&records, &list).unwrap();

        records.push(record(to[1], ENVELOPE_FROM, "c@h"));
        let error = check_mail(&records, &list).unwrap_err().to_string();
        assert!(
            error.contains("go-001@go-client.example should hold exactly 1"),
            "{error}"
        );
    }

    #[test]
    fn one_message_id_for_two_recipients_a_display_name_sender_or_a_stray_fails() {
        let list = vec!["go-000@go-client.example".to_owned()];
        let twice = [
            record(&list[0], ENVELOPE_FROM, "a@h"),
            record("go-001@go-client.example", ENVELOPE_FROM, "a@h"),
        ];
        let error = check_mail(&twice, &list).unwrap_err().to_string();
        assert!(
            error.contains("<a@h> is stored for two recipients"),
            "{error}"
        );

        let named = [record(&list[0], FROM, "a@h")];
        let error = check_mail(&named, &list).unwrap_err().to_string();
        assert!(error.contains("envelope sender"), "{error}");

        let stray = [
            record(&list[0], ENVELOPE_FROM, "a@h"),
            record("go-999@go-client.example", ENVELOPE_FROM, "b@h"),
        ];
        let error = check_mail(&stray, &list).unwrap_err().to_string();
        assert!(
            error.contains("go-999@go-client.example, which is not"),
            "{error}"
        );
    }

    #[test]
    fn go_is_found_on_path_or_skipped_or_required_under_ci() {
        let dir = tempfile::tempdir().unwrap();
        let empty = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([empty.path(), dir.path()]).unwrap();
        assert_eq!(find_go(Some(&path), false).unwrap(), None);
        let error = find_go(Some(&path), true).unwrap_err().to_string();
        assert!(error.contains("not on PATH"), "{error}");
        assert_eq!(find_go(None, false).unwrap(), None);

        // Only an executable counts: a plain file named go is not a toolchain.
        let go = dir.path().join("go");
        std::fs::write(&go, "#!/bin/sh\n").unwrap();
        assert_eq!(find_go(Some(&path), false).unwrap(), None);
        std::fs::set_permissions(&go, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_go(Some(&path), true).unwrap(), Some(go));
    }
}
