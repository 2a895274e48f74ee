//! A minimal blocking HTTP/1.1 client over `std::net::TcpStream`, for tests that play a browser
//! or poke a server with hand-made requests.
//!
//! `request` sends `METHOD target HTTP/1.1` with `Host` taken from the URL (unless given),
//! `Connection: close` (unless given) and a `Content-Length` for a body, then reads one
//! response (framed by `Content-Length`, chunked encoding, or EOF) with a 10 s read timeout.
//! It follows no redirects and panics on connection errors; `try_request` returns them.
//! `raw` sends bytes as they are, for malformed requests. The request target is the URL as
//! the `url` crate normalises it: use `raw` for paths that must reach the server unaltered.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use url::{Position, Url};

/// Read (and connect and write) timeout.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// In order, names as received.
    pub headers: Vec<(String, String)>,
    /// The decoded body (chunked encoding removed), lossily as UTF-8.
    pub body: String,
}

impl Response {
    /// The first header with this name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics (showing the body) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", self.body))
    }
}

/// `GET url`.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Response {
    request("GET", url, headers, "")
}

/// Sends one request; panics if the server cannot be reached or answers garbage.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]>,
) -> Response {
    try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// `request` that returns connection and protocol errors (e.g. a refused connection).
pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]>,
) -> io::Result<Response> {
    let parsed = Url::parse(url).map_err(|e| invalid_input(format!("bad URL {url}: {e}")))?;
    if parsed.scheme() != "http" {
        return Err(invalid_input(format!("only http:// URLs: {url}")));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| invalid_input(format!("no host in {url}")))?;
    let host_header = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let target = &parsed[Position::BeforePath..Position::AfterQuery];
    let body = body.as_ref();
    let given = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));

    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !given("host") {
        head.push_str(&format!("Host: {host_header}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !given("connection") {
        head.push_str("Connection: close\r\n");
    }
    let needs_length = !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH");
    if needs_length && !given("content-length") && !given("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");

    let mut stream = connect(&parsed)?;
    let sent = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush());
    // A server may answer (431, 413, …) and close before reading it all: prefer its answer.
    match (read_message(&mut stream, method == "HEAD"), sent) {
        (Ok(raw), _) if !raw.is_empty() => parse_response(&raw, method == "HEAD"),
        (_, Err(e)) | (Err(e), Ok(())) => Err(e),
        (Ok(_), Ok(())) => Err(invalid_data("connection closed without a response")),
    }
}

/// Sends `bytes` as they are to `addr` (`"127.0.0.1:PORT"`) and returns what comes back, until
/// the server closes, one complete response arrived, or 10 s pass. Panics if it cannot connect.
pub fn raw(addr: &str, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(TIMEOUT))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(TIMEOUT))
        .expect("write timeout");
    // The server may answer and close before it has read everything: keep what it says.
    let _ = stream.write_all(bytes).and_then(|()| stream.flush());
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if message_len(&buf, false).is_some() {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// `application/x-www-form-urlencoded` body from pairs.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn connect(url: &Url) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in url.socket_addrs(|| Some(80))? {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(stream) => {
                stream.set_read_timeout(Some(TIMEOUT))?;
                stream.set_write_timeout(Some(TIMEOUT))?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Reads until one whole response is in, or EOF.
fn read_message(stream: &mut TcpStream, head_only: bool) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(len) = message_len(&buf, head_only) {
            buf.truncate(len);
            return Ok(buf);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The length of the complete response at the start of `buf`, if it is all there and framed
/// by `Content-Length` or chunked encoding (a response read to EOF gives `None`).
fn message_len(buf: &[u8], head_only: bool) -> Option<usize> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    let (status, headers) = parse_head(&buf[..head_end]).ok()?;
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Some(head_end);
    }
    let body = &buf[head_end..];
    if is_chunked(&headers) {
        // Cheap test first: a complete chunked body ends with the last chunk (no trailers
        // here), so a large body is not decoded again after every read.
        if !body.ends_with(b"0\r\n\r\n") {
            return None;
        }
        return dechunk(body).map(|(_, used)| head_end + used);
    }
    let length: usize = content_length(&headers)?;
    (body.len() >= length).then_some(head_end + length)
}

fn parse_response(buf: &[u8], head_only: bool) -> io::Result<Response> {
    let head_end =
        find(buf, b"\r\n\r\n").ok_or_else(|| invalid_data("response ended inside the header"))? + 4;
    let (status, headers) = parse_head(&buf[..head_end])?;
    let rest = &buf[head_end..];
    let body = if head_only {
        Vec::new()
    } else if is_chunked(&headers) {
        dechunk(rest)
            .ok_or_else(|| invalid_data("truncated chunked body"))?
            .0
    } else if let Some(length) = content_length(&headers) {
        if rest.len() < length {
            return Err(invalid_data("body shorter than Content-Length"));
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn parse_head(head: &[u8]) -> io::Result<(u16, Vec<(String, String)>)> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.") {
        return Err(invalid_data(format!("bad status line {status_line:?}")));
    }
    let status = code
        .parse()
        .map_err(|_| invalid_data(format!("bad status line {status_line:?}")))?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((status, headers))
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    })
}

fn content_length(headers: &[(String, String)]) -> Option<usize> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
}

/// Decodes a chunked body: (data, bytes consumed including the trailer), or `None` if incomplete.
fn dechunk(mut body: &[u8]) -> Option<(Vec<u8>, usize)> {
    let start = body.len();
    let mut data = Vec::new();
    loop {
        let line_end = find(body, b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let end = find(body, b"\r\n")?;
                body = &body[end + 2..];
                if end == 0 {
                    return Some((data, start - body.len()));
                }
            }
        }
        if body.len() < size + 2 {
            return None;
        }
        data.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn invalid_data(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}
