//! An outside service sending mail through `mailer::ReconnectingTransport`: COUNT lettre
//! messages, each with a text and an HTML part and an attachment, to the SMTP server at
//! HOST:PORT, from four tasks over a pool of two sessions. Each message as lettre formatted
//! it is written to OUT_DIR/<n>.eml, so a test can compare it with what the server stored.
//!
//! Usage: `external-user HOST PORT OUT_DIR COUNT`

use std::path::PathBuf;
use std::time::Duration;

use mailer::ReconnectingTransport;
use mailer::lettre::message::header::ContentType;
use mailer::lettre::message::{Attachment, MultiPart};
use mailer::lettre::{AsyncTransport, Message};

const TASKS: usize = 4;

fn message(n: usize) -> Result<Message, Box<dyn std::error::Error + Send + Sync>> {
    let attachment: Vec<u8> = (0..4096u32).map(|i| (i * 7 + n as u32) as u8).collect();
    Ok(Message::builder()
        .from("External Service <service@example.com>".parse()?)
        .to(format!("customer{n}@example.org").parse()?)
        .subject(format!("Statement {n}"))
        .message_id(None)
        .multipart(
            MultiPart::mixed()
                .multipart(MultiPart::alternative_plain_html(
                    format!("Statement {n} is attached.\n.A line with a leading dot.\n"),
                    format!("<p>Statement <b>{n}</b> is attached.</p>"),
                ))
                .singlepart(
                    Attachment::new(format!("statement-{n}.bin"))
                        .body(attachment, ContentType::parse("application/octet-stream")?),
                ),
        )?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, out_dir, count] = args.as_slice() else {
        return Err("usage: external-user HOST PORT OUT_DIR COUNT".into());
    };
    let port: u16 = port.parse()?;
    let count: usize = count.parse()?;
    let out_dir = PathBuf::from(out_dir);
    std::fs::create_dir_all(&out_dir)?;

    let transport = ReconnectingTransport::builder_dangerous(host.as_str())
        .port(port)
        .pool_size(2)
        .reconnect_base(Duration::from_millis(10))
        .build()?;

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let transport = transport.clone();
        let out_dir = out_dir.clone();
        tasks.push(tokio::spawn(async move {
            for n in (task..count).step_by(TASKS) {
                let message = message(n)?;
                std::fs::write(out_dir.join(format!("{n}.eml")), message.formatted())?;
                let sent = transport.send(message).await?;
                println!("{n} {} {}", sent.message_id, sent.attempts);
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    transport.shutdown().await;
    Ok(())
}
