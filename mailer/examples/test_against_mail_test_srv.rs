//! Testing a service of your own against an in-process mail-test-srv that closes the
//! connection on 35% of the MAIL commands: the service (a welcome mailer, written against
//! lettre's `AsyncTransport`) must still deliver each welcome exactly once.
//!
//! ```text
//! cargo run -p mailer --example test_against_mail_test_srv
//! ```
//!
//! The same code is a `#[tokio::test]` in your crate: `mail-test-srv` as a dev-dependency,
//! the server on 127.0.0.1:0, its store queried in-process (no HTTP needed).

use std::collections::HashMap;

use mail_test_srv::store::Filter;
use mailer::ReconnectingTransport;
use mailer::lettre::message::{Mailbox, MultiPart};
use mailer::lettre::{AsyncTransport, Message};

/// The service under test: sends a welcome to each new user, through any lettre transport.
struct WelcomeMailer<T> {
    transport: T,
    from: Mailbox,
}

impl<T> WelcomeMailer<T>
where
    T: AsyncTransport + Sync,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    async fn welcome(&self, name: &str, email: &str) -> Result<(), Box<dyn std::error::Error>> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(name.to_owned()), email.parse()?))
            .subject(format!("Welcome, {name}!"))
            .multipart(MultiPart::alternative_plain_html(
                format!("Hello {name}, welcome aboard."),
                format!("<p>Hello <b>{name}</b>, welcome aboard.</p>"),
            ))?;
        self.transport.send(message).await?;
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server: in-process, a free port, closing on 35% of the MAIL commands.
    let server = mail_test_srv::start(mail_test_srv::Config {
        faults: vec!["mail:close:35%".parse()?],
        seed: Some(7), // the same faults on every run
        ..mail_test_srv::Config::ephemeral()
    })
    .await?;

    // The service, given the reconnecting transport.
    let service = WelcomeMailer {
        transport: ReconnectingTransport::builder_dangerous("127.0.0.1")
            .port(server.smtp_addr().port())
            .reconnect_base(std::time::Duration::from_millis(10))
            .build()?,
        from: "Team <team@example.com>".parse()?,
    };
    let users: Vec<(String, String)> = (0..20)
        .map(|n| (format!("User {n}"), format!("user{n}@example.org")))
        .collect();
    for (name, email) in &users {
        service.welcome(name, email).await?;
    }

    // What the test checks: one welcome per user, with the right subject.
    let store = server.state().store();
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for message in store.messages(&Filter::default(), 0, usize::MAX) {
        for recipient in &message.recipients {
            *per_user.entry(recipient.clone()).or_default() += 1;
        }
        let subject = message.subject.as_deref().unwrap_or_default();
        assert!(subject.starts_with("Welcome, User "), "{subject}");
    }
    for (_, email) in &users {
        assert_eq!(per_user.get(email), Some(&1), "{email}: {per_user:?}");
    }
    let resends = service.transport.counters().retries_total();
    println!(
        "ok: {} welcomes, each delivered once, {resends} resends after the server closed on us",
        users.len()
    );
    server.shutdown().await;
    Ok(())
}
