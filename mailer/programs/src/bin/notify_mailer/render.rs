//! The subject and body of each recipient's message, from the two templates, within the
//! template bounds (`--template-fuel`, `--template-max-output`).
//!
//! Rendered one message at a time, when a worker is about to send it, so a run holds at
//! most `--parallel-sends` rendered messages, whatever the list's length. Every message is
//! first rendered into nothing (`check_all`) so that a template error or a bad row stops
//! the program before anything is sent.

use std::path::Path;

use anyhow::anyhow;
use mailer_programs::cli::{Fatal, MailTemplates, TemplateArgs};
use minijinja::Value;
use minijinja::value::Serde;

use crate::recipients::Recipient;
use crate::send::Message;

const SUBJECT: &str = "--subject";

/// The compiled templates.
#[derive(Debug)]
pub struct Renderer {
    templates: MailTemplates,
    body: String,
}

impl Renderer {
    /// Reads and compiles the body file and the subject; any error is a usage error.
    pub fn load(body_file: &Path, subject: &str, limits: &TemplateArgs) -> Result<Renderer, Fatal> {
        let text = std::fs::read_to_string(body_file).map_err(|e| {
            Fatal::usage(anyhow!(
                "cannot read the body template {}: {e}",
                body_file.display()
            ))
        })?;
        let body = body_file.display().to_string();
        let mut templates = MailTemplates::new(limits);
        templates.add(&body, text).map_err(Fatal::usage)?;
        templates
            .add(SUBJECT, subject.to_owned())
            .map_err(Fatal::usage)?;
        Ok(Renderer { templates, body })
    }

    /// Renders every recipient's message into nothing: the first error, naming the
    /// template, the line and the recipient, is a usage error (exit 2, nothing sent).
    pub fn check_all(&self, recipients: &[Recipient]) -> Result<(), Fatal> {
        for r in recipients {
            let context = context(r);
            for name in [SUBJECT, self.body.as_str()] {
                self.templates
                    .check(name, context.clone())
                    .map_err(|e| Fatal::usage(anyhow!("{e} (rendering for {})", r.address)))?;
            }
        }
        Ok(())
    }

    /// One recipient's message.
    pub fn render(&self, r: &Recipient) -> anyhow::Result<Message> {
        let context = context(r);
        let subject = self.templates.render(SUBJECT, context.clone())?;
        Ok(Message {
            address: r.address.clone(),
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            body: self.templates.render(&self.body, context)?,
        })
    }
}

/// What the templates see: the first row's columns at the top level for the common
/// one-row case, all rows as `rows`, and the address as `email`.
fn context(r: &Recipient) -> Value {
    let first = r.rows.first().cloned().unwrap_or_default();
    minijinja::context! {
        email => r.address.clone(),
        rows => Value::from(Serde(&r.rows)),
        ..Value::from(Serde(&first))
    }
}
