//! The retry decision over REAL lettre errors: each row produces its error by talking to a
//! scripted SMTP listener on 127.0.0.1 (or to a closed port) with lettre's own connection,
//! then checks `disposition` and `cause`.

use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use mailer::{BAD_ADDRESS_CODES, Cause, Disposition, cause, disposition};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the scripted server does when it reads the command starting with `on`.
#[derive(Clone, Debug)]
enum Act {
    /// Close the socket without replying (FIN).
    Close,
    /// Abort with an RST.
    Reset,
    /// Send these bytes and carry on.
    Reply(&'static str),
    /// Reply with this code and carry on.
    Code(u16),
}

/// Serves one connection: greeting, EHLO, "250 OK" to everything but the `on` verb.
/// `on` = "CONNECT" acts instead of the greeting.
async fn scripted(on: &'static str, act: Act) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut act_now = on == "CONNECT";
        if !act_now {
            write.write_all(b"220 localhost ready\r\n").await.unwrap();
        }
        loop {
            if act_now {
                match &act {
                    Act::Close => return,
                    Act::Reset => {
                        let stream = read_half_and_write(lines.into_inner().into_inner(), write);
                        stream.set_zero_linger().unwrap();
                        return;
                    }
                    Act::Reply(bytes) => write.write_all(bytes.as_bytes()).await.unwrap(),
                    Act::Code(code) => write
                        .write_all(format!("{code} 5.1.1 scripted reply\r\n").as_bytes())
                        .await
                        .unwrap(),
                }
            }
            let Ok(Some(line)) = lines.next_line().await else {
                return;
            };
            act_now = line.to_ascii_uppercase().starts_with(on);
            if !act_now {
                let reply: &[u8] = if line.to_ascii_uppercase().starts_with("EHLO") {
                    b"250-localhost\r\n250 PIPELINING\r\n"
                } else {
                    b"250 2.0.0 OK\r\n"
                };
                if write.write_all(reply).await.is_err() {
                    return;
                }
            }
        }
    });
    addr
}

fn read_half_and_write(
    read: tokio::net::tcp::OwnedReadHalf,
    write: tokio::net::tcp::OwnedWriteHalf,
) -> tokio::net::TcpStream {
    read.reunite(write).unwrap()
}

async fn connect(addr: std::net::SocketAddr) -> Result<AsyncSmtpConnection, SmtpError> {
    AsyncSmtpConnection::connect_tokio1(
        addr,
        Some(Duration::from_secs(5)),
        &ClientId::Domain("client.test".into()),
        None,
        None,
    )
    .await
}

fn mail() -> Mail {
    Mail::new(Some("from@example.com".parse().unwrap()), vec![])
}

fn rcpt() -> Rcpt {
    let to: Address = "to@example.com".parse().unwrap();
    Rcpt::new(to, vec![])
}

/// The error lettre gives for MAIL when the server does `act` there.
async fn error_on_mail(act: Act) -> SmtpError {
    let addr = scripted("MAIL", act).await;
    let mut conn = connect(addr).await.expect("greeting and EHLO work");
    conn.command(mail()).await.expect_err("MAIL must fail")
}

/// The error lettre gives for RCPT when the server does `act` there.
async fn error_on_rcpt(act: Act) -> SmtpError {
    let addr = scripted("RCPT", act).await;
    let mut conn = connect(addr).await.expect("greeting and EHLO work");
    conn.command(mail()).await.expect("MAIL works");
    conn.command(rcpt()).await.expect_err("RCPT must fail")
}

fn check(name: &str, err: &SmtpError, want_cause: Cause, want: Disposition) {
    assert_eq!(cause(err), want_cause, "{name}: cause of {err:?}");
    assert_eq!(disposition(err), want, "{name}: disposition of {err:?}");
}

#[tokio::test]
async fn server_closing_on_mail_means_reconnect() {
    let err = error_on_mail(Act::Close).await;
    assert!(
        err.is_response(),
        "plain TCP close is lettre's 'incomplete response': {err:?}"
    );
    check("close on MAIL", &err, Cause::Closed, Disposition::Reconnect);
}

#[tokio::test]
async fn server_closing_before_the_greeting_means_reconnect() {
    let addr = scripted("CONNECT", Act::Close).await;
    let err = connect(addr).await.err().expect("no greeting");
    check(
        "close at connect",
        &err,
        Cause::Closed,
        Disposition::Reconnect,
    );
}

#[tokio::test]
async fn reset_then_broken_pipe_mean_reconnect() {
    let addr = scripted("MAIL", Act::Reset).await;
    let mut conn = connect(addr).await.unwrap();
    let err = conn.command(mail()).await.expect_err("reset");
    check("reset on MAIL", &err, Cause::Reset, Disposition::Reconnect);
    // The next write on the reset socket fails with EPIPE.
    let err = conn.command(rcpt()).await.expect_err("broken pipe");
    check(
        "write after reset",
        &err,
        Cause::BrokenPipe,
        Disposition::Reconnect,
    );
}

#[tokio::test]
async fn reply_421_means_reconnect() {
    let err = error_on_mail(Act::Reply("421 4.3.0 closing\r\n")).await;
    check("421 on MAIL", &err, Cause::Reply421, Disposition::Reconnect);
    let err = error_on_rcpt(Act::Code(421)).await;
    check("421 on RCPT", &err, Cause::Reply421, Disposition::Reconnect);
}

#[tokio::test]
async fn nobody_listening_means_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = connect(addr).await.err().expect("refused");
    check(
        "connection refused",
        &err,
        Cause::Refused,
        Disposition::Reconnect,
    );
}

#[tokio::test]
async fn every_bad_address_code_is_a_bad_address() {
    for code in BAD_ADDRESS_CODES {
        let err = error_on_rcpt(Act::Code(code)).await;
        check(
            &format!("{code} on RCPT"),
            &err,
            Cause::Other,
            Disposition::BadAddress(code),
        );
    }
}

#[tokio::test]
async fn temporary_refusals_mean_retry() {
    // 451 greylisted or rate limited, 452 too many recipients or a full queue, 454 TLS not
    // available now: the server is fine and said "later".
    for code in [451, 452, 454] {
        let err = error_on_rcpt(Act::Code(code)).await;
        check(
            &format!("{code} on RCPT"),
            &err,
            Cause::Temporary,
            Disposition::Retry,
        );
    }
    let err = error_on_mail(Act::Reply("451 4.7.1 slow down\r\n")).await;
    check("451 on MAIL", &err, Cause::Temporary, Disposition::Retry);
}

#[tokio::test]
async fn other_refusals_are_fatal() {
    // 503 bad sequence, 552 too big, 554 failed.
    for code in [503, 552, 554] {
        let err = error_on_rcpt(Act::Code(code)).await;
        check(
            &format!("{code} on RCPT"),
            &err,
            Cause::Other,
            Disposition::Fatal,
        );
    }
    let err = error_on_mail(Act::Reply("hello there\r\n")).await;
    check("garbage reply", &err, Cause::Other, Disposition::Fatal);
}
