//! A tiny fake HTTP server on loopback: answers a fixed list of canned replies, one per connection
//! (`Connection: close`), and records each request so tests can check what the client sent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A canned reply.
pub struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// Content-Length to announce when it is not the body's (a reply cut short).
    announce: Option<usize>,
}

/// `{"result": result, "status": "ok", "time": 0.001}` with 200.
pub fn ok(result: Value) -> Reply {
    let body = serde_json::json!({"result": result, "status": "ok", "time": 0.001});
    Reply { status: 200, content_type: "application/json", body: body.to_string().into_bytes(), announce: None }
}

/// Qdrant's error shape with `status`.
pub fn error(status: u16, message: &str) -> Reply {
    let body = serde_json::json!({"status": {"error": message}, "time": 0.0});
    Reply { status, content_type: "application/json", body: body.to_string().into_bytes(), announce: None }
}

/// Any body.
pub fn raw(status: u16, content_type: &'static str, body: &[u8]) -> Reply {
    Reply { status, content_type, body: body.to_vec(), announce: None }
}

/// A 200 that announces `announce` bytes but sends only `body`, then closes.
pub fn cut_short(body: &[u8], announce: usize) -> Reply {
    Reply { status: 200, content_type: "application/octet-stream", body: body.to_vec(), announce: Some(announce) }
}

/// One request as received.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A running fake server.
pub struct Fake {
    pub url: String,
    handle: JoinHandle<Vec<Request>>,
}

impl Fake {
    /// Serves `replies` in order, one connection each, then stops (or after 30 s without a connection).
    pub fn start(replies: Vec<Reply>) -> Fake {
        Fake::start_on("127.0.0.1:0", replies)
    }

    /// [`Fake::start`] on a given address (`host:port`), e.g. the one an earlier fake used.
    pub fn start_on(addr: &str, replies: Vec<Reply>) -> Fake {
        let listener = TcpListener::bind(addr).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for reply in replies {
                let deadline = Instant::now() + Duration::from_secs(30);
                let stream = loop {
                    match listener.accept() {
                        Ok((s, _)) => break s,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => return seen,
                    }
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                match serve_one(stream, &reply) {
                    Some(req) => seen.push(req),
                    None => return seen,
                }
            }
            seen
        });
        Fake { url, handle }
    }

    /// Waits for the server to finish and returns the requests it received.
    pub fn requests(self) -> Vec<Request> {
        self.handle.join().unwrap()
    }
}

fn serve_one(stream: TcpStream, reply: &Reply) -> Option<Request> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let mut body = Vec::new();
    if let Some(len) = headers.get("content-length") {
        body.resize(len.parse().ok()?, 0);
        r.read_exact(&mut body).ok()?;
    } else if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let mut w = stream;
    let head = format!(
        "HTTP/1.1 {} Whatever\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.announce.unwrap_or(reply.body.len())
    );
    w.write_all(head.as_bytes()).ok()?;
    w.write_all(&reply.body).ok()?;
    w.flush().ok()?;
    Some(Request { method, path, headers, body })
}
