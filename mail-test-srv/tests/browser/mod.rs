//! A small WebDriver client for the page's browser test (and the page benchmark, which includes
//! this file by path): Debian's `chromedriver` started on a free 127.0.0.1 port, driving headless
//! `chromium` over plain W3C WebDriver HTTP+JSON with `ureq`. Chromium is told to resolve no name
//! but 127.0.0.1 and to fetch nothing in the background, so a run never touches the network.
//! The driver process is killed when the [`Browser`] is dropped.
#![allow(dead_code)]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key W3C WebDriver uses for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium's flags: headless, no sandbox (containers run as root), nothing fetched in the
/// background, and every host name but 127.0.0.1 unresolvable.
const ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1400,900",
];

/// Why a browser cannot run here, when the programs are missing: the caller skips or fails.
pub fn missing() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER]
        .iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| {
            format!(
                "{p} is not installed (Debian: apt-get install chromium chromium-driver, or run \
                 .ci/install-deps)"
            )
        })
}

/// One chromedriver process with one browser session.
pub struct Browser {
    driver: Child,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    agent: ureq::Agent,
    /// Chromium's own process, killed on drop should the driver fail to quit it.
    chromium: Option<i32>,
    /// Where `screenshot` writes.
    pub shots: PathBuf,
}

/// A WebDriver element reference.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium session; screenshots go to `shots`.
    pub fn start(shots: &Path) -> Result<Browser, String> {
        std::fs::create_dir_all(shots).map_err(|e| format!("{}: {e}", shots.display()))?;
        // chromedriver has no --port=0: take a free port from the kernel and hand it over.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{CHROMEDRIVER}: {e}"))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            session: String::new(),
            agent,
            chromium: None,
            shots: shots.to_owned(),
        };
        browser.wait_ready(&base)?;
        let created = browser.call(
            "POST",
            &format!("{base}/session"),
            Some(json!({
                "capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    // The console, for `console_errors` (chromedriver's own extension).
                    "goog:loggingPrefs": {"browser": "ALL"},
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": ARGS},
                }}
            })),
        )?;
        let id = created["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {created}"))?;
        browser.session = format!("{base}/session/{id}");
        browser.chromium = created["capabilities"]["goog:processID"]
            .as_i64()
            .and_then(|pid| i32::try_from(pid).ok());
        Ok(browser)
    }

    fn wait_ready(&mut self, base: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.driver.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!("chromedriver exited with {status}: {err}"));
            }
            if let Ok(v) = self.call("GET", &format!("{base}/status"), None)
                && v["ready"] == true
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not get ready within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One WebDriver command; its `value`, or the driver's error and message.
    fn call(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(url).call(),
            ("DELETE", _) => self.agent.delete(url).call(),
            (_, body) => self.agent.post(url).send_json(body.unwrap_or(json!({}))),
        };
        let mut response = sent.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let v: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| format!("{method} {url}: status {status}, not JSON: {e}"))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if status >= 400 {
            return Err(format!(
                "{method} {url}: {} ({})",
                value["error"].as_str().unwrap_or("error"),
                value["message"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
            ));
        }
        Ok(value)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.call(method, &format!("{}{path}", self.session), body)
    }

    /// Loads `url` and waits for its load event.
    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    /// Runs `script` (a function body: `return ...`) in the page with `args`.
    pub fn exec(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs `script`, whose last argument is the callback to call with the result.
    pub fn exec_async(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Evaluates a JavaScript expression.
    pub fn eval(&self, expr: &str) -> Result<Value, String> {
        self.exec(&format!("return ({expr});"), Vec::new())
    }

    /// Polls a JavaScript expression until it is truthy; its value. Fails after `timeout`
    /// with `what` and a screenshot of the page at that moment.
    pub fn wait_for(&self, what: &str, expr: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(expr)?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                let shot = self
                    .screenshot("timeout")
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|e| e);
                return Err(format!(
                    "waited {timeout:?} for {what} (`{expr}`); screenshot: {shot}"
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Result<Element, String> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        v[ELEMENT]
            .as_str()
            .map(|id| Element(id.to_owned()))
            .ok_or_else(|| format!("no element reference for {css}: {v}"))
    }

    /// Clicks the element matching `css`, as a user would (it must be visible). A live page
    /// may re-render between the look-up and the click: then the look-up is made again.
    pub fn click(&self, css: &str) -> Result<(), String> {
        let mut tries = 0;
        loop {
            let e = self.find(css)?;
            match self.cmd("POST", &format!("/element/{}/click", e.0), None) {
                Err(err) if err.contains("stale element") && tries < 5 => tries += 1,
                other => return other.map(drop),
            }
        }
    }

    /// Types `text` into the element matching `css`, after clearing it.
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let e = self.find(css)?;
        self.cmd("POST", &format!("/element/{}/clear", e.0), None)?;
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .map(drop)
    }

    /// Saves a PNG of the viewport as `NAME.png` under [`Browser::shots`]; its path.
    pub fn screenshot(&self, name: &str) -> Result<PathBuf, String> {
        let v = self.cmd("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// The page's console entries of level SEVERE since the last call: uncaught exceptions,
    /// Content-Security-Policy violations, failed requests (chromedriver's `/se/log`).
    pub fn console_errors(&self) -> Result<Vec<String>, String> {
        let v = self.cmd("POST", "/se/log", Some(json!({"type": "browser"})))?;
        Ok(v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Resizes the window (CSS pixels).
    pub fn window_size(&self, width: u32, height: u32) -> Result<(), String> {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .map(drop)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Deleting the session quits Chromium; killing the driver alone would leave it running.
        let quit = !self.session.is_empty() && self.call("DELETE", &self.session, None).is_ok();
        if !quit && let Some(pid) = self.chromium.and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
