//! Loopback networking for tests of servers in images: free ports, waiting for a listener,
//! and just enough of RESP (redis), HTTP/1.0 (nginx) and the postgres frontend protocol
//! (trust login, simple query), with `std::net` only.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Timeout for connecting, reading and writing in these helpers.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound, then released). Another process
/// could take it in between; tests accept that small race.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("cannot bind a loopback port")
        .port()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn connect(port: u16) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr(port), IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Waits until 127.0.0.1:`port` accepts connections; false if it did not within `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr(port), Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends one redis command (as a RESP array of bulk strings) and returns the reply: a simple
/// string, error or integer as its line (`+PONG`, `-ERR ...`, `:1`), a bulk string as its
/// contents (`$-1` for nil).
pub fn redis_command(port: u16, args: &[&str]) -> io::Result<String> {
    let mut stream = connect(port)?;
    stream.write_all(&resp_request(args))?;
    read_resp_reply(&mut BufReader::new(stream))
}

/// `PING`; a healthy server answers `+PONG`.
pub fn redis_ping(port: u16) -> io::Result<String> {
    redis_command(port, &["PING"])
}

fn resp_request(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_resp_reply(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "redis closed the connection without a reply",
        ));
    }
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    let Some(len) = line.strip_prefix('$') else {
        return Ok(line);
    };
    let len: i64 = len.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad bulk length {line:?}"),
        )
    })?;
    if len < 0 {
        return Ok(line);
    }
    let mut body = vec![0; len as usize + 2];
    r.read_exact(&mut body)?;
    body.truncate(len as usize);
    String::from_utf8(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code, e.g. 200.
    pub status: u16,
    /// The header lines after the status line, unparsed.
    pub headers: String,
    /// The body.
    pub body: Vec<u8>,
}

/// `GET path HTTP/1.0` to 127.0.0.1:`port`; the server closes the connection after the
/// response, so no chunked decoding or keep-alive is involved.
pub fn http_get(port: u16, path: &str) -> io::Result<HttpResponse> {
    let mut stream = connect(port)?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_http_response(&raw)
}

fn parse_http_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of HTTP headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad HTTP status line"))?;
    Ok(HttpResponse {
        status,
        headers: headers.to_string(),
        body: raw[split + 4..].to_vec(),
    })
}

/// Logs in to postgres at 127.0.0.1:`port` as `user` (trust authentication, database
/// `user`), runs `sql` with the simple query protocol and returns the rows, each column as
/// text (`None` for NULL). A server error or a password request is an `Err` with its message.
pub fn postgres_query(port: u16, user: &str, sql: &str) -> io::Result<Vec<Vec<Option<String>>>> {
    let mut stream = connect(port)?;
    stream.write_all(&pg_startup(user))?;
    let mut r = BufReader::new(stream.try_clone()?);
    // Until ReadyForQuery: AuthenticationOk, ParameterStatus, BackendKeyData.
    loop {
        let (tag, body) = pg_message(&mut r)?;
        match tag {
            b'R' if body.get(..4) == Some(&[0, 0, 0, 0]) => {}
            b'R' => {
                return Err(pg_err(
                    "the server asks for a password; the image must trust local logins",
                ))
            }
            b'E' => return Err(pg_err(&pg_error_text(&body))),
            b'Z' => break,
            _ => {}
        }
    }
    let mut query = vec![b'Q'];
    query.extend_from_slice(&(4 + sql.len() as u32 + 1).to_be_bytes());
    query.extend_from_slice(sql.as_bytes());
    query.push(0);
    stream.write_all(&query)?;
    let mut rows = Vec::new();
    let mut error = None;
    loop {
        let (tag, body) = pg_message(&mut r)?;
        match tag {
            b'D' => rows.push(pg_data_row(&body)?),
            b'E' => error = Some(pg_error_text(&body)),
            b'Z' => break,
            _ => {}
        }
    }
    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
    match error {
        Some(e) => Err(pg_err(&e)),
        None => Ok(rows),
    }
}

fn pg_err(msg: &str) -> io::Error {
    io::Error::other(format!("postgres: {msg}"))
}

fn pg_startup(user: &str) -> Vec<u8> {
    let mut params = Vec::new();
    for (k, v) in [("user", user), ("database", user)] {
        params.extend_from_slice(k.as_bytes());
        params.push(0);
        params.extend_from_slice(v.as_bytes());
        params.push(0);
    }
    params.push(0);
    let mut msg = (8 + params.len() as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    msg.extend_from_slice(&params);
    msg
}

fn pg_message(r: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0; 5];
    r.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !(4..=64 << 20).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad postgres message length {len}"),
        ));
    }
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body)?;
    Ok((head[0], body))
}

fn pg_data_row(body: &[u8]) -> io::Result<Vec<Option<String>>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "truncated postgres DataRow");
    let n = u16::from_be_bytes(body.get(..2).ok_or_else(bad)?.try_into().unwrap());
    let mut at = 2;
    let mut row = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = i32::from_be_bytes(body.get(at..at + 4).ok_or_else(bad)?.try_into().unwrap());
        at += 4;
        if len < 0 {
            row.push(None);
            continue;
        }
        let value = body.get(at..at + len as usize).ok_or_else(bad)?;
        row.push(Some(String::from_utf8_lossy(value).into_owned()));
        at += len as usize;
    }
    Ok(row)
}

/// The human-readable fields (severity, message) of an ErrorResponse.
fn pg_error_text(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .filter(|f| matches!(f.first(), Some(b'S' | b'M')))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// A one-connection server answering with `reply`; returns its port and what it received.
    fn serve_once(reply: &'static [u8]) -> (u16, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // Read the whole request: until the client pauses for 300 ms.
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0; 1024];
            while let Ok(n @ 1..) = s.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(reply).unwrap();
            got
        });
        (port, handle)
    }

    #[test]
    fn redis_ping_speaks_resp() {
        let (port, server) = serve_once(b"+PONG\r\n");
        assert_eq!(redis_ping(port).unwrap(), "+PONG");
        assert_eq!(server.join().unwrap(), b"*1\r\n$4\r\nPING\r\n");
    }

    #[test]
    fn redis_bulk_replies_are_decoded() {
        let (port, server) = serve_once(b"$5\r\nhello\r\n");
        assert_eq!(redis_command(port, &["GET", "k"]).unwrap(), "hello");
        assert_eq!(server.join().unwrap(), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        let (port, _server) = serve_once(b"$-1\r\n");
        assert_eq!(redis_command(port, &["GET", "missing"]).unwrap(), "$-1");
    }

    #[test]
    fn http_get_parses_status_headers_and_body() {
        let (port, server) =
            serve_once(b"HTTP/1.1 404 Not Found\r\nServer: x\r\nA: b\r\n\r\nno such page");
        let resp = http_get(port, "/missing").unwrap();
        assert_eq!(resp.status, 404);
        assert_eq!(resp.headers, "Server: x\r\nA: b");
        assert_eq!(resp.body, b"no such page");
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            request.starts_with("GET /missing HTTP/1.0\r\n"),
            "{request}"
        );
        assert!(parse_http_response(b"garbage").is_err());
    }

    fn pg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// A fake postgres: trust login, then one query answered with one row ("1", NULL).
    fn fake_postgres(login: Vec<u8>, answer: Vec<u8>) -> (u16, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut len = [0; 4];
            s.read_exact(&mut len).unwrap();
            let mut startup = vec![0; u32::from_be_bytes(len) as usize - 4];
            s.read_exact(&mut startup).unwrap();
            s.write_all(&login).unwrap();
            let mut query = Vec::new();
            if let Ok((b'Q', body)) = pg_message(&mut s) {
                query = body;
                s.write_all(&answer).unwrap();
            }
            [startup, query].concat()
        });
        (port, handle)
    }

    #[test]
    fn postgres_query_logs_in_and_reads_rows() {
        let login = [pg(b'R', &[0, 0, 0, 0]), pg(b'S', b"a\0b\0"), pg(b'Z', b"I")].concat();
        let row = [
            &[0u8, 2][..],
            &1i32.to_be_bytes(),
            b"1",
            &(-1i32).to_be_bytes(),
        ]
        .concat();
        let answer = [
            pg(b'T', b"..."),
            pg(b'D', &row),
            pg(b'C', b"SELECT 1\0"),
            pg(b'Z', b"I"),
        ]
        .concat();
        let (port, server) = fake_postgres(login, answer);
        let rows = postgres_query(port, "postgres", "SELECT 1, NULL").unwrap();
        assert_eq!(rows, [vec![Some("1".to_string()), None]]);
        let seen = server.join().unwrap();
        let text = String::from_utf8_lossy(&seen);
        assert!(
            text.contains("user\0postgres\0database\0postgres\0"),
            "{text:?}"
        );
        assert!(text.ends_with("SELECT 1, NULL\0"), "{text:?}");
    }

    #[test]
    fn postgres_errors_and_password_requests_are_reported() {
        let login = [pg(b'R', &[0, 0, 0, 0]), pg(b'Z', b"I")].concat();
        let answer = [
            pg(b'E', b"SERROR\0C42601\0Msyntax error\0\0"),
            pg(b'Z', b"I"),
        ]
        .concat();
        let (port, _server) = fake_postgres(login, answer);
        let err = postgres_query(port, "postgres", "SELEC").unwrap_err();
        assert!(err.to_string().contains("ERROR: syntax error"), "{err}");

        let (port, _server) = fake_postgres(pg(b'R', &[0, 0, 0, 3]), Vec::new());
        let err = postgres_query(port, "postgres", "SELECT 1").unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
    }

    #[test]
    fn ports_are_free_and_waited_for() {
        let port = free_port();
        assert!(!wait_for_port(port, Duration::from_millis(300)));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        assert!(wait_for_port(port, Duration::from_secs(5)));
        drop(listener);
    }
}
