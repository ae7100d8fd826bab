//! A failed scenario's report shows the server's transcripts of the sessions behind it. Each
//! test starts a real mail-test-srv on 127.0.0.1 (built once by the harness's own `cargo build`,
//! as `harness serve` does: seconds when it is built), makes the `exactly-once` check fail on
//! purpose with hand-written SMTP sessions (a recipient refused by a fault rule, a copy sent twice,
//! a stray address), and reads what [`transcripts::explain`] gives the run to print under the
//! error: the transcript lines themselves, bounded, with the URL of the whole one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use harness::binaries::{self, Binaries, Needs};
use harness::cli::ScenarioName;
use harness::scenarios::{self, Ctx};
use harness::servers::{self, Listen, PLAIN, Plan, Server};
use harness::startservers::Services;
use harness::transcripts::{self, MAX_SESSIONS, Window};

/// mail-test-srv, built once for all the tests of this file.
fn built() -> &'static Binaries {
    static BUILT: OnceLock<Binaries> = OnceLock::new();
    BUILT
        .get_or_init(|| binaries::prepare(Needs::Server, true).expect("cannot build mail-test-srv"))
}

/// One plain server with these faults, and the scenarios' context around it.
struct Setup {
    ctx: Ctx,
    /// Kept for its drop: the server stops with the test, whatever happens.
    _services: Services,
    _work: tempfile::TempDir,
}

async fn start(close_chance: u8, faults: &[&str]) -> Setup {
    let binaries = built().clone();
    let work = tempfile::tempdir().unwrap();
    let plan = Plan {
        plain: Listen::EPHEMERAL,
        tls: Listen::EPHEMERAL,
        seed: 1,
        close_chance,
        faults: faults.iter().map(|f| (*f).to_owned()).collect(),
        cert_dir: work.path().join("tls"),
        echo: false,
        log: "warn",
    };
    // The plain server only: the check under test reads no other.
    let table = servers::table(&binaries, &plan)
        .into_iter()
        .take(1)
        .collect();
    let services = Services::start(table).await.unwrap();
    let plain = Server::from_services(&services, PLAIN, None).unwrap();
    Setup {
        ctx: Ctx {
            binaries,
            tls: plain.clone(),
            plain,
            work: work.path().to_path_buf(),
            seed: 1,
            close_chance,
            accept_close_chance: 0,
            expected_plain: BTreeMap::new(),
        },
        _services: services,
        _work: work,
    }
}

/// A plain SMTP session, one command and one (possibly multi-line) reply at a time.
struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    fn connect(addr: SocketAddr) -> Smtp {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut smtp = Smtp {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert_eq!(smtp.reply(), Some(220));
        smtp.expect("EHLO transcripts-test", 250);
        smtp
    }

    /// The code of the next reply; `None` when the server closed the connection.
    fn reply(&mut self) -> Option<u16> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return None;
            }
            // `250-...` continues, `250 ...` ends the reply.
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.get(..3).and_then(|c| c.parse().ok());
            }
        }
    }

    fn send(&mut self, line: &str) -> Option<u16> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    fn expect(&mut self, line: &str, code: u16) {
        assert_eq!(self.send(line), Some(code), "{line}");
    }

    /// One message to `to`: 250 all the way, or the RCPT refused with `refused` and RSET.
    fn mail(&mut self, to: &str, message_id: &str, refused: Option<u16>) {
        self.expect("MAIL FROM:<harness@example.com>", 250);
        if let Some(code) = refused {
            self.expect(&format!("RCPT TO:<{to}>"), code);
            self.expect("RSET", 250);
            return;
        }
        self.expect(&format!("RCPT TO:<{to}>"), 250);
        self.expect("DATA", 354);
        self.expect(
            &format!("Message-ID: <{message_id}>\r\nSubject: s\r\n\r\nbody\r\n."),
            250,
        );
    }

    fn quit(mut self) {
        self.expect("QUIT", 221);
    }
}

/// The exactly-once check of `expected` on the setup's server: it must fail. Returns the error as
/// the run prints it and the transcripts the run prints under it (saved into `save`).
async fn fail(
    setup: &mut Setup,
    windows: &[Window],
    expected: &[(&str, usize)],
    save: &std::path::Path,
) -> (String, String) {
    setup.ctx.expected_plain = expected
        .iter()
        .map(|(to, n)| ((*to).to_owned(), *n))
        .collect();
    let error = scenarios::run(ScenarioName::ExactlyOnce, &mut setup.ctx)
        .await
        .expect_err("the check passed");
    let shown = transcripts::explain(&error, windows, Some(save))
        .await
        .unwrap();
    (format!("{error:#}"), shown)
}

/// The `session N` lines of a report: the sessions it shows.
fn shown_sessions(shown: &str) -> Vec<u64> {
    shown
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("session "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_shows_its_session_with_the_550() {
    let mut setup = start(0, &["rcpt:reply=550:to=bad@example.com"]).await;
    let server = setup.ctx.plain.clone();
    // A session of an earlier scenario, refused too: not this scenario's, so not shown.
    let mut earlier = Smtp::connect(server.smtp);
    earlier.mail("bad@example.com", "old@h", Some(550));
    earlier.quit();
    let windows = [Window::open(&server).await];

    let mut smtp = Smtp::connect(server.smtp);
    smtp.mail("good@example.com", "good@h", None);
    smtp.mail("bad@example.com", "bad@h", Some(550));
    smtp.quit();
    let save = tempfile::tempdir().unwrap();
    let (error, shown) = fail(
        &mut setup,
        &windows,
        &[("good@example.com", 1), ("bad@example.com", 1)],
        save.path(),
    )
    .await;

    assert!(
        error.contains("bad@example.com should hold 1 message(s); the server has 0"),
        "{error}"
    );
    assert!(
        shown.contains("sessions that sent RCPT TO:<bad@example.com> and were refused"),
        "{shown}"
    );
    for line in [
        "S: 220 ",
        "C: EHLO transcripts-test",
        "C: RCPT TO:<good@example.com>",
        "C: RCPT TO:<bad@example.com>",
        "S: 550",
        "C: QUIT",
        "refused at rcpt: 550",
        "ended client-quit",
    ] {
        assert!(shown.contains(line), "no {line:?} in:\n{shown}");
    }
    let id = windows[0].since + 1;
    assert_eq!(shown_sessions(&shown), [id], "{shown}");
    // The whole transcript: at the URL printed, and saved (the servers of a run stop with it).
    let url = server.api.transcript_url(id);
    assert!(
        shown.contains(&format!("whole transcript: {url}")),
        "{shown}"
    );
    let whole = server.api.transcript(id).await.unwrap();
    assert!(
        whole.contains("S: 550") && whole.contains("C: QUIT"),
        "{whole}"
    );
    let saved = save.path().join(format!("{PLAIN}-session-{id}.txt"));
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_sent_again_after_a_250_shows_both_sessions() {
    let mut setup = start(0, &[]).await;
    let server = setup.ctx.plain.clone();
    let windows = [Window::open(&server).await];
    for _ in 0..2 {
        let mut smtp = Smtp::connect(server.smtp);
        smtp.mail("dup@example.com", "dup@h", None);
        smtp.quit();
    }
    let save = tempfile::tempdir().unwrap();
    let (error, shown) = fail(&mut setup, &windows, &[("dup@example.com", 1)], save.path()).await;

    assert!(error.contains("was answered 250"), "{error}");
    let sessions: Vec<u64> = server
        .api
        .messages()
        .await
        .unwrap()
        .iter()
        .map(|m| m.session)
        .collect();
    assert_eq!(sessions.len(), 2);
    assert_eq!(shown_sessions(&shown), sessions, "{shown}");
    assert!(shown.contains("the sessions it names"), "{shown}");
    // Both answered: the second copy was sent after the first one's 250.
    assert_eq!(
        shown.matches("C: RCPT TO:<dup@example.com>").count(),
        2,
        "{shown}"
    );
    assert_eq!(shown.matches("C: QUIT").count(), 2, "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_to_a_stray_address_shows_the_session_that_stored_it() {
    let mut setup = start(0, &[]).await;
    let server = setup.ctx.plain.clone();
    let windows = [Window::open(&server).await];
    let mut smtp = Smtp::connect(server.smtp);
    smtp.mail("a@example.com", "a@h", None);
    smtp.mail("stray@example.com", "s@h", None);
    smtp.quit();
    let save = tempfile::tempdir().unwrap();
    let (error, shown) = fail(&mut setup, &windows, &[("a@example.com", 1)], save.path()).await;

    assert!(
        error.contains("1 message(s) to stray@example.com, which no scenario sent to"),
        "{error}"
    );
    assert!(
        shown.contains("sessions that stored mail to stray@example.com"),
        "{shown}"
    );
    assert!(shown.contains("C: RCPT TO:<stray@example.com>"), "{shown}");
    assert!(shown.contains("2 stored"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_clue_the_last_sessions_that_went_wrong_are_shown_and_capped() {
    // Every MAIL closed, as when a mailer gives up: its error names no address.
    let setup = start(100, &[]).await;
    let server = setup.ctx.plain.clone();
    let windows = [Window::open(&server).await];
    let tries = MAX_SESSIONS + 2;
    for _ in 0..tries {
        let mut smtp = Smtp::connect(server.smtp);
        assert_eq!(smtp.send("MAIL FROM:<harness@example.com>"), None);
    }
    // One that went well is not shown.
    Smtp::connect(server.smtp).quit();
    let error = anyhow::anyhow!("expiration-mailer failed (exit status: 1)");
    let shown = transcripts::explain(&error, &windows, None).await.unwrap();

    assert!(
        shown.contains("the last sessions that went wrong while the scenario ran"),
        "{shown}"
    );
    let first = windows[0].since + 1;
    let newest: Vec<u64> = (first..first + tries as u64)
        .skip(tries - MAX_SESSIONS)
        .collect();
    assert_eq!(shown_sessions(&shown), newest, "{shown}");
    assert_eq!(
        shown.matches("C: MAIL FROM:<harness@example.com>").count(),
        MAX_SESSIONS,
        "{shown}"
    );
    assert!(shown.contains("*: fault mail:close"), "{shown}");
    assert!(shown.contains("ended server-fault (close)"), "{shown}");
    assert!(!shown.contains("saved to"), "{shown}");
}
