//! `harness serve` end to end: the binary as a developer starts it, on 127.0.0.1 only. The
//! addresses come from its printed lines; it is stopped with a signal, as from a terminal.
//!
//! Every test but the busy-port one builds mail-test-srv first (the harness's own `cargo
//! build`: seconds when it is built, about a minute on a cold target). None uses the default
//! ports: a developer's own `harness serve` may be on them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A running `harness serve` and the lines it printed once both servers were ready.
struct Serve {
    child: Child,
    /// Its stderr (the build, errors), shown when an assertion fails.
    stderr: tempfile::NamedTempFile,
    /// The plain server's line, then the TLS server's.
    servers: [String; 2],
    /// The hints after them: where the mail and faults are, then where the transcripts are.
    hints: [String; 2],
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["serve", "--quiet"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(stderr.path()).unwrap())
            .spawn()
            .expect("cannot run the harness");
        let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .take(4)
            .map(Result::unwrap)
            .collect();
        let mut serve = Serve {
            child,
            stderr,
            servers: Default::default(),
            hints: Default::default(),
        };
        assert!(
            lines.len() == 4,
            "serve printed {lines:?} and stopped; stderr:\n{}",
            serve.log()
        );
        serve.servers = [lines[0].clone(), lines[1].clone()];
        serve.hints = [lines[2].clone(), lines[3].clone()];
        serve
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// SMTP and HTTP address of server 0 (plain) or 1 (TLS), as printed:
    /// `NAME: smtp ADDR  http http://ADDR/  (...)`.
    fn addrs(&self, server: usize) -> (SocketAddr, SocketAddr) {
        let line = &self.servers[server];
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |word: &str| {
            let at = words.iter().position(|w| *w == word);
            at.and_then(|i| words.get(i + 1))
                .unwrap_or_else(|| panic!("no {word} in {line:?}"))
        };
        let smtp = after("smtp").parse().unwrap();
        let http = after("http")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        (smtp, http)
    }

    /// Sends `signal` and waits for the harness to stop both servers and exit.
    fn stop(mut self, signal: rustix::process::Signal) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // A failed assertion must not leave the harness (and its servers) running; SIGTERM lets
        // it stop the servers itself.
        if let Ok(None) = self.child.try_wait() {
            if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = self.child.wait();
        }
    }
}

/// `GET path` over HTTP/1.1: status line and body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// The `http://ADDR/PATH` words of a line, as address and path (trailing punctuation dropped).
fn urls(line: &str) -> Vec<(SocketAddr, String)> {
    line.split_whitespace()
        .filter_map(|w| w.strip_prefix("http://"))
        .map(|w| w.trim_end_matches([',', '.', ';']))
        .map(|w| {
            let (addr, path) = w.split_once('/').unwrap_or((w, ""));
            (addr.parse().unwrap(), format!("/{path}"))
        })
        .collect()
}

/// A plain SMTP session, one command and one (possibly multi-line) reply at a time.
struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    /// Connects and reads the greeting, which must be 220.
    fn connect(addr: SocketAddr) -> Smtp {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut smtp = Smtp {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let (code, text) = smtp.reply();
        assert_eq!(code, 220, "greeting {text:?}");
        smtp
    }

    fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "the server closed the connection after {text:?}"
            );
            text.push_str(&line);
            // `250-...` continues, `250 ...` ends the reply.
            if line.as_bytes().get(3) != Some(&b'-') {
                let code = line.get(..3).and_then(|c| c.parse().ok());
                return (code.unwrap_or_else(|| panic!("bad reply {text:?}")), text);
            }
        }
    }

    /// Sends one line and asserts the reply's code.
    fn expect(&mut self, line: &str, code: u16) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        let (got, text) = self.reply();
        assert_eq!(got, code, "{line} got {text:?}");
    }
}

/// A loopback port with the next three free too (the TLS server's ports are counted from it).
/// Free when probed; another process could take one before the server binds, which the test
/// would report as a busy port.
fn four_free_ports() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        let Some(last) = base.checked_add(3) else {
            continue;
        };
        let rest: Vec<_> = (base + 1..=last)
            .map_while(|port| TcpListener::bind(("127.0.0.1", port)).ok())
            .collect();
        if rest.len() == 3 {
            return base;
        }
    }
    panic!("no four consecutive free ports on 127.0.0.1");
}

#[test]
fn serve_passes_its_faults_to_both_servers() {
    let serve = Serve::start(&[
        "--smtp",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--fault",
        "rcpt:reply=550:to=bad@example.com",
        "--close-chance",
        "0",
        "--seed",
        "5",
    ]);
    assert!(
        serve.servers[0].contains("rcpt:reply=550:to=bad@example.com"),
        "the banner names the fault: {:?}",
        serve.servers[0]
    );
    let (smtp, http) = serve.addrs(0);

    let mut session = Smtp::connect(smtp);
    session.expect("EHLO serve-test", 250);
    session.expect("MAIL FROM:<app@example.com>", 250);
    session.expect("RCPT TO:<good@example.com>", 250);
    session.expect("DATA", 354);
    session.expect(
        "Subject: hello\r\nMessage-ID: <serve-1@example.com>\r\n\r\nhello\r\n.",
        250,
    );
    session.expect("MAIL FROM:<app@example.com>", 250);
    session.expect("RCPT TO:<bad@example.com>", 550);
    session.expect("RSET", 250);
    session.expect("QUIT", 221);

    assert_eq!(get(http, "/count").1, "1\n");
    assert_eq!(get(http, "/count?to=good@example.com").1, "1\n");
    assert_eq!(get(http, "/count?to=bad@example.com").1, "0\n");

    // The banner says where the transcripts are, and they show why bad@ got nothing.
    let hint = &serve.hints[1];
    let urls = urls(hint);
    let [(list_at, list), (one_at, one)] = &urls[..] else {
        panic!("the transcript hint has no two URLs: {hint:?}")
    };
    assert_eq!((*list_at, *one_at), (http, http), "{hint}");
    assert_eq!(list.as_str(), "/api/v1/sessions", "{hint}");
    assert!(hint.contains("?refused=true"), "{hint}");
    let (status, page) = get(http, &format!("{list}?refused=true"));
    assert!(status.contains(" 200"), "{status} {page}");
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let id = page["sessions"][0]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no refused session: {page}"));
    let (status, transcript) = get(http, &one.replace("ID", &id.to_string()));
    assert!(status.contains(" 200"), "{status} {transcript}");
    for line in [
        "C: RCPT TO:<good@example.com>",
        "C: RCPT TO:<bad@example.com>",
        "S: 550",
        "C: QUIT",
    ] {
        assert!(transcript.contains(line), "no {line:?} in:\n{transcript}");
    }
    for server in 0..2 {
        let (_, http) = serve.addrs(server);
        let (status, plan) = get(http, "/api/v1/faults");
        assert!(
            status.contains(" 200") && plan.contains("bad@example.com"),
            "server {server} has the fault: {status} {plan}"
        );
    }
    let status = serve.stop(rustix::process::Signal::TERM);
    assert!(status.success(), "{status}");
    assert!(
        TcpStream::connect(smtp).is_err(),
        "{smtp} still answers after the harness stopped"
    );
}

#[test]
fn serve_on_fixed_ports_puts_the_tls_server_above_them() {
    let base = four_free_ports();
    let smtp = format!("127.0.0.1:{base}");
    let http = format!("127.0.0.1:{}", base + 1);
    let serve = Serve::start(&["--smtp", &smtp, "--http", &http]);
    let expected = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(serve.addrs(0), (expected(base), expected(base + 1)));
    assert_eq!(serve.addrs(1), (expected(base + 2), expected(base + 3)));
    for server in 0..2 {
        let (_, http) = serve.addrs(server);
        assert_eq!(
            get(http, "/count"),
            ("HTTP/1.1 200 OK".to_owned(), "0\n".to_owned())
        );
    }
    let status = serve.stop(rustix::process::Signal::INT);
    assert!(status.success(), "{status}");
    for port in base..base + 4 {
        assert!(
            TcpStream::connect(expected(port)).is_err(),
            "port {port} still answers after the harness stopped"
        );
    }
}

#[test]
fn a_busy_port_is_one_clear_line_before_anything_is_built() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["serve", "--smtp", &addr, "--http", "127.0.0.1:0"])
        .output()
        .expect("cannot run the harness");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [format!(
            "harness: error: {addr} is already in use (another `harness serve` or mail-test-srv?); \
             stop it, or choose other ports with --smtp/--http (port 0: random ones)"
        )],
        "one line, and no build before it"
    );
}
