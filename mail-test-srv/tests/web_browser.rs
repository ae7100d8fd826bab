//! The web page (`/`) in a real browser: headless Chromium driven through chromedriver
//! (`tests/browser`), against a server started in this process on 127.0.0.1:0, with mail sent
//! by lettre. It checks what a user relies on: new mail appears without a reload; a message's
//! HTML part is shown sandboxed and its script does not run; attachments are listed and
//! download; a rule added on the switchboard fires and its event shows up live; a rule can be
//! switched off, edited (and stays off), added from a preset and deleted; an outage starts and
//! ends; a session's transcript tells the fault apart; markup in a subject stays text; search,
//! paging past 50 and deleting one message work; reset empties the lists.
//!
//! Screenshots of each step are written under Cargo's temporary directory for integration tests
//! (`target/tmp/web_browser/`) and their paths printed. Without chromium and chromedriver the test
//! is skipped with a printed reason, unless `CI` is set: then it fails.

mod browser;
mod common;

use std::path::Path;
use std::time::Duration;

use browser::Browser;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mail_test_srv::{Config, ServerHandle};
use serde_json::{Value, json};

/// Long enough for a loaded CI machine; a working page needs a fraction of it.
const WAIT: Duration = Duration::from_secs(15);

/// The HTML part: a script that would retitle the page and its parent, and mark its body.
const HTML: &str = "<html><head><title>inner</title></head><body><p id=\"hello\">Hello in \
     <b>HTML</b></p><script>document.title='pwned';try{parent.document.title='pwned'}catch(e){}\
     document.body.setAttribute('data-ran','yes');</script></body></html>";

fn ok<T>(what: &str, r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn message(subject: &str) -> Message {
    Message::builder()
        .from("Sender <sender@example.com>".parse().unwrap())
        .to("Reader <reader@example.com>".parse().unwrap())
        .subject(subject)
        .multipart(
            MultiPart::mixed()
                .multipart(MultiPart::alternative_plain_html(
                    "Hello in plain text.".to_owned(),
                    HTML.to_owned(),
                ))
                .singlepart(Attachment::new("report.csv".to_owned()).body(
                    b"a,b\n1,2\n".to_vec(),
                    ContentType::parse("text/csv").unwrap(),
                )),
        )
        .unwrap()
}

fn send(rt: &tokio::runtime::Runtime, server: &ServerHandle, subject: &str) -> Result<(), String> {
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .timeout(Some(Duration::from_secs(10)))
        .build();
    rt.block_on(mailer.send(message(subject)))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A GET on the server (what a download link or the test itself fetches): status, body.
fn fetch(server: &ServerHandle, path: &str) -> (u16, Vec<u8>, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let mut r = agent
        .get(format!("http://{}{path}", server.http_addr()))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = r.body_mut().read_to_vec().unwrap();
    (r.status().as_u16(), body, csp)
}

/// A state-changing call from another client (as curl would make it): the status.
fn call(server: &ServerHandle, method: &str, path: &str, json_body: Option<&str>) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let url = format!("http://{}{path}", server.http_addr());
    let r = match (method, json_body) {
        ("PUT", Some(body)) => agent
            .put(&url)
            .header("content-type", "application/json")
            .send(body),
        ("DELETE", None) => agent.delete(&url).call(),
        _ => panic!("unsupported {method}"),
    };
    r.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        .status()
        .as_u16()
}

fn rows(b: &Browser, tbody: &str) -> u64 {
    ok(
        "count rows",
        b.eval(&format!("document.querySelectorAll('#{tbody} tr').length")),
    )
    .as_u64()
    .unwrap_or(0)
}

fn shot(b: &Browser, name: &str) {
    let path = ok("screenshot", b.screenshot(name));
    println!("screenshot: {}", path.display());
}

/// No API error shown to the user.
fn no_error(b: &Browser) {
    let shown = ok(
        "error bar",
        b.eval("document.getElementById('error-bar').hidden ? '' : document.getElementById('error-text').textContent"),
    );
    assert_eq!(shown, json!(""), "the page shows an error");
}

#[test]
fn the_page_in_chromium() {
    if let Some(why) = browser::missing() {
        common::skip_or_fail(&why);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(common::start(Config {
        seed: Some(7),
        ..Config::ephemeral()
    }));
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_browser");
    let b = ok("start chromium", Browser::start(&shots));
    let base = format!("http://{}", server.http_addr());

    // The page loads, the stream connects, the lists are empty.
    ok("open the page", b.goto(&format!("{base}/")));
    ok(
        "stream connected",
        b.wait_for(
            "the live stream",
            "document.getElementById('conn-status').dataset.state === 'live'",
            WAIT,
        ),
    );
    assert_eq!(
        ok("title", b.eval("document.title")),
        json!("mail-test-srv")
    );
    assert_eq!(rows(&b, "msg-rows"), 0);
    // The console check at the end sees what the page logs: a probe shows up, then is taken.
    ok("probe", b.eval("console.error('console probe') ?? true"));
    let probe = ok("console", b.console_errors());
    assert!(
        probe.iter().any(|m| m.contains("console probe")),
        "the console log is not readable: {probe:?}"
    );
    // A marker that a reload would lose.
    ok("marker", b.eval("(window.__sameDocument = 42)"));

    // New mail appears without a reload.
    ok("send", send(&rt, &server, "Quarterly report"));
    ok(
        "the message in the list",
        b.wait_for(
            "the new row",
            "document.querySelectorAll('#msg-rows tr').length === 1",
            WAIT,
        ),
    );
    assert_eq!(
        ok("marker", b.eval("window.__sameDocument")),
        json!(42),
        "the page reloaded"
    );
    assert_eq!(
        ok(
            "row",
            b.eval("document.querySelector('#msg-rows tr .subject').textContent")
        ),
        json!("Quarterly report")
    );

    // Open it: the HTML part sandboxed, its script not run; the attachment listed.
    ok("open the message", b.click("#msg-rows tr"));
    ok(
        "attachment listed",
        b.wait_for(
            "the attachment link",
            "document.querySelector('#msg-attachments a')?.textContent === 'report.csv'",
            WAIT,
        ),
    );
    let sandbox = ok(
        "iframe sandbox",
        b.wait_for(
            "the HTML iframe",
            "document.getElementById('msg-html')?.getAttribute('sandbox') ?? ''",
            WAIT,
        )
        .or_else(|_| b.eval("document.getElementById('msg-html')?.getAttribute('sandbox')")),
    );
    assert_eq!(
        sandbox,
        json!(""),
        "the sandbox must be empty: no allow-scripts, no allow-same-origin"
    );
    let src = ok(
        "iframe src",
        b.eval("document.getElementById('msg-html').getAttribute('src')"),
    );
    let src = src.as_str().unwrap().to_owned();
    assert!(src.ends_with("/html"), "{src}");
    // Wait for the frame to have loaded, then check the script had no effect anywhere.
    ok(
        "frame loaded",
        b.exec_async(
            "const f = document.getElementById('msg-html'); const done = arguments[0]; \
             const probe = () => { try { f.contentDocument; } catch (e) {} done(true); }; \
             if (f.dataset.loaded) probe(); else f.addEventListener('load', probe); \
             setTimeout(probe, 3000);",
            Vec::new(),
        ),
    );
    assert_eq!(
        ok("title", b.eval("document.title")),
        json!("mail-test-srv"),
        "the message's script ran"
    );
    // The frame is cross-origin to the page (opaque origin): the page cannot reach into it.
    assert_eq!(
        ok(
            "frame isolation",
            b.eval("document.getElementById('msg-html').contentDocument === null")
        ),
        json!(true),
        "the sandboxed frame shares the page's origin"
    );
    let (status, body, csp) = fetch(&server, &src);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Hello in"));
    let csp = csp.expect("the HTML part comes with its own Content-Security-Policy");
    assert!(
        csp.contains("script-src 'none'") || csp.contains("default-src 'none'"),
        "{csp}"
    );
    let href = ok(
        "attachment href",
        b.eval("document.querySelector('#msg-attachments a').getAttribute('href')"),
    );
    let (status, body, _) = fetch(&server, href.as_str().unwrap());
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"a,b\n1,2\n"[..]),
        "the attachment link"
    );
    ok("text part", b.click("#part-text"));
    assert_eq!(
        ok(
            "text",
            b.eval("document.getElementById('msg-text').textContent.trim()")
        ),
        json!("Hello in plain text.")
    );
    ok("raw", b.click("#part-raw"));
    // The raw source is shown as text: the script tag is visible, not parsed.
    ok(
        "raw source",
        b.wait_for(
            "the raw source",
            "document.getElementById('msg-raw')?.textContent.includes('<script>')",
            WAIT,
        ),
    );
    assert_eq!(
        ok(
            "no script elements",
            b.eval("document.querySelectorAll('#msg-part script').length")
        ),
        json!(0)
    );
    ok("html again", b.click("#part-html"));
    no_error(&b);
    shot(&b, "1-message");

    // The switchboard: add a rule from the form; it fires on the next delivery and the event
    // shows up in the timeline without a reload.
    ok("faults tab", b.click("#tab-faults"));
    ok("rule name", b.type_into("#rule-name", "drop-all"));
    ok("rule text", b.type_into("#rule-text", "mail:close:100%"));
    ok("add", b.click("#rule-add"));
    ok(
        "rule listed",
        b.wait_for("the new rule", "document.querySelector('#rules-rows tr[data-rule=\"drop-all\"] .rule-text')?.textContent", WAIT),
    );
    let plan = server.state().faults().snapshot();
    assert_eq!(plan.rules.len(), 1);
    assert_eq!(plan.rules[0].name.as_deref(), Some("drop-all"));
    assert_eq!(plan.rules[0].definition(), "mail:close:100%");
    assert!(
        send(&rt, &server, "Dropped").is_err(),
        "the close rule did not fire"
    );
    ok(
        "fault event",
        b.wait_for(
            "the fault event",
            "[...document.querySelectorAll('#event-rows tr')].some(tr => tr.textContent.includes('drop-all') && tr.textContent.includes('close'))",
            WAIT,
        ),
    );
    assert_eq!(
        ok("marker", b.eval("window.__sameDocument")),
        json!(42),
        "the page reloaded"
    );
    no_error(&b);
    shot(&b, "2-faults");

    // Switched off on the switchboard: kept, not firing.
    ok(
        "switch off",
        b.click("#rules-rows tr[data-rule=\"drop-all\"] .rule-toggle"),
    );
    ok(
        "rule off",
        b.wait_for("the rule shown off", "document.querySelector('#rules-rows tr[data-rule=\"drop-all\"]')?.classList.contains('off')", WAIT),
    );
    let rule = server
        .state()
        .faults()
        .rule("drop-all")
        .expect("still there");
    assert!(!rule.enabled);
    ok(
        "send with the rule off",
        send(&rt, &server, "Delivered again"),
    );
    ok(
        "second message",
        b.wait_for(
            "two rows",
            "document.querySelectorAll('#msg-rows tr').length === 2",
            WAIT,
        ),
    );

    // Sessions: the faulted session's transcript marks the fault line.
    ok("sessions tab", b.click("#tab-sessions"));
    ok(
        "sessions",
        b.wait_for(
            "three sessions",
            "document.querySelectorAll('#sess-rows tr').length >= 3",
            WAIT,
        ),
    );
    ok("faulted session", b.click("#sess-rows tr.has-faults"));
    let note = ok(
        "fault line",
        b.wait_for(
            "the fault line",
            "document.querySelector('#sess-transcript .line-note .x')?.textContent",
            WAIT,
        ),
    );
    assert!(note.as_str().unwrap().contains("mail:close:100%"), "{note}");
    let client = ok(
        "client line",
        b.eval("document.querySelector('#sess-transcript .line-c .p').textContent"),
    );
    assert_eq!(client, json!("C:"));
    let colours = ok(
        "line colours",
        b.eval(
            "['c','s','note'].map(d => getComputedStyle(document.querySelector('#sess-transcript .line-' + d)).color)",
        ),
    );
    let colours: Vec<&Value> = colours.as_array().unwrap().iter().collect();
    assert!(
        colours[0] != colours[1] && colours[1] != colours[2] && colours[0] != colours[2],
        "{colours:?}"
    );
    no_error(&b);
    shot(&b, "3-session");

    // The numbers view renders its counters.
    ok("numbers tab", b.click("#tab-numbers"));
    ok(
        "counters",
        b.wait_for(
            "the counters",
            "document.querySelector('[data-counter=\"faults injected\"] .value')?.textContent === '1'",
            WAIT,
        ),
    );
    shot(&b, "4-numbers");

    // The rest of the switchboard: edit in place (a switched-off rule stays off), a preset,
    // delete, an outage started and ended.
    ok("faults tab", b.click("#tab-faults"));
    // A rule put by another client shows up without a reload (the stream's `rules` event).
    assert_eq!(
        call(
            &server,
            "PUT",
            "/api/v1/faults/from-api",
            Some("\"data-end:accept-close:first=1\"")
        ),
        201
    );
    ok(
        "rule from the API",
        b.wait_for("the rule put elsewhere", "document.querySelector('#rules-rows tr[data-rule=\"from-api\"] .rule-text')?.textContent === 'data-end:accept-close:first=1'", WAIT),
    );
    assert_eq!(
        call(&server, "DELETE", "/api/v1/faults/from-api", None),
        204
    );
    ok(
        "rule gone",
        b.wait_for(
            "the rule deleted elsewhere gone",
            "!document.querySelector('#rules-rows tr[data-rule=\"from-api\"]')",
            WAIT,
        ),
    );
    ok(
        "edit",
        b.click("#rules-rows tr[data-rule=\"drop-all\"] .rule-edit"),
    );
    ok(
        "new text",
        b.type_into(".rule-edit-text", "rcpt:reply=550:to=bad@example.com"),
    );
    ok("save", b.click(".rule-save"));
    ok(
        "edited",
        b.wait_for("the edited rule", "document.querySelector('#rules-rows tr[data-rule=\"drop-all\"] .rule-text code')?.textContent === 'rcpt:reply=550:to=bad@example.com'", WAIT),
    );
    let rule = server.state().faults().rule("drop-all").expect("kept");
    assert_eq!(rule.definition(), "rcpt:reply=550:to=bad@example.com");
    assert!(!rule.enabled, "editing switched the rule back on");
    ok("preset", b.click("#preset-close-35"));
    ok(
        "preset added",
        b.wait_for(
            "the preset rule",
            "document.querySelector('#rules-rows tr[data-rule=\"close-chance\"]')",
            WAIT,
        ),
    );
    let rule = server.state().faults().rule("close-chance").expect("added");
    assert_eq!(rule.definition(), "mail:close:35%");
    ok(
        "delete",
        b.click("#rules-rows tr[data-rule=\"close-chance\"] .rule-delete"),
    );
    ok(
        "deleted",
        b.wait_for(
            "the rule gone",
            "!document.querySelector('#rules-rows tr[data-rule=\"close-chance\"]')",
            WAIT,
        ),
    );
    assert!(server.state().faults().rule("close-chance").is_none());
    ok("outage length", b.type_into("#outage-seconds", "30"));
    ok("outage", b.click("#outage-start"));
    ok(
        "outage shown",
        b.wait_for(
            "the outage status",
            "document.getElementById('outage-status').textContent.includes('refuse')",
            WAIT,
        ),
    );
    assert!(
        server.state().outages().status().is_some(),
        "no outage began"
    );
    ok("end outage", b.click("#outage-end"));
    ok(
        "outage over",
        b.wait_for(
            "no outage shown",
            "document.getElementById('outage-status').textContent === ''",
            WAIT,
        ),
    );
    assert!(
        server.state().outages().status().is_none(),
        "the outage did not end"
    );
    no_error(&b);

    // Messages: markup in a subject stays text; search; paging with more than a page; delete one.
    ok("messages tab", b.click("#tab-messages"));
    let hostile = "<img src=x onerror=\"document.title='xss'\"> & <b>bold</b>";
    ok("send", send(&rt, &server, hostile));
    ok(
        "hostile row",
        b.wait_for(
            "the hostile subject",
            "document.querySelectorAll('#msg-rows tr').length === 3",
            WAIT,
        ),
    );
    assert_eq!(
        ok(
            "subject",
            b.eval("document.querySelector('#msg-rows tr .subject').textContent")
        ),
        json!(hostile)
    );
    ok("open", b.click("#msg-rows tr"));
    ok(
        "opened",
        b.wait_for(
            "the subject heading",
            &format!(
                "document.getElementById('msg-subject').textContent === {}",
                json!(hostile)
            ),
            WAIT,
        ),
    );
    assert_eq!(
        ok(
            "no img",
            b.eval("document.querySelectorAll('main img, main b').length")
        ),
        json!(0)
    );
    assert_eq!(
        ok("title", b.eval("document.title")),
        json!("mail-test-srv")
    );
    ok("search", b.type_into("#msg-search", "quarterly"));
    ok(
        "searched",
        b.wait_for("one match", "document.querySelectorAll('#msg-rows tr').length === 1 && document.getElementById('msg-total').textContent === '1 match'", WAIT),
    );
    ok("clear search", b.exec("const i = document.getElementById('msg-search'); i.value = ''; i.dispatchEvent(new Event('input')); return true;", Vec::new()));
    ok(
        "all again",
        b.wait_for(
            "three rows",
            "document.querySelectorAll('#msg-rows tr').length === 3",
            WAIT,
        ),
    );
    // Deleted by another client: the list notices from the stats ticks.
    assert_eq!(call(&server, "DELETE", "/api/v1/messages/3", None), 204);
    ok(
        "deleted elsewhere",
        b.wait_for(
            "two rows",
            "document.querySelectorAll('#msg-rows tr').length === 2",
            WAIT,
        ),
    );
    for i in 0..120 {
        server
            .state()
            .store()
            .insert(mail_test_srv::store::NewMessage {
                from: format!("bulk{i}@example.com"),
                recipients: vec!["reader@example.com".into()],
                data: bytes::Bytes::from(format!("Subject: bulk {i}\r\n\r\nbody\r\n")),
                received: std::time::SystemTime::now(),
                tls: false,
                auth_user: None,
                connection: 0,
                lenient_lines: Vec::new(),
            });
    }
    ok(
        "a full page",
        b.wait_for("page 1 of 3", "document.getElementById('msg-page').textContent === 'page 1 of 3' && document.querySelectorAll('#msg-rows tr').length === 50", WAIT),
    );
    assert_eq!(
        ok(
            "newest",
            b.eval("document.querySelector('#msg-rows tr .subject').textContent")
        ),
        json!("bulk 119")
    );
    ok("older", b.click("#msg-next"));
    ok(
        "older",
        b.wait_for(
            "page 2",
            "document.getElementById('msg-page').textContent === 'page 2 of 3'",
            WAIT,
        ),
    );
    ok("older", b.click("#msg-next"));
    ok(
        "last page",
        b.wait_for("page 3 with the first messages", "document.querySelectorAll('#msg-rows tr').length === 22 && document.querySelector('#msg-rows tr:last-child .subject').textContent === 'Quarterly report'", WAIT),
    );
    ok("open the oldest", b.click("#msg-rows tr:last-child"));
    ok(
        "opened",
        b.wait_for(
            "the detail",
            "document.getElementById('msg-subject').textContent === 'Quarterly report'",
            WAIT,
        ),
    );
    ok("delete one", b.click("#msg-delete"));
    ok(
        "deleted",
        b.wait_for("one row fewer", "document.querySelectorAll('#msg-rows tr').length === 21 && document.getElementById('msg-detail').hidden", WAIT),
    );
    assert_eq!(server.state().store().len(), 121);
    assert!(
        server.state().store().get(1).is_none(),
        "message 1 still stored"
    );
    // One deleted by another client goes from the list too (the stream's `deleted` event).
    let shown = ok(
        "a shown id",
        b.eval("Number(document.querySelector('#msg-rows tr').dataset.id)"),
    );
    let shown = shown.as_u64().expect("a message id");
    assert_eq!(
        call(
            &server,
            "DELETE",
            &format!("/api/v1/messages/{shown}"),
            None
        ),
        204
    );
    ok(
        "deleted elsewhere",
        b.wait_for(
            "the row deleted elsewhere gone",
            &format!("document.querySelectorAll('#msg-rows tr').length === 20 && !document.querySelector('#msg-rows tr[data-id=\"{shown}\"]')"),
            WAIT,
        ),
    );
    no_error(&b);
    shot(&b, "5-messages");

    // Reset (a second click confirms): both lists empty, on the server too.
    ok("faults tab", b.click("#tab-faults"));
    ok("reset", b.click("#reset"));
    ok("confirm reset", b.click("#reset"));
    ok(
        "lists empty",
        b.wait_for(
            "empty lists",
            "document.querySelectorAll('#event-rows tr').length === 0 && document.querySelectorAll('#msg-rows tr').length === 0",
            WAIT,
        ),
    );
    assert!(server.state().store().is_empty());
    ok("messages tab", b.click("#tab-messages"));
    ok(
        "empty note",
        b.wait_for(
            "the empty note",
            "!document.getElementById('msg-empty').hidden",
            WAIT,
        ),
    );
    no_error(&b);
    shot(&b, "6-reset");
    println!("screenshots in {}", shots.display());
    // No script error, no request the CSP blocked, no failed request, all along.
    let errors = ok("console", b.console_errors());
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");

    // The server goes away and comes back on the same HTTP address (a restart): the page says
    // so, its stream reconnects by itself and it reloads what the new server holds.
    let http_addr = server.http_addr();
    rt.block_on(server.shutdown());
    ok(
        "server gone",
        b.wait_for(
            "the page noticing",
            "document.getElementById('conn-status').dataset.state !== 'live'",
            WAIT,
        ),
    );
    let server = rt
        .block_on(mail_test_srv::start(Config {
            smtp_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr,
            ..Config::ephemeral()
        }))
        .expect("a new server on the same HTTP address");
    ok(
        "send to the new server",
        send(&rt, &server, "after the restart"),
    );
    ok(
        "reconnected",
        b.wait_for(
            "the stream back and the new server's mail listed",
            "document.getElementById('conn-status').dataset.state === 'live' && [...document.querySelectorAll('#msg-rows tr .subject')].some((td) => td.textContent === 'after the restart')",
            WAIT,
        ),
    );
    shot(&b, "7-restarted");

    drop(b);
    rt.block_on(server.shutdown());
}
