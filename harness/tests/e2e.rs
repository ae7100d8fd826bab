//! The harness binary end to end: its command line without building anything, and (ignored by
//! default, because they build mail-test-srv and both mailers first: about a minute on a cold
//! target) a whole run that must pass and one that must fail with a useful report (the seed, the
//! address, and the transcripts of the sessions that went wrong).
//! Run those with `cargo test -p harness --test e2e -- --ignored`. `harness serve` is in
//! `tests/serve.rs`.

use std::process::{Command, Output};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("cannot run the harness")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn help_lists_the_subcommands_and_flags() {
    let output = harness(&["--help"]);
    assert!(output.status.success());
    let help = text(&output);
    for word in [
        "run",
        "serve",
        "--seed",
        "--close-chance",
        "--accept-close-chance",
        "--scenario",
        "--keep-going",
        "go-client",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

#[test]
fn serve_help_gives_the_ports_and_the_tls_scheme() {
    let output = harness(&["serve", "--help"]);
    assert!(output.status.success());
    let help = text(&output);
    for word in [
        "--smtp <ADDR>",
        "[default: 127.0.0.1:9380]",
        "--http <ADDR>",
        "[default: 127.0.0.1:9381]",
        "--fault <RULE>",
        "9382 and 9383",
    ] {
        assert!(help.contains(word), "serve --help lacks {word}:\n{help}");
    }
}

#[test]
fn a_bad_flag_is_refused_before_anything_is_built() {
    let output = harness(&["--close-chance", "101"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("101"));
    let output = harness(&["--scenario", "everything"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("expiration"),
        "the error lists the scenarios: {}",
        text(&output)
    );
}

#[test]
#[ignore = "builds mail-test-srv and the mailers; CI runs `cargo run -p harness` anyway"]
fn a_whole_run_with_a_fixed_seed_passes() {
    let output = harness(&["--seed", "20261128"]);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    for scenario in ["expiration", "notify", "exactly-once", "tls", "gone-away"] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(scenario) && l.contains(" ok ")),
            "{scenario} did not pass:\n{report}"
        );
    }
    // go-client needs `go`: without it (and without CI) it is skipped, and says so.
    let go_ran = report
        .lines()
        .any(|l| l.starts_with("go-client") && l.contains(" ok "));
    let summary = if go_ran {
        "all 6 scenario(s) passed (seed 20261128)"
    } else {
        "5 scenario(s) passed, 1 skipped (seed 20261128)"
    };
    assert!(report.contains(summary), "{report}");
    assert!(
        go_ran || report.contains("scenario go-client skipped: `go` is not on PATH"),
        "{report}"
    );
}

#[test]
#[ignore = "builds mail-test-srv and the mailers; CI runs `cargo run -p harness` anyway"]
fn a_server_that_drops_every_connection_fails_the_run_with_the_seed() {
    // Every MAIL is closed: the mailer gives up after its reconnect bound (a few seconds with the
    // harness's short delays) and the scenario fails; the next one is skipped.
    let output = harness(&[
        "--seed",
        "9",
        "--close-chance",
        "100",
        "--scenario",
        "expiration",
        "--scenario",
        "tls",
    ]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("expiration") && l.contains("FAILED")),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("tls") && l.contains("skipped")),
        "{report}"
    );
    assert!(
        report.contains("scenario expiration FAILED (seed 9)"),
        "{report}"
    );
    assert!(
        report.contains("expiry-plain@example.com"),
        "the failure names the address: {report}"
    );
    assert!(
        report.contains("reproduce with: cargo run -p harness -- --seed 9 --close-chance 100 --scenario expiration --scenario tls"),
        "{report}"
    );
    // The server's side: no RCPT ever got through, so the last sessions that went wrong are
    // shown, each closed at MAIL by the fault, with where its whole transcript is.
    for line in [
        "C: MAIL FROM:<harness@example.com>",
        "*: fault mail:close:100% (close)",
        "ended server-fault (close)",
        "/api/v1/sessions/",
        "harness-transcripts/expiration/mail-test-srv-session-",
    ] {
        assert!(report.contains(line), "no {line:?} in:\n{report}");
    }
    let shown = report
        .lines()
        .filter(|l| l.starts_with("  session "))
        .count();
    assert_eq!(shown, 3, "at most 3 transcripts:\n{report}");
}
