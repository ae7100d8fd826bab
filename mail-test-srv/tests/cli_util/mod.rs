//! Shared helpers of the CLI tests: the binary started on free ports, its READY line read,
//! raw SMTP lines over a blocking socket, signals.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_mail-test-srv");

/// A running binary and the addresses from its READY line.
pub struct Running {
    pub child: Child,
    pub smtp: String,
    pub http: String,
    pub seed: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on `127.0.0.1:0` with `args`.
pub fn spawn(args: &[&str]) -> Running {
    let mut all = vec!["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"];
    all.extend_from_slice(args);
    spawn_exactly(&all)
}

/// Starts the binary with exactly `args` (which must choose free ports) and reads its READY line.
pub fn spawn_exactly(args: &[&str]) -> Running {
    spawn_with_stderr(args, Stdio::null())
}

/// Like [`spawn_exactly`], with the binary's stderr (notes, logs) going to `stderr`.
pub fn spawn_with_stderr(args: &[&str], stderr: Stdio) -> Running {
    let mut command = Command::new(BIN);
    command.args(args).stderr(stderr);
    spawn_command(command)
}

/// Starts `command` (the binary, with whatever arguments and environment the test set) and
/// reads its READY line.
pub fn spawn_command(mut command: Command) -> Running {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fields: Vec<&str> = line.trim_end().split(' ').collect();
    assert_eq!(fields.len(), 4, "READY line {line:?}");
    assert_eq!(fields[0], "READY");
    let value = |i: usize, key: &str| {
        fields[i]
            .strip_prefix(key)
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_owned()
    };
    Running {
        smtp: value(1, "smtp="),
        http: value(2, "http="),
        seed: value(3, "seed=").parse().expect("numeric seed"),
        child,
    }
}

pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("did not exit within 10 s");
}

/// Reads one reply line (enough for the single-line replies used here).
pub fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut text = String::new();
    reader.read_line(&mut text).unwrap();
    text
}

pub fn connect(addr: &str) -> (BufReader<TcpStream>, TcpStream) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (BufReader::new(tcp.try_clone().unwrap()), tcp)
}

/// A blocking `GET path` on the HTTP port at `addr`; asserts 200 and returns the body.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut tcp = TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{response}");
    body.to_owned()
}
