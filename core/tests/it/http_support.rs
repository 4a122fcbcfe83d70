//! A loopback HTTP/1.1 responder for the HTTP and OAuth source tests: a real socket, one
//! request per connection, no HTTP library between the test and the bytes.

use std::sync::Arc;

use parking_lot::Mutex;

/// [`serve_with_headers`] answering `(status, JSON body)` with no extra headers.
#[allow(dead_code)] // used by the `logs` binary only
pub(crate) async fn serve(
    reply: impl Fn(&str) -> (u16, String) + Send + 'static,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    serve_with_headers(move |request| {
        let (status, body) = reply(request);
        (status, Vec::new(), body)
    })
    .await
}

/// A loopback HTTP/1.1 responder on a real socket: one request per connection, answered by
/// `reply(request text)` with `(status, extra headers, JSON body)`. Returns its port and the
/// requests it saw.
pub(crate) async fn serve_with_headers(
    reply: impl Fn(&str) -> (u16, Vec<(String, String)>, String) + Send + 'static,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let request = loop {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                let Some(end) = text.find("\r\n\r\n") else {
                    continue;
                };
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    break Some(text);
                }
            };
            let Some(request) = request else { continue };
            let (status, headers, body) = reply(&request);
            let headers: String = headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}\r\n"))
                .collect();
            log.lock().push(request);
            let reason = if status < 400 { "OK" } else { "Error" };
            let response = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n{headers}\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (port, seen)
}
