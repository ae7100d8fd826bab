//! The transport in place of lettre's `AsyncSmtpTransport`: one message with a text and an
//! HTML part and an attachment, over plain SMTP to the host and port given as arguments.
//!
//! ```text
//! cargo run -p mail-test-srv -- --smtp 127.0.0.1:2525 --fault mail:close:35%   # elsewhere
//! cargo run -p mailer --example lettre_transport -- 127.0.0.1 2525
//! ```
//!
//! With lettre alone the lines marked `// lettre:` would read
//! `AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port).build()`, and a
//! server closing the connection would fail the send; here it reconnects and resends.

use mailer::ReconnectingTransport;
use mailer::lettre::message::header::ContentType;
use mailer::lettre::message::{Attachment, MultiPart};
use mailer::lettre::{AsyncTransport, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(host), Some(port)) = (args.next(), args.next()) else {
        return Err("usage: lettre_transport HOST PORT".into());
    };
    let port: u16 = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;

    let message = Message::builder()
        .from("Service <service@example.com>".parse()?)
        .to("Customer <customer@example.org>".parse()?)
        .subject("Your invoice")
        .multipart(
            MultiPart::mixed()
                .multipart(MultiPart::alternative_plain_html(
                    "Your invoice is attached.".to_owned(),
                    "<p>Your invoice is <b>attached</b>.</p>".to_owned(),
                ))
                .singlepart(
                    Attachment::new("invoice.txt".to_owned())
                        .body(b"Total: 42.00\n".to_vec(), ContentType::TEXT_PLAIN),
                ),
        )?;

    let mailer = ReconnectingTransport::builder_dangerous(host) // lettre: AsyncSmtpTransport
        .port(port)
        .build()?; // lettre: infallible; here the settings are checked
    let sent = mailer.send(message).await?;
    println!(
        "sent {} after {} attempt(s)",
        sent.message_id, sent.attempts
    );
    mailer.shutdown().await;
    Ok(())
}
