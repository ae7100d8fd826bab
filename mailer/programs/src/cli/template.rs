//! Templates of user-facing mail, shared by both programs: plain text, strict about undefined
//! variables, and bounded. A template is the user's input, and a loop of 10^10 steps or an
//! output of gigabytes must end in a clear error (exit 2), not in a machine out of memory.
//!
//! Two bounds: minijinja's fuel (each instruction and every 64 bytes of data a render
//! creates cost about one unit, so it bounds time and memory alike) and a cap on the
//! rendered text, checked while it is written, so a render never holds more than the cap.

use std::io;

use anyhow::anyhow;
use minijinja::{Environment, ErrorKind, Value};

use super::flags::parse_size;

/// Default fuel per render: about 10 million instructions, well under a second of work,
/// and far more than a mail template needs (a 64 MiB literal body costs about 1 million).
pub const DEFAULT_FUEL: u64 = 10_000_000;
/// Default cap of one rendered subject or body.
pub const DEFAULT_MAX_OUTPUT: &str = "64MiB";

/// The template flags both programs take.
#[derive(Debug, Clone, clap::Args)]
pub struct TemplateArgs {
    /// Work one template rendering may do (minijinja fuel: about one unit per instruction and
    /// per 64 bytes of data) before it is stopped as a runaway loop.
    #[arg(long, default_value_t = DEFAULT_FUEL, value_name = "UNITS")]
    pub template_fuel: u64,
    /// Largest rendered subject or body (e.g. 64MiB, 500KB, 1000000).
    #[arg(long, value_parser = parse_size, default_value = DEFAULT_MAX_OUTPUT, value_name = "SIZE")]
    pub template_max_output: u64,
}

impl Default for TemplateArgs {
    fn default() -> Self {
        TemplateArgs {
            template_fuel: DEFAULT_FUEL,
            // The default is a constant that parses.
            template_max_output: parse_size(DEFAULT_MAX_OUTPUT).unwrap_or(64 << 20),
        }
    }
}

/// A set of named templates and the bounds of rendering them.
#[derive(Debug)]
pub struct MailTemplates {
    env: Environment<'static>,
    max_output: u64,
}

impl MailTemplates {
    /// An empty set with these bounds: plain text (no HTML escaping), undefined variables
    /// an error (a misspelt name is not an empty hole in a message), trailing newline kept.
    pub fn new(limits: &TemplateArgs) -> MailTemplates {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_fuel(Some(limits.template_fuel));
        // Only the default delimiters are configured, which cannot be refused.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        MailTemplates {
            env,
            max_output: limits.template_max_output,
        }
    }

    /// Compiles a template; a syntax error names the template and the line.
    pub fn add(&mut self, name: &str, source: String) -> anyhow::Result<()> {
        self.env
            .add_template_owned(name.to_owned(), source)
            .map_err(|e| template_error(&e))
    }

    /// Renders `name`, or says why not (naming the template, and the line when known).
    pub fn render(&self, name: &str, context: Value) -> anyhow::Result<String> {
        let mut out = Capped::new(Vec::new(), self.max_output);
        self.render_into(name, context, &mut out)?;
        // minijinja writes whole `str`s, so the bytes are UTF-8.
        String::from_utf8(out.inner).map_err(|_| anyhow!("template {name}: output is not UTF-8"))
    }

    /// Renders `name` into nothing, keeping only the size: finds every error a real render
    /// would meet without holding the output.
    pub fn check(&self, name: &str, context: Value) -> anyhow::Result<u64> {
        let mut out = Capped::new(io::sink(), self.max_output);
        self.render_into(name, context, &mut out)?;
        Ok(out.written)
    }

    fn render_into<W: io::Write>(
        &self,
        name: &str,
        context: Value,
        out: &mut Capped<W>,
    ) -> anyhow::Result<()> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| template_error(&e))?;
        match template.render_captured_to(context, &mut *out) {
            Ok(_) => Ok(()),
            Err(_) if out.over => Err(anyhow!(
                "template {name}: the output is larger than {} bytes (--template-max-output)",
                self.max_output
            )),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(anyhow!(
                "template {name}{}: rendering took more work than --template-fuel allows ({}); \
                 an endless or very long loop?",
                e.line().map(|l| format!(", line {l}")).unwrap_or_default(),
                self.env.fuel().unwrap_or_default()
            )),
            Err(e) => Err(template_error(&e)),
        }
    }
}

/// A writer that refuses to grow past `cap` bytes (and remembers that it refused, since
/// minijinja reports any write error as its own generic one).
struct Capped<W> {
    inner: W,
    cap: u64,
    written: u64,
    over: bool,
}

impl<W> Capped<W> {
    fn new(inner: W, cap: u64) -> Capped<W> {
        Capped {
            inner,
            cap,
            written: 0,
            over: false,
        }
    }
}

impl<W: io::Write> io::Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.cap {
            self.over = true;
            return Err(io::Error::other("template output cap reached"));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A template error as one line naming the template and the line: `template body.txt, line 3: ...`.
pub fn template_error(error: &minijinja::Error) -> anyhow::Error {
    let name = error.name().unwrap_or("(template)");
    let what = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    match error.line() {
        Some(line) => anyhow!("template {name}, line {line}: {what}"),
        None => anyhow!("template {name}: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(fuel: u64, max_output: u64, source: &str) -> MailTemplates {
        let mut t = MailTemplates::new(&TemplateArgs {
            template_fuel: fuel,
            template_max_output: max_output,
        });
        t.add("body.txt", source.to_owned()).expect("compiles");
        t
    }

    #[test]
    fn template_errors_name_template_and_line() {
        let mut t = MailTemplates::new(&TemplateArgs::default());
        let err = t
            .add("body.txt", "line one\n{{ oops(\n".to_owned())
            .unwrap_err();
        assert!(
            err.to_string().starts_with("template body.txt, line 2:"),
            "{err}"
        );
    }

    #[test]
    fn a_runaway_loop_runs_out_of_fuel() {
        let t = templates(
            DEFAULT_FUEL,
            1 << 30,
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        );
        let err = t.check("body.txt", Value::UNDEFINED).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("template body.txt"), "{text}");
        assert!(text.contains("--template-fuel"), "{text}");
    }

    #[test]
    fn output_past_the_cap_is_refused_while_rendering() {
        let t = templates(
            DEFAULT_FUEL,
            1000,
            "{% for i in range(100) %}0123456789x{% endfor %}",
        );
        for result in [
            t.render("body.txt", Value::UNDEFINED).map(drop),
            t.check("body.txt", Value::UNDEFINED).map(drop),
        ] {
            let text = result.unwrap_err().to_string();
            assert!(text.contains("larger than 1000 bytes"), "{text}");
            assert!(text.contains("--template-max-output"), "{text}");
        }
        let fits = templates(
            DEFAULT_FUEL,
            1100,
            "{% for i in range(100) %}0123456789x{% endfor %}",
        );
        assert_eq!(
            fits.render("body.txt", Value::UNDEFINED).unwrap().len(),
            1100
        );
        assert_eq!(fits.check("body.txt", Value::UNDEFINED).unwrap(), 1100);
    }

    #[test]
    fn a_big_literal_body_fits_the_default_bounds() {
        let body = "x".repeat(50_000_000);
        let t = templates(
            DEFAULT_FUEL,
            TemplateArgs::default().template_max_output,
            &body,
        );
        assert_eq!(t.check("body.txt", Value::UNDEFINED).unwrap(), 50_000_000);
    }
}
