//! The startservers lifecycle with small real programs (`sh`): readiness from the READY line,
//! early exits and deadlines reported with the tail of the output, dependency order, reverse
//! stop order, and no process left behind after `stop()` or a plain drop.

use std::path::Path;
use std::time::Duration;

use harness::startservers::{Readiness, Service, Services, StartError, start_order};

fn sh(name: &str, script: &str) -> Service {
    Service::new(name, "/bin/sh")
        .arg("-c")
        .arg(script)
        .grace(Duration::from_secs(2))
}

/// True while the process exists and is not a zombie (a zombie has exited; only its reaping is due,
/// which for a grandchild is the job of whatever adopted it).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Waits (bounded) for a signalled process to disappear: signals are delivered asynchronously.
fn gone(pid: u32) -> bool {
    for _ in 0..500 {
        if !running(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn read_pid(path: &Path) -> u32 {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no pid in {}", path.display());
}

#[tokio::test]
async fn ready_line_fields_become_addresses_and_stop_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let grandchild = dir.path().join("grandchild.pid");
    // The service spawns a child of its own: stopping the service must stop it too.
    let script = format!(
        "sleep 300 & echo $! > {}; echo 'READY smtp=127.0.0.1:2525 http=127.0.0.1:8025 seed=7'; wait",
        grandchild.display()
    );
    let services = Services::start(vec![sh("srv", &script)]).await.unwrap();
    let ready = services.ready_line("srv").unwrap();
    assert_eq!(ready.addr("smtp").unwrap().port(), 2525);
    assert_eq!(ready.addr("http").unwrap().to_string(), "127.0.0.1:8025");
    assert_eq!(ready.field("seed"), Some("7"));
    assert!(ready.addr("imap").unwrap_err().contains("no `imap=`"));

    let pid = services.pid("srv").unwrap();
    let grandchild = read_pid(&grandchild);
    assert!(running(pid) && running(grandchild));
    let stopped = services.stop().await;
    assert_eq!(stopped.len(), 1);
    assert!(stopped[0].status.is_some());
    assert!(gone(pid), "service {pid} still running");
    assert!(gone(grandchild), "its child {grandchild} still running");
}

#[tokio::test]
async fn dropping_services_stops_them() {
    let services = Services::start(vec![
        sh("a", "echo READY; exec sleep 300"),
        sh("b", "echo READY; exec sleep 300"),
    ])
    .await
    .unwrap();
    let pids = [services.pid("a").unwrap(), services.pid("b").unwrap()];
    assert!(pids.iter().all(|&pid| running(pid)));
    drop(services);
    for pid in pids {
        assert!(gone(pid), "{pid} survived the drop");
    }
}

#[tokio::test]
async fn a_term_ignoring_service_is_killed_after_its_grace() {
    let services = Services::start(vec![
        sh(
            "stubborn",
            "trap '' TERM; echo READY; while :; do sleep 1; done",
        )
        .grace(Duration::from_millis(300)),
    ])
    .await
    .unwrap();
    let pid = services.pid("stubborn").unwrap();
    assert!(running(pid), "{pid} is not running before the stop");
    let stopped = services.stop().await;
    assert!(stopped[0].killed, "{stopped:?}");
    assert!(gone(pid));
}

#[tokio::test]
async fn early_exit_is_reported_with_the_tail_and_the_others_are_stopped() {
    let first = sh("first", "echo READY; exec sleep 300");
    let broken = sh(
        "broken",
        "echo loading config; echo 'bad flag --smtp' >&2; exit 3",
    )
    .after("first");
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("first.pid");
    // Records its own pid so the test can check it was stopped when `broken` failed.
    let first = Service {
        args: vec![
            "-c".into(),
            format!(
                "echo $$ > {}; echo READY; exec sleep 300",
                pidfile.display()
            )
            .into(),
        ],
        ..first
    };
    let error = Services::start(vec![broken, first]).await.unwrap_err();
    match &error {
        StartError::ExitedEarly { name, status, tail } => {
            assert_eq!(name, "broken");
            assert!(status.contains('3'), "{status}");
            assert!(
                tail.contains("loading config") && tail.contains("bad flag --smtp"),
                "{tail}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("broken") && message.contains("bad flag --smtp"),
        "{message}"
    );
    assert!(gone(read_pid(&pidfile)), "first was left running");
}

#[tokio::test]
async fn a_service_that_never_gets_ready_fails_at_its_deadline_with_its_tail() {
    let slow = sh(
        "slow",
        "echo booting; echo 'waiting for the database' >&2; exec sleep 300",
    )
    .ready(Readiness::line("READY", Duration::from_secs(2)));
    let error = Services::start(vec![slow]).await.unwrap_err();
    let StartError::NotReady {
        name,
        deadline,
        tail,
    } = &error
    else {
        panic!("unexpected {error}")
    };
    assert_eq!(name, "slow");
    assert_eq!(*deadline, Duration::from_secs(2));
    assert!(
        tail.contains("booting") && tail.contains("waiting for the database"),
        "{tail}"
    );
    assert!(
        error.to_string().contains("slow was not ready within 2s"),
        "{error}"
    );
}

#[tokio::test]
async fn the_deadline_runs_on_tokio_time_and_the_late_service_is_stopped() {
    // The service writes its pid, then becomes `sleep` (same pid) and never says READY.
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("silent.pid");
    let silent = sh(
        "silent",
        &format!("echo $$ > {}; exec sleep 300", pidfile.display()),
    )
    .ready(Readiness::line("READY", Duration::from_secs(3600)));
    let start = Services::start(vec![silent]);
    tokio::pin!(start);
    // First see it running, by its pid, while the clock is still real: otherwise "no process
    // left" below could pass for a service that never started or a pid never learnt.
    let mut seen = None;
    for _ in 0..1000 {
        tokio::select! {
            started = &mut start => match started {
                Ok(_) => panic!("a service that never prints READY was reported ready"),
                Err(error) => panic!("start ended before the service was seen running: {error}"),
            },
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .filter(|&pid| running(pid))
        {
            seen = Some(pid);
            break;
        }
    }
    let pid = seen.expect("the service never wrote its pid (waited 10 s)");
    // Now the hour-long deadline passes as soon as the runtime is idle: the wait is on tokio's
    // clock, not the wall clock (a test of real time would take an hour).
    tokio::time::pause();
    let began = std::time::Instant::now();
    let error = match start.await {
        Ok(_) => panic!("a service that never prints READY was reported ready"),
        Err(error) => error,
    };
    assert!(
        matches!(&error, StartError::NotReady { name, deadline, .. }
            if name == "silent" && *deadline == Duration::from_secs(3600)),
        "{error}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "{:?}",
        began.elapsed()
    );
    // The same process, seen alive above, is gone: the failed start stopped what it started.
    assert!(gone(pid), "the service {pid} outlived its failed start");
}

#[tokio::test]
async fn starts_in_dependency_order_and_stops_in_reverse() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let svc = |name: &str| {
        let script = format!(
            "trap 'echo stop {name} >> {log}; exit 0' TERM; echo start {name} >> {log}; echo READY; sleep 300 & wait",
            log = log.display()
        );
        sh(name, &script)
    };
    // Listed out of order on purpose: c needs b, b needs a; d needs nothing.
    let table = vec![svc("c").after("b"), svc("b").after("a"), svc("d"), svc("a")];
    let services = Services::start(table).await.unwrap();
    assert_eq!(services.names(), ["d", "a", "b", "c"]);
    let stopped = services.stop().await;
    let names: Vec<&str> = stopped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["c", "b", "a", "d"]);
    assert!(stopped.iter().all(|s| !s.killed), "{stopped:?}");
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "start d", "start a", "start b", "start c", "stop c", "stop b", "stop a", "stop d"
        ]
    );
}

#[tokio::test]
async fn a_service_that_dies_after_ready_is_noticed() {
    let mut services = Services::start(vec![sh(
        "flaky",
        "echo READY; read _ignored; echo 'panic: out of sockets' >&2; exit 4",
    )])
    .await
    .unwrap();
    // stdin is /dev/null, so `read` returns at once and the service exits after being ready.
    let died = services.wait_for_exit().await;
    assert_eq!(died.name, "flaky");
    assert!(died.tail.contains("panic: out of sockets"), "{}", died.tail);
    assert!(services.check_alive().await.is_err());
    assert!(died.to_string().contains("flaky exited"));
}

#[tokio::test]
async fn the_tail_keeps_the_last_lines() {
    let services = Services::start(vec![sh(
        "chatty",
        "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done; echo READY; exec sleep 300",
    )])
    .await
    .unwrap();
    let tail = services.tail("chatty").unwrap();
    assert_eq!(tail.0.len(), harness::startservers::TAIL_LINES);
    assert_eq!(tail.0.last().map(String::as_str), Some("READY"));
    assert!(
        tail.contains("line 199") && !tail.contains("line 100"),
        "{tail}"
    );
    services.stop().await;
}

#[tokio::test]
async fn table_errors_are_found_before_anything_starts() {
    let unknown = Services::start(vec![sh("a", "echo READY").after("db")])
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("a needs db"), "{unknown}");
    let cycle =
        start_order(&[sh("a", "").after("b"), sh("b", "").after("a"), sh("c", "")]).unwrap_err();
    assert!(cycle.to_string().contains("cycle among a, b"), "{cycle}");
    let twice = start_order(&[sh("a", ""), sh("a", "")]).unwrap_err();
    assert!(
        twice.to_string().contains("two services are named a"),
        "{twice}"
    );
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error_naming_the_service() {
    let error = Services::start(vec![Service::new("ghost", "/nonexistent/mail-test-srv")])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StartError::Spawn { name, .. } if name == "ghost"),
        "{error}"
    );
    assert!(error.to_string().contains("/nonexistent/mail-test-srv"));
}
