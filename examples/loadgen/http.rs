//! A small HTTP/1.1 client with keep-alive, enough for Recess's REST API:
//! requests with a JSON body, responses with `Content-Length` or chunked.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::{Result, bail};

const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest response body read (a `/metrics` page is a few KB).
const MAX_BODY: usize = 16 << 20;

/// One keep-alive connection to a node.
/// The REST API key the tool starts its nodes with and sends.
pub const API_KEY: &str = "loadgen";

pub struct HttpConn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl HttpConn {
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn { addr, stream: None }
    }

    /// Sends one request and reads the whole response: `(status, body)`.
    /// Reconnects when the previous response closed the connection.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>)> {
        match tokio::time::timeout(TIMEOUT, self.exchange(method, path, body)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                bail!("{method} {path}: no answer within {TIMEOUT:?}")
            }
        }
    }

    /// `POST` of a JSON body; fails unless the status is 2xx.
    pub async fn post_json(&mut self, path: &str, body: &[u8]) -> Result<Vec<u8>> {
        let (status, answer) = self.request("POST", path, Some(body)).await?;
        if !(200..300).contains(&status) {
            bail!(
                "POST {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        Ok(answer)
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>)> {
        let stream = match &mut self.stream {
            Some(s) => s,
            None => {
                let s = TcpStream::connect(self.addr).await?;
                s.set_nodelay(true)?;
                self.stream.insert(BufReader::new(s))
            }
        };
        let body = body.unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {API_KEY}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        stream.get_mut().write_all(&bytes).await?;

        let mut line = String::new();
        read_line(stream, &mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad HTTP status line {line:?}"))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            read_line(stream, &mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse()?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let body = if chunked {
            read_chunked(stream).await?
        } else if let Some(n) = length {
            if n > MAX_BODY {
                bail!("response body of {n} bytes is too large");
            }
            let mut body = vec![0; n];
            stream.read_exact(&mut body).await?;
            body
        } else {
            close = true;
            let mut body = Vec::new();
            stream.take(MAX_BODY as u64).read_to_end(&mut body).await?;
            body
        };
        if close {
            self.stream = None;
        }
        Ok((status, body))
    }
}

async fn read_line(stream: &mut BufReader<TcpStream>, line: &mut String) -> Result<()> {
    line.clear();
    let n = (&mut *stream).take(64 * 1024).read_line(line).await?;
    if n == 0 {
        bail!("the server closed the connection");
    }
    Ok(())
}

async fn read_chunked(stream: &mut BufReader<TcpStream>) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        read_line(stream, &mut line).await?;
        let size_text = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if body.len() + size > MAX_BODY {
            bail!("chunked response is too large");
        }
        let start = body.len();
        body.resize(start + size, 0);
        stream.read_exact(&mut body[start..]).await?;
        read_line(stream, &mut line).await?;
        if size == 0 {
            return Ok(body);
        }
    }
}

/// One `GET`, on a fresh connection; the body as text (2xx only).
pub async fn get_text(addr: SocketAddr, path: &str) -> Result<String> {
    let (status, body) = HttpConn::new(addr).request("GET", path, None).await?;
    if !(200..300).contains(&status) {
        bail!("GET {path}: HTTP {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
