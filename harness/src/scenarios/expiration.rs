//! expiration-mailer on a fresh SQLite store: one contact with two certificates expiring at E,
//! another whose certificate expires 100 days later. Runs under FAKECLOCK at E-31d (nothing is
//! due), E-13d (the 480h reminder), E-2d (the 240h reminder) and E-2d again (nothing new): the
//! first contact must hold exactly 2 reminders naming all its domains and the date of E, the
//! other none. Reminders are counted by Message-ID: a reminder whose reply the server lost is
//! stored twice, and that second copy must be the same message, resent for that lost reply.

use std::collections::BTreeMap;
use std::ffi::OsString;

use anyhow::{Context, anyhow, ensure};
use time::{Duration, OffsetDateTime, Time};

use super::copies::{Ledger, distinct};
use super::{Ctx, FROM, Sent, summary_field};
use crate::api::Mail;
use crate::binaries::EXPIRATION_MAILER;
use crate::certs::TestCert;
use crate::mailers;
use crate::servers::Server;
use crate::transcripts::{Blame, Clue, suspect};

/// The runs: label, days before E, reminders the contact holds after it.
const RUNS: [(&str, i64, usize); 4] = [
    ("E-31d", 31, 0),
    ("E-13d", 13, 1),
    ("E-2d", 2, 2),
    ("E-2d (again)", 2, 2),
];

/// Runs the scenario; returns the messages each of its addresses must hold.
pub async fn run(ctx: &Ctx, server: &Server, tag: &str) -> anyhow::Result<Sent> {
    let dir = ctx.work.join(format!("expiration-{tag}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Noon UTC, so "the date of E" is the same day in any reading of it.
    let expiry =
        (OffsetDateTime::now_utc() + Duration::days(60)).replace_time(Time::from_hms(12, 0, 0)?);
    let contact = format!("expiry-{tag}@example.com");
    let later = format!("later-{tag}@example.com");
    let site = format!("{tag}-shop.example");
    let soon = [
        vec![site.clone(), format!("www.{site}")],
        vec![format!("mail.{site}")],
    ];
    let far = vec![format!("{tag}-later.example")];
    let issued = expiry - Duration::days(90);
    let serial_base = 1000 + (ctx.seed % 1_000_000) * 10;
    let mut pems = Vec::new();
    for (i, domains) in soon.iter().enumerate() {
        let path = dir.join(format!("soon-{i}.pem"));
        TestCert {
            serial: serial_base + i as u64,
            domains: domains.clone(),
            not_before: issued,
            not_after: expiry,
        }
        .write_pem(&path)?;
        pems.push(path);
    }
    let far_pem = dir.join("later.pem");
    TestCert {
        serial: serial_base + 9,
        domains: far.clone(),
        not_before: issued,
        not_after: expiry + Duration::days(100),
    }
    .write_pem(&far_pem)?;

    let program = ctx.binaries.path(EXPIRATION_MAILER);
    let db: OsString = format!("sqlite://{}", dir.join("store.sqlite").display()).into();
    let import = |contact: &str, files: &[std::path::PathBuf]| {
        let mut args: Vec<OsString> = vec![
            // `--db` after `import`: the program refuses a global flag before its subcommand.
            "import".into(),
            "--db".into(),
            db.clone(),
            "--contact".into(),
        ];
        args.push(format!("mailto:{contact}").into());
        args.push("--pem".into());
        args.extend(files.iter().map(|f| f.clone().into_os_string()));
        args
    };
    mailers::run(&program, &import(&contact, &pems), &[], &dir).await?;
    mailers::run(&program, &import(&later, &[far_pem]), &[], &dir).await?;

    let mut args: Vec<OsString> = vec!["--db".into(), db.clone()];
    args.extend(server.smtp().flags(FROM));
    for (label, days, want) in RUNS {
        let now = expiry - Duration::days(days);
        let fakeclock = rfc3339(now);
        // Only the contact is due a reminder: a failed run is about its mail.
        let missing = || Clue::Missing(contact.clone());
        let ran = mailers::run(&program, &args, &[("FAKECLOCK", fakeclock.clone())], &dir)
            .await
            .blame(Some(server.name), missing())?;
        let held = distinct(server.api.records(Some(&contact)).await?)?.len();
        if held != want {
            let faults = server
                .api
                .stats()
                .await
                .map(|s| s.faults.describe())
                .unwrap_or_default();
            return Err(suspect(
                anyhow!(
                    "after the run at {label} (FAKECLOCK={fakeclock}, expiry {}) {contact} should hold {want} \
                     reminder(s); the server has {held} (faults injected so far by stage: {faults}). \
                     The mailer said: {}",
                    rfc3339(expiry),
                    ran.stdout.trim()
                ),
                Some(server.name),
                Clue::count(&contact, held, want),
            ));
        }
        let for_later = server.api.count(Some(&later)).await?;
        if for_later != 0 {
            return Err(suspect(
                anyhow!(
                    "after the run at {label}, {later} (certificate expiring 100 days after E) got {for_later} message(s); expected none"
                ),
                Some(server.name),
                Clue::Stored(later.clone()),
            ));
        }
        if let Some(failures) = summary_field(&ran.stdout, "failures")
            && failures != 0
        {
            return Err(suspect(
                anyhow!(
                    "the run at {label} reported failures={failures}: {}",
                    ran.stdout.trim()
                ),
                Some(server.name),
                missing(),
            ));
        }
    }

    // Two distinct reminders (checked after each run above), so two different Message-IDs: a
    // second reminder reusing the first one's would have been counted as a copy and refused
    // as one, for differing from it.
    let reminders = distinct(server.api.records(Some(&contact)).await?)?;
    let date = expiry.date().to_string();
    // The clocks of the two runs that sent: the reminders are stored in that order.
    let clocks = [expiry - Duration::days(13), expiry - Duration::days(2)];
    // Each reminder names every domain of `soon` and not `far` (a certificate of `later`), gives
    // the expiry date and the site, and is dated by FAKECLOCK (`sent_at`).
    let check = |mail: &Mail, sent_at: OffsetDateTime| -> anyhow::Result<()> {
        for domain in soon.iter().flatten() {
            ensure!(
                mail.body.contains(domain.as_str()),
                "the reminder to {contact} does not name {domain}:\n{}",
                mail.body
            );
        }
        ensure!(
            !mail.body.contains(&far[0]),
            "the reminder to {contact} names {}, a certificate of {later}",
            far[0]
        );
        ensure!(
            mail.body.contains(&date),
            "the reminder to {contact} does not give the expiry date {date}:\n{}",
            mail.body
        );
        ensure!(
            mail.subject.contains(&site),
            "the subject {:?} does not name {site}",
            mail.subject
        );
        // The Date header must come from FAKECLOCK, not from the machine's clock.
        let stamped = mail.date.context("a reminder has no Date header")?;
        let expected = sent_at.unix_timestamp();
        ensure!(
            (stamped - expected).abs() <= 3600,
            "a reminder is dated {} but was sent under FAKECLOCK {}",
            OffsetDateTime::from_unix_timestamp(stamped)
                .map(rfc3339)
                .unwrap_or_default(),
            rfc3339(sent_at)
        );
        Ok(())
    };
    for (reminder, sent_at) in reminders.iter().zip(&clocks) {
        check(&reminder.mail, *sent_at).blame(Some(server.name), Clue::Stored(contact.clone()))?;
    }
    let copies = Ledger::fetch(server)
        .await?
        .check(|to| to == contact || to == later)?;
    Ok(Sent {
        expected: BTreeMap::from([(contact, 2), (later, 0)]),
        resent: copies.duplicates,
    })
}

/// `2027-01-14T12:00:00Z`, the form FAKECLOCK takes.
fn rfc3339(time: OffsetDateTime) -> String {
    humantime::format_rfc3339_seconds(time.into()).to_string()
}
