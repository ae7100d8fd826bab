//! The programs the harness drives, built by cargo with the harness's own profile and found
//! next to the harness executable, so `cargo run -p harness` on a fresh clone needs nothing else.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub const MAIL_TEST_SRV: &str = "mail-test-srv";
pub const EXPIRATION_MAILER: &str = "expiration-mailer";
pub const NOTIFY_MAILER: &str = "notify-mailer";

/// Where the binaries are: the folder of the harness executable.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
}

impl Binaries {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    }
}

/// What `prepare` builds: the packages and the binaries they must yield.
#[derive(Debug, Clone, Copy)]
pub enum Needs {
    /// The server and both mailers (`run`).
    All,
    /// The server only (`serve`).
    Server,
}

impl Needs {
    fn packages(self) -> &'static [&'static str] {
        match self {
            Needs::All => &["mail-test-srv", "mailer-programs"],
            Needs::Server => &["mail-test-srv"],
        }
    }
    fn binaries(self) -> &'static [&'static str] {
        match self {
            Needs::All => &[MAIL_TEST_SRV, EXPIRATION_MAILER, NOTIFY_MAILER],
            Needs::Server => &[MAIL_TEST_SRV],
        }
    }
}

/// Builds (unless `build` is false) and locates the binaries next to the running executable.
pub fn prepare(needs: Needs, build: bool) -> anyhow::Result<Binaries> {
    let exe = std::env::current_exe().context("cannot find the harness executable")?;
    let layout = Layout::of(&exe)?;
    if build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let args = layout.build_args(needs.packages());
        eprintln!(
            "harness: building {} ({})",
            needs.packages().join(", "),
            layout.profile
        );
        let mut command = Command::new(&cargo);
        command.args(&args);
        for name in run_env(std::env::vars_os().map(|(name, _)| name)) {
            command.env_remove(name);
        }
        let status = command
            .status()
            .with_context(|| format!("cannot run {}", Path::new(&cargo).display()))?;
        if !status.success() {
            bail!("`cargo {}` failed ({status})", display_args(&args));
        }
    }
    let binaries = Binaries {
        dir: layout.bin_dir.clone(),
    };
    for name in needs.binaries() {
        let path = binaries.path(name);
        if !path.is_file() {
            bail!(
                "{} is missing{}",
                path.display(),
                if build {
                    " after the build"
                } else {
                    " (run without --no-build to build it)"
                }
            );
        }
    }
    Ok(binaries)
}

/// The target folder layout around the harness executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `target/<profile dir>`: where cargo puts the binaries of this profile.
    pub bin_dir: PathBuf,
    /// The `--target-dir` to give cargo.
    pub target_dir: PathBuf,
    /// The profile's folder name: `debug` is the dev profile, `release`, or a custom profile.
    pub profile: String,
}

impl Layout {
    /// From `target/debug/harness`, or `target/debug/deps/harness-HASH` (a test binary).
    pub fn of(exe: &Path) -> anyhow::Result<Layout> {
        let mut bin_dir = exe
            .parent()
            .context("the harness executable has no folder")?;
        if bin_dir.file_name().is_some_and(|n| n == "deps") {
            bin_dir = bin_dir.parent().context("deps/ has no parent folder")?;
        }
        let profile = bin_dir
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("cannot tell the cargo profile from {}", bin_dir.display()))?
            .to_owned();
        let target_dir = bin_dir
            .parent()
            .context("the profile folder has no parent")?;
        Ok(Layout {
            bin_dir: bin_dir.to_path_buf(),
            target_dir: target_dir.to_path_buf(),
            profile,
        })
    }

    /// `cargo build` arguments for these packages' binaries in this layout's profile.
    pub fn build_args(&self, packages: &[&str]) -> Vec<OsString> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut args: Vec<OsString> =
            vec!["build".into(), "--manifest-path".into(), manifest.into()];
        args.extend([
            "--target-dir".into(),
            self.target_dir.clone().into_os_string(),
        ]);
        match self.profile.as_str() {
            "debug" => {}
            "release" => args.push("--release".into()),
            other => args.extend(["--profile".into(), other.into()]),
        }
        for package in packages {
            args.extend(["-p".into(), (*package).into()]);
        }
        args.push("--bins".into());
        args
    }
}

/// Variables that `cargo run` / `cargo test` set for the harness itself. Passed on to the inner
/// `cargo build` they would look like a changed environment to build scripts that watch them
/// (ring's watches `CARGO_MANIFEST_DIR`), and rebuild half the tree on every run.
fn run_env(names: impl Iterator<Item = OsString>) -> Vec<OsString> {
    const EXACT: [&str; 7] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    names
        .filter(|name| {
            let name = name.to_string_lossy();
            EXACT.contains(&name.as_ref())
                || name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_BIN_EXE_")
        })
        .collect()
}

fn display_args(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(layout: &Layout) -> String {
        display_args(&layout.build_args(&["mail-test-srv", "mailer-programs"]))
    }

    #[test]
    fn debug_profile_builds_without_a_profile_flag() {
        let layout = Layout::of(Path::new("/w/target/debug/harness")).unwrap();
        assert_eq!(layout.bin_dir, Path::new("/w/target/debug"));
        assert_eq!(layout.target_dir, Path::new("/w/target"));
        let args = args(&layout);
        assert!(
            args.ends_with("--target-dir /w/target -p mail-test-srv -p mailer-programs --bins"),
            "{args}"
        );
        assert!(!args.contains("--release") && !args.contains("--profile"));
    }

    #[test]
    fn only_what_cargo_sets_for_a_run_is_cleared() {
        let names = [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_BIN_EXE_harness",
            "CARGO_TARGET_DIR",
            "CARGO_HOME",
            "CARGO",
            "PATH",
        ];
        let cleared = run_env(names.iter().map(OsString::from));
        assert_eq!(
            cleared,
            [
                "CARGO_MANIFEST_DIR",
                "CARGO_PKG_NAME",
                "CARGO_BIN_EXE_harness"
            ]
        );
    }

    #[test]
    fn release_and_custom_profiles_are_kept() {
        let release = Layout::of(Path::new("/w/target/release/harness")).unwrap();
        assert!(args(&release).contains("--release"));
        let custom = Layout::of(Path::new("/w/t/ci/deps/harness-0123abcd")).unwrap();
        assert_eq!(custom.bin_dir, Path::new("/w/t/ci"));
        assert!(args(&custom).contains("--profile ci"));
    }
}
