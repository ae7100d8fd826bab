mod support;
use support::*;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adhoc_speed() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    let to = to(&["user@example.com"]);
    let start = std::time::Instant::now();
    for _ in 0..3000 {
        conn.send_mail(&to, "Subject", "Body text of a typical reminder\nsecond line\n").await.unwrap();
    }
    eprintln!("RATE {:.0} msgs/s", 3000.0 / start.elapsed().as_secs_f64());
}
