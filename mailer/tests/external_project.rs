//! The library as an outside crate sees it: `tests/external-user/` is a cargo project of its
//! own (not a workspace member) that depends on `mailer` by path. This test copies it into
//! the target directory (the `mailer` path made absolute, the workspace's Cargo.lock beside
//! it, so no new versions are resolved), checks with `cargo tree` that none of the
//! programs' dependencies come along, builds it (offline, its own target directory), and
//! runs it against an in-process mail-test-srv closing 35% of the MAIL commands: each
//! message, with an HTML part and an attachment, is stored exactly once, byte for byte as
//! lettre formatted it (mail-test-srv adds no header).
//!
//! Slow the first time (the project's own build of lettre, tokio and rustls); later runs
//! reuse its target directory.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use support::*;

const MESSAGES: usize = 24;

/// Crates that belong to the programs, never to a user of the library.
const NOT_IN_THE_LIBRARY: [&str; 7] = [
    "sqlx",
    "clap",
    "minijinja",
    "csv",
    "indicatif",
    "x509-parser",
    "tracing-subscriber",
];

fn cargo() -> std::process::Command {
    let mut command =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Set by the outer `cargo test`; the project decides its own.
    command.env_remove("CARGO_TARGET_DIR");
    command
}

/// The project copied to `work/project`, with an absolute path to `mailer` and the
/// workspace's lock file.
fn prepare(work: &Path) -> PathBuf {
    let mailer_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = mailer_dir.join("tests/external-user");
    let project = work.join("project");
    std::fs::create_dir_all(project.join("src")).unwrap();
    let manifest = std::fs::read_to_string(source.join("Cargo.toml")).unwrap();
    assert!(manifest.contains(r#"path = "../..""#), "{manifest}");
    let manifest = manifest.replace(
        r#"path = "../..""#,
        &format!("path = {:?}", mailer_dir.display().to_string()),
    );
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(source.join("src/main.rs"), project.join("src/main.rs")).unwrap();
    let lock = mailer_dir.parent().unwrap().join("Cargo.lock");
    std::fs::copy(lock, project.join("Cargo.lock")).unwrap();
    project
}

fn run(command: &mut std::process::Command) -> String {
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_project_sends_rich_lettre_messages_each_stored_once_without_the_programs_deps()
{
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("external-user");
    let project = prepare(&work);
    let manifest = project.join("Cargo.toml");
    let target = work.join("target");

    // Every crate the project would build, dev and build dependencies included.
    let tree = run(cargo()
        .args(["tree", "--offline", "--prefix", "none", "-e", "all"])
        .arg("--manifest-path")
        .arg(&manifest));
    let crates: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for unwanted in NOT_IN_THE_LIBRARY {
        let found: Vec<_> = crates
            .iter()
            .filter(|name| **name == unwanted || name.starts_with(&format!("{unwanted}-")))
            .collect();
        assert!(
            found.is_empty(),
            "{unwanted} in the tree of a mailer user: {found:?}\n{tree}"
        );
    }
    println!("the project's tree holds {} crates", crates.len());

    let build = tokio::task::spawn_blocking({
        let manifest = manifest.clone();
        let target = target.clone();
        move || {
            run(cargo()
                .args(["build", "--offline", "--quiet"])
                .arg("--manifest-path")
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target))
        }
    });
    build.await.unwrap();

    let server = start_server(&["mail:close:35%"]).await;
    let out_dir = work.join("sent");
    let _ = std::fs::remove_dir_all(&out_dir);
    let output = tokio::process::Command::new(target.join("debug/external-user"))
        .arg("127.0.0.1")
        .arg(server.smtp_addr().port().to_string())
        .arg(&out_dir)
        .arg(MESSAGES.to_string())
        .output()
        .await
        .expect("the project's binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // "n <message-id> attempts" per message.
    let mut attempts = 0;
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        attempts += fields[2].parse::<usize>().unwrap();
    }
    assert!(
        attempts > MESSAGES,
        "the server closed on 35% of MAILs, yet nothing was resent:\n{stdout}"
    );

    let stored = stored(&server);
    let mut copies: HashMap<&[u8], usize> = HashMap::new();
    for message in &stored {
        *copies.entry(message.data.as_ref()).or_default() += 1;
    }
    for n in 0..MESSAGES {
        let formatted = std::fs::read(out_dir.join(format!("{n}.eml"))).unwrap();
        assert_eq!(
            copies.get(formatted.as_slice()),
            Some(&1),
            "message {n} is not stored exactly once, byte for byte"
        );
        let text = String::from_utf8_lossy(&formatted);
        assert!(text.contains("Content-Type: text/html"), "{text}");
        assert!(text.contains("Content-Disposition: attachment"), "{text}");
    }
    assert_eq!(stored.len(), MESSAGES);
    let ids: std::collections::HashSet<_> = stored.iter().map(|m| &m.message_id).collect();
    assert_eq!(ids.len(), MESSAGES, "one Message-ID per message");
}
