//! The certificate folder of `--tls` without `--cert` or `--generate-cert`: the binary makes
//! one under the temp directory (`$TMPDIR/mail-test-srv-PID`) and removes it when it exits,
//! by SIGTERM or SIGINT; a folder named with `--generate-cert` is never removed. Each test gives
//! the binary a `TMPDIR` of its own, so what is left there is exactly what the binary left.

mod cli_util;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli_util::{BIN, Running, spawn_command, wait_exit};
use rustix::process::{Pid, Signal, kill_process};

/// The binary on free loopback ports with `args`, its temp directory set to `tmp`.
fn spawn_in(tmp: &Path, args: &[&str]) -> Running {
    let mut command = Command::new(BIN);
    command
        .args(["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(args)
        .env("TMPDIR", tmp)
        .stderr(Stdio::null());
    spawn_command(command)
}

/// The folder the binary picks for itself.
fn scratch(tmp: &Path, running: &Running) -> PathBuf {
    tmp.join(format!("mail-test-srv-{}", running.child.id()))
}

fn signal(running: &Running, signal: Signal) {
    let pid = Pid::from_raw(running.child.id() as i32).expect("a child pid is not 0");
    kill_process(pid, signal).expect("the signal is sent");
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Starts with `tls`, sees the generated folder, stops it with `sig`: the folder is gone and
/// nothing else was left in the temp directory.
fn removed_after(tls: &str, sig: Signal) {
    let tmp = tempfile::tempdir().unwrap();
    let mut running = spawn_in(tmp.path(), &["--tls", tls]);
    let dir = scratch(tmp.path(), &running);
    // Seen first, so "gone" below means removed, not never made.
    for name in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(dir.join(name).is_file(), "no {name} in {}", dir.display());
    }
    signal(&running, sig);
    let status = wait_exit(&mut running.child);
    assert_eq!(status.code(), Some(0), "{sig:?}");
    assert!(
        !dir.exists(),
        "{} outlived the server ({sig:?})",
        dir.display()
    );
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}

#[test]
fn the_default_certificate_folder_is_removed_on_sigterm() {
    removed_after("starttls", Signal::TERM);
}

#[test]
fn the_default_certificate_folder_is_removed_on_sigint() {
    removed_after("implicit", Signal::INT);
}

#[test]
fn a_named_certificate_folder_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let named = tempfile::tempdir().unwrap();
    let mut running = spawn_in(
        tmp.path(),
        &[
            "--tls",
            "implicit",
            "--generate-cert",
            named.path().to_str().unwrap(),
        ],
    );
    signal(&running, Signal::TERM);
    assert_eq!(wait_exit(&mut running.child).code(), Some(0));
    for name in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(named.path().join(name).is_file(), "{name} was removed");
    }
    // Nothing was made in the temp directory either.
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_failed_start_leaves_no_certificate_folder() {
    let tmp = tempfile::tempdir().unwrap();
    // The SMTP port is taken, so the start fails: after generating, or before; either way
    // nothing may stay behind.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .args([
            "--smtp",
            &addr,
            "--http",
            "127.0.0.1:0",
            "--tls",
            "starttls",
        ])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}
