//! Shared helpers of the HTTP tests: the API served on `127.0.0.1:0` by `http::serve` (its
//! real listener, limits and checks), and a raw HTTP/1.1 client, so the tests see the exact
//! bytes a client on the wire sees. Requests name the server in `Host` as curl does
//! (`127.0.0.1:PORT`); `request_with` sends other headers (`Host`, `Origin`) as given.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::Bytes;
use mail_test_srv::store::NewMessage;
use mail_test_srv::{Config, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The HTTP API of a fresh instance (seed 42), served in the background.
pub struct Api {
    pub addr: SocketAddr,
    pub state: State,
}

impl Api {
    pub async fn start() -> Api {
        Api::with_config(Config::ephemeral()).await
    }

    pub async fn with_config(config: Config) -> Api {
        let state = State::new(config, 42);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = state.clone();
        tokio::spawn(async move {
            mail_test_srv::http::serve(listener, served, CancellationToken::new()).await
        });
        Api { addr, state }
    }

    /// Stores a message as an SMTP session would.
    pub fn insert(&self, from: &str, to: &[&str], data: &str) -> u64 {
        self.state.store().insert(NewMessage {
            from: from.into(),
            recipients: to.iter().map(|s| s.to_string()).collect(),
            data: Bytes::copy_from_slice(data.as_bytes()),
            received: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
            tls: true,
            auth_user: Some("user".into()),
            connection: 7,
            lenient_lines: Vec::new(),
        })
    }

    /// Sends one request (`Connection: close`) and reads the whole response.
    pub async fn request(&self, method: &str, target: &str, body: &[u8]) -> Response {
        let host = format!("Host: {}\r\n", self.addr);
        let json = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/json\r\n"
        };
        self.request_with(method, target, &format!("{host}{json}"), body)
            .await
    }

    /// Like [`Api::request`] with exactly these header lines (each ending in CRLF; no
    /// `Host` unless given) besides `Connection` and `Content-Length`.
    pub async fn request_with(
        &self,
        method: &str,
        target: &str,
        headers: &str,
        body: &[u8],
    ) -> Response {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "{method} {target} HTTP/1.1\r\n{headers}Connection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        Response::parse(&raw)
    }

    pub async fn get(&self, target: &str) -> Response {
        self.request("GET", target, b"").await
    }

    /// GET and parse the body as JSON, asserting the status.
    pub async fn get_json(&self, target: &str, status: u16) -> serde_json::Value {
        let r = self.get(target).await;
        assert_eq!(r.status, status, "GET {target}: {}", r.text());
        r.json()
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("response has a header section");
        let head = std::str::from_utf8(&raw[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// Asserts a JSON error response: this status, `{"error": "..."}` containing `want`.
    pub fn assert_error(&self, status: u16, want: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{:?}",
            self.headers
        );
        let error = self.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            error.contains(want),
            "error {error:?} should contain {want:?}"
        );
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 4 + size..];
    }
}
