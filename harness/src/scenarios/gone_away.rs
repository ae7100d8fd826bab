//! The server goes away while both mailers run: the case the original mailer could not test
//! ("a server that goes away/goes down … the RetryBackoff sleeps themselves are not being
//! tested"). Right before expiration-mailer and notify-mailer start, the plain server's SMTP
//! side is taken down through `POST /api/v1/outage`: `refuse` (ECONNREFUSED) for the first
//! second, then `blackhole` (accepted, never greeted) for two more, 3 s in all. The scenario
//! checks, from the mailers' summary and `backoff:` lines and the server's event log:
//!
//! - each mailer met refused connects, and the blackhole cost at least one greeting timeout;
//! - every backoff sleep asked for base·2^(i-1) capped at max, within the ±20% jitter, and
//!   really lasted that long; each mailer climbed the schedule (sleeps 1, 2 and 3 at least);
//! - the server logged both outages;
//! - every message arrived exactly once by Message-ID, plus one copy per lost reply (the plain
//!   server still closes at MAIL and loses replies after DATA meanwhile).
//!
//! Its addresses are its own (`@gone-away.example`), and it runs last: `exactly-once` checks
//! every message on the plain server, and `go-client` refuses fault events it did not expect.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use time::{OffsetDateTime, Time};

use super::copies::{Ledger, distinct};
use super::{Ctx, FROM, Outcome, first_missing, summary_field};
use crate::binaries::{EXPIRATION_MAILER, NOTIFY_MAILER};
use crate::certs::TestCert;
use crate::mailers::{self, Ran};
use crate::servers::Server;
use crate::transcripts::{Clue, on_server, suspect};

/// Only this scenario sends here.
const DOMAIN: &str = "gone-away.example";
/// notify-mailer's recipients.
const RECIPIENTS: usize = 20;
/// Nothing listens for this long...
const REFUSE: Duration = Duration::from_secs(1);
/// ...then connections are accepted and never answered for this long.
const BLACKHOLE: Duration = Duration::from_secs(2);
/// The mailers' backoff: 100, 200, 400, 800 ms, then 1 s; short, so the run takes seconds.
const BASE: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(1);
/// The mailers' step timeout: a blackholed greeting is given up after this. Short enough that
/// an attempt in the blackhole's first 1.5 s times out before it ends, and the gaps between
/// attempts (at most 1.2·MAX) cannot step over that window.
const STEP_TIMEOUT: Duration = Duration::from_millis(500);

pub async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let server = &ctx.plain;
    let dir = ctx.work.join("gone-away");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let contact = format!("expiry@{DOMAIN}");
    let (expiration_args, fakeclock) = prepare_expiration(ctx, server, &dir, &contact).await?;
    let recipients: Vec<String> = (0..RECIPIENTS)
        .map(|i| format!("notify-{i:02}@{DOMAIN}"))
        .collect();
    let notify_args = prepare_notify(server, &dir, &recipients)?;

    let since = server.api.events(0).await?.last_seq;
    // Longer than REFUSE: the blackhole replaces it, so the server is never back in between.
    server.api.outage("refuse", REFUSE + BLACKHOLE).await?;
    let switch = async {
        tokio::time::sleep(REFUSE).await;
        server.api.outage("blackhole", BLACKHOLE).await
    };
    let (expiration_program, notify_program) = (
        ctx.binaries.path(EXPIRATION_MAILER),
        ctx.binaries.path(NOTIFY_MAILER),
    );
    let env = [("FAKECLOCK", fakeclock)];
    let expiration = mailers::run(&expiration_program, &expiration_args, &env, &dir);
    let notify = mailers::run(&notify_program, &notify_args, &[], &dir);
    let (switched, expiration, notify) = tokio::join!(switch, expiration, notify);
    switched?;
    let expiration = match expiration {
        Ok(ran) => ran,
        Err(error) => return Err(first_missing(error, server, [contact.as_str()]).await),
    };
    let notify = match notify {
        Ok(ran) => ran,
        Err(error) => {
            return Err(first_missing(error, server, recipients.iter().map(String::as_str)).await);
        }
    };

    let mut timeouts = 0;
    for (name, ran) in [
        ("expiration-mailer", &expiration),
        ("notify-mailer", &notify),
    ] {
        let said = ran.stdout.trim();
        let field = |key: &str| {
            summary_field(&ran.stdout, key)
                .with_context(|| format!("{name} printed no {key}=N: {said:?}"))
        };
        let refused = field("refused_connects")?;
        ensure!(
            refused >= 1,
            "{name} ran while nothing listened, yet reports refused_connects={refused}: {said}"
        );
        timeouts += field("connect_timeouts")?;
        check_schedule(&backoff(ran)).with_context(|| format!("{name}: {said}"))?;
    }
    ensure!(
        timeouts >= 1,
        "the server blackholed connections for {BLACKHOLE:?}, yet neither mailer reports a \
         connect timeout (step timeout {STEP_TIMEOUT:?}):\n{}\n{}",
        expiration.stdout.trim(),
        notify.stdout.trim()
    );
    check_outage_events(server, since).await?;

    let mut expected = BTreeMap::new();
    for address in std::iter::once(&contact).chain(&recipients) {
        let held = distinct(server.api.records(Some(address)).await?)?.len();
        if held != 1 {
            return Err(suspect(
                anyhow!(
                    "{address} should hold exactly 1 message after the server came back; it has \
                     {held} (by Message-ID)"
                ),
                Some(server.name),
                Clue::count(address, held, 1),
            ));
        }
        expected.insert(address.clone(), 1);
    }
    let copies = Ledger::fetch(server)
        .await?
        .check(|to| to.ends_with(&format!("@{DOMAIN}")))?;
    Ok(Outcome {
        mails: expected.len(),
        resent: Some(copies.duplicates),
        ..Outcome::default()
    })
}

/// A store with one certificate due a reminder under the FAKECLOCK returned (E-2d), and the
/// arguments of the run.
async fn prepare_expiration(
    ctx: &Ctx,
    server: &Server,
    dir: &Path,
    contact: &str,
) -> anyhow::Result<(Vec<OsString>, String)> {
    let expiry = (OffsetDateTime::now_utc() + time::Duration::days(60))
        .replace_time(Time::from_hms(12, 0, 0)?);
    let pem = dir.join("cert.pem");
    TestCert {
        serial: 7000 + ctx.seed % 1_000_000,
        domains: vec![format!("www.{DOMAIN}")],
        not_before: expiry - time::Duration::days(90),
        not_after: expiry,
    }
    .write_pem(&pem)?;
    let program = ctx.binaries.path(EXPIRATION_MAILER);
    let db: OsString = format!("sqlite://{}", dir.join("store.sqlite").display()).into();
    let import: Vec<OsString> = vec![
        "import".into(),
        "--db".into(),
        db.clone(),
        "--contact".into(),
        format!("mailto:{contact}").into(),
        "--pem".into(),
        pem.into_os_string(),
    ];
    mailers::run(&program, &import, &[], dir).await?;
    let mut args: Vec<OsString> = vec!["--db".into(), db];
    args.extend(flags(server));
    let now = expiry - time::Duration::days(2);
    let fakeclock = humantime::format_rfc3339_seconds(now.into()).to_string();
    Ok((args, fakeclock))
}

/// The list and body of notify-mailer, and the arguments of its run.
fn prepare_notify(
    server: &Server,
    dir: &Path,
    recipients: &[String],
) -> anyhow::Result<Vec<OsString>> {
    let list = dir.join("recipients.csv");
    let body = dir.join("body.txt");
    let csv: String = std::iter::once("email\n".to_owned())
        .chain(recipients.iter().map(|r| format!("{r}\n")))
        .collect();
    std::fs::write(&list, csv).context("cannot write the recipient list")?;
    std::fs::write(&body, "The server went away and came back, {{ email }}.\n")
        .context("cannot write the body template")?;
    let mut args: Vec<OsString> = vec![
        "--recipients".into(),
        list.into_os_string(),
        "--body".into(),
        body.into_os_string(),
        "--subject".into(),
        "Gone away".into(),
        "--dry-run=false".into(),
    ];
    args.extend(flags(server));
    Ok(args)
}

/// The usual SMTP flags with this scenario's backoff and step timeout in place of theirs.
fn flags(server: &Server) -> Vec<OsString> {
    let mut flags = server.smtp().flags(FROM);
    let ms = |d: Duration| OsString::from(format!("{}ms", d.as_millis()));
    for (name, value) in [("--reconnect-base", ms(BASE)), ("--reconnect-max", ms(MAX))] {
        match flags.iter().position(|f| f == name) {
            Some(i) if i + 1 < flags.len() => flags[i + 1] = value,
            _ => flags.extend([name.into(), value]),
        }
    }
    flags.extend(["--smtp-timeout".into(), ms(STEP_TIMEOUT)]);
    flags
}

/// One word of a mailer's `backoff:` line: `r3=412/415ms` (`!` when cut by a deadline).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sleep {
    /// `r` reconnect, `t` retry after a temporary refusal.
    kind: char,
    index: u32,
    planned_ms: u64,
    slept_ms: u64,
    cut: bool,
}

/// The sleeps of a mailer's `PROGRAM: backoff: ...` line; empty when it printed none.
fn backoff(ran: &Ran) -> Vec<Sleep> {
    let Some(words) = ran
        .stdout
        .lines()
        .find_map(|line| line.split_once(": backoff: ").map(|(_, w)| w))
    else {
        return Vec::new();
    };
    words.split_whitespace().filter_map(parse_sleep).collect()
}

fn parse_sleep(word: &str) -> Option<Sleep> {
    let (cut, word) = match word.strip_suffix('!') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let kind = word.chars().next()?;
    let (index, times) = word.get(1..)?.split_once('=')?;
    let (planned, slept) = times.strip_suffix("ms")?.split_once('/')?;
    Some(Sleep {
        kind,
        index: index.parse().ok()?,
        planned_ms: planned.parse().ok()?,
        slept_ms: slept.parse().ok()?,
        cut,
    })
}

/// Every reconnect sleep i asked for min(base·2^(i-1), max) ±20% (1 ms for the rounding in
/// the line) and took at least that (and not absurdly more); sleeps 1, 2 and 3 are there.
fn check_schedule(sleeps: &[Sleep]) -> anyhow::Result<()> {
    let reconnects: Vec<&Sleep> = sleeps.iter().filter(|s| s.kind == 'r').collect();
    for index in 1..=3 {
        ensure!(
            reconnects.iter().any(|s| s.index == index),
            "no reconnect sleep {index} while the server was gone for {:?}: {sleeps:?}",
            REFUSE + BLACKHOLE
        );
    }
    for sleep in reconnects.into_iter().filter(|s| !s.cut) {
        let plain = mailer::backoff_before_jitter(sleep.index, BASE, MAX, 2).as_secs_f64() * 1e3;
        let planned = sleep.planned_ms as f64;
        ensure!(
            planned + 1.0 >= plain * 0.8 && planned <= plain * 1.2,
            "reconnect sleep {} asked for {} ms; the schedule says {plain:.0} ms ±20% \
             (base {BASE:?}, max {MAX:?})",
            sleep.index,
            sleep.planned_ms
        );
        // A generous upper bound: the machine may be busy, but not seconds late.
        ensure!(
            sleep.slept_ms + 2 >= sleep.planned_ms && sleep.slept_ms <= 2 * sleep.planned_ms + 2000,
            "reconnect sleep {} asked for {} ms but took {} ms",
            sleep.index,
            sleep.planned_ms,
            sleep.slept_ms
        );
    }
    Ok(())
}

/// The server logged the refuse outage and the blackhole that replaced it, both ended.
async fn check_outage_events(server: &Server, since: u64) -> anyhow::Result<()> {
    let log = server.api.events(since).await?;
    let outage: Vec<(&str, &str)> = log
        .events
        .iter()
        .filter(|e| e.stage == "outage")
        .map(|e| (e.action.as_str(), e.rule.as_str()))
        .collect();
    let actions: Vec<&str> = outage.iter().map(|(a, _)| *a).collect();
    if actions != ["start", "end", "start", "end"] {
        return Err(on_server(
            anyhow!(
                "the server should log two outages (refuse, replaced by blackhole), each started \
                 and ended; its outage events: {outage:?}"
            ),
            server.name,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_words_are_read() {
        assert_eq!(
            parse_sleep("r3=412/415ms"),
            Some(Sleep {
                kind: 'r',
                index: 3,
                planned_ms: 412,
                slept_ms: 415,
                cut: false
            })
        );
        assert!(parse_sleep("t1=90/91ms!").is_some_and(|s| s.cut && s.kind == 't'));
        assert_eq!(parse_sleep("+3"), None);
        let ran = Ran {
            stdout: "notify-mailer: recipients=1 sent=1\nnotify-mailer: backoff: r1=100/101ms \
                     r2=190/192ms +2 more\n"
                .to_owned(),
            stderr: String::new(),
        };
        assert_eq!(backoff(&ran).len(), 2);
    }

    #[test]
    fn the_schedule_check_takes_jitter_and_refuses_a_flat_backoff() {
        let sleep = |index, planned_ms, slept_ms| Sleep {
            kind: 'r',
            index,
            planned_ms,
            slept_ms,
            cut: false,
        };
        let good = [
            sleep(1, 81, 82),
            sleep(2, 239, 240),
            sleep(3, 400, 430),
            sleep(5, 1199, 1201),
        ];
        check_schedule(&good).unwrap();
        let flat = [sleep(1, 100, 100), sleep(2, 100, 100), sleep(3, 100, 100)];
        assert!(check_schedule(&flat).is_err());
        let not_slept = [sleep(1, 100, 3), sleep(2, 200, 200), sleep(3, 400, 400)];
        assert!(check_schedule(&not_slept).is_err());
        assert!(check_schedule(&good[..2]).is_err(), "sleep 3 missing");
    }
}
