//! The reminder's subject and body: built-in templates (embedded from `mailer/templates/`)
//! or the user's, checked at start-up against sample data so that a broken template stops
//! the program before any mail goes out.

use std::path::Path;

use mailer_programs::cli::{Fatal, MailTemplates, TemplateArgs};
use minijinja::Value;
use minijinja::value::Serde;
use serde::Serialize;

const DEFAULT_SUBJECT: &str = include_str!("../../../templates/expiration-subject.txt");
const DEFAULT_BODY: &str = include_str!("../../../templates/expiration-body.txt");

/// How many names a reminder lists before "and N more".
pub const MAX_LISTED_DOMAINS: usize = 10;

/// What the templates see.
#[derive(Debug, Clone, Serialize)]
pub struct ReminderData {
    /// The names to list (at most [`MAX_LISTED_DOMAINS`]), sorted.
    pub domains: Vec<String>,
    /// Names left out of `domains`.
    pub more_domains: usize,
    pub total_domains: usize,
    /// The soonest expiry of the certificates in the reminder, `YYYY-MM-DD` (UTC).
    pub expiration_date: String,
    /// The same instant in RFC 3339.
    pub expiration_time: String,
    /// Whole days from now until that expiry.
    pub days_left: i64,
    pub registration_id: i64,
    pub serials: Vec<String>,
}

/// The two compiled templates.
#[derive(Debug)]
pub struct Templates {
    templates: MailTemplates,
    subject: String,
    body: String,
}

impl Templates {
    /// The built-in templates, or `--subject` / `--email-template` in their place, rendered
    /// within `limits`.
    pub fn load(
        subject: Option<&str>,
        body_file: Option<&Path>,
        limits: &TemplateArgs,
    ) -> Result<Templates, Fatal> {
        let mut templates = MailTemplates::new(limits);
        let subject_name = match subject {
            Some(text) => ("--subject", text.to_owned()),
            None => ("expiration-subject.txt", DEFAULT_SUBJECT.to_owned()),
        };
        let body_name = match body_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Fatal::usage(anyhow::anyhow!(
                        "cannot read the email template {}: {e}",
                        path.display()
                    ))
                })?;
                (path.display().to_string(), text)
            }
            None => ("expiration-body.txt".to_owned(), DEFAULT_BODY.to_owned()),
        };
        templates
            .add(subject_name.0, subject_name.1)
            .map_err(Fatal::usage)?;
        templates
            .add(&body_name.0, body_name.1)
            .map_err(Fatal::usage)?;
        let templates = Templates {
            templates,
            subject: subject_name.0.to_owned(),
            body: body_name.0,
        };
        // A misspelt variable, a runaway loop or an oversized output only shows when
        // rendering: find out now, not mid-run.
        templates.render(&sample()).map_err(Fatal::usage)?;
        Ok(templates)
    }

    /// Subject (one line) and body for one reminder.
    pub fn render(&self, data: &ReminderData) -> anyhow::Result<(String, String)> {
        let subject = self
            .templates
            .render(&self.subject, Value::from(Serde(data)))?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let body = self
            .templates
            .render(&self.body, Value::from(Serde(data)))?;
        Ok((subject, body))
    }
}

fn sample() -> ReminderData {
    ReminderData {
        domains: vec!["example.com".into(), "www.example.com".into()],
        more_domains: 0,
        total_domains: 2,
        expiration_date: "2006-01-02".into(),
        expiration_time: "2006-01-02T15:04:05Z".into(),
        days_left: 10,
        registration_id: 1,
        serials: vec!["01".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_render_domains_and_date() {
        let templates = Templates::load(None, None, &TemplateArgs::default()).unwrap();
        let mut data = sample();
        data.domains = (0..10).map(|i| format!("d{i}.example")).collect();
        data.total_domains = 12;
        data.more_domains = 2;
        let (subject, body) = templates.render(&data).unwrap();
        assert_eq!(
            subject,
            "Certificate expiration notice for domain \"d0.example\" (and 11 more)"
        );
        assert!(body.contains("  d9.example\n"), "{body}");
        assert!(body.contains("(and 2 more)"), "{body}");
        assert!(body.contains("2006-01-02"), "{body}");
    }

    #[test]
    fn unknown_variable_in_subject_is_a_usage_error() {
        let err = Templates::load(
            Some("Expiry of {{ domian }}"),
            None,
            &TemplateArgs::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), mailer_programs::cli::EXIT_USAGE);
        assert!(
            err.error().to_string().contains("--subject"),
            "{:#}",
            err.error()
        );
    }

    #[test]
    fn a_runaway_subject_is_a_usage_error() {
        let err = Templates::load(
            Some(
                "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
            ),
            None,
            &TemplateArgs::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), mailer_programs::cli::EXIT_USAGE);
        let text = format!("{:#}", err.error());
        assert!(text.contains("--subject"), "{text}");
    }
}
