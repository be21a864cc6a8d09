//! HTTP/1.1 pipelining for the pool stage over plain `http://`: one keep-alive connection
//! carries several requests in flight, as apt itself asks of mirrors (its
//! `Acquire::http::Pipeline-Depth` is 10). A first sync of 60,000 small files then costs a
//! socket read per many files instead of a request/response round trip and several task
//! wake-ups per file.
//!
//! Only the plain case is finished here: a `200` with a `Content-Length`, on a connection that
//! stays open. Anything else is handed to [`Fetcher`]'s general path: a failure (a `404`, a
//! `5xx`, a body cut short, a hash mismatch, no answer) as the file's failed first attempt, so
//! retries, resume with `Range` and the circuit breaker go on exactly as without pipelining;
//! an answer the pipeline does not handle (a redirect, a chunked body, an upstream that closes
//! every connection) with no attempt counted, and the pipeline steps aside for the rest of the
//! run. A short error body is read past, so the requests behind it are answered on the same
//! connection; requests in flight on a connection that is lost are sent again on a new one.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Expected, FetchError, Fetcher, USER_AGENT, put_in_place, shown};

/// The read buffer of a connection: many small responses arrive in one read.
const BUF_BYTES: usize = 64 * 1024;
/// Headers of a response head beyond this many make it one the pipeline leaves alone.
const MAX_HEADERS: usize = 64;
/// An error answer's body up to this size is read past to keep the connection.
const ERROR_BODY_BYTES: u64 = 64 * 1024;

/// Where a pipelined connection goes: a plain `http://` upstream without credentials (those
/// and TLS stay with the general client).
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// `host:port` to connect to.
    authority: String,
    /// The `Host` header.
    host: String,
}

impl Endpoint {
    pub(crate) fn of(base: &Url) -> Option<Endpoint> {
        if base.scheme() != "http" || !base.username().is_empty() || base.password().is_some() {
            return None;
        }
        let host = base.host_str()?;
        let port = base.port_or_known_default()?;
        Some(Endpoint {
            authority: format!("{host}:{port}"),
            host: match base.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            },
        })
    }
}

/// One file for the pipeline: its URL, where it goes, what it must be.
#[derive(Debug)]
pub(crate) struct Job {
    pub url: Url,
    pub dest: PathBuf,
    pub want: Expected,
}

/// A job the pipeline did not finish, for the general path.
#[derive(Debug)]
pub(crate) struct Handoff {
    pub job: Job,
    /// How the pipeline's attempt failed; `None` when it stepped aside without an attempt
    /// that counts (the general path then starts afresh).
    pub failed: Option<FetchError>,
}

/// A pipelined connection and the jobs on it, oldest first.
pub(crate) struct Pipeline {
    endpoint: Endpoint,
    fetcher: Fetcher,
    depth: usize,
    conn: Option<Conn>,
    /// Jobs in the order of their requests; the first `sent` went out on `conn`.
    queue: VecDeque<Job>,
    sent: usize,
    /// The upstream answered in a way the pipeline leaves to the general path (or could not
    /// be reached): every later job goes there directly.
    off: bool,
    requests: Vec<u8>,
}

struct Conn {
    stream: TcpStream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Responses completed on this connection.
    answered: u64,
}

/// What a response head says, as far as the pipeline cares.
struct Head {
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    /// The server closes the connection after this response.
    close: bool,
    retry_after: Option<Duration>,
}

enum Step {
    Done(Job),
    Handoff(Handoff),
    /// The connection went away between responses: send the rest again on a new one.
    Resend,
}

impl Pipeline {
    pub(crate) fn new(endpoint: Endpoint, fetcher: Fetcher, depth: usize) -> Pipeline {
        Pipeline {
            endpoint,
            fetcher,
            depth: depth.max(1),
            conn: None,
            queue: VecDeque::new(),
            sent: 0,
            off: false,
            requests: Vec::new(),
        }
    }

    /// Whether another job fits in flight.
    pub(crate) fn has_room(&self) -> bool {
        self.queue.len() < self.depth
    }

    /// Whether it is time to queue more: half the window is free. Refilling in halves sends
    /// several requests per write (each write to a local upstream also runs its receive path).
    pub(crate) fn wants_more(&self) -> bool {
        self.queue.len() <= self.depth / 2
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues a job; its request goes out with the next [`Pipeline::next`].
    pub(crate) fn push(&mut self, job: Job) {
        self.queue.push_back(job);
    }

    /// Sends what is queued and finishes the oldest job: `Ok` when its file is in place,
    /// `Err` for the general path. `None` when nothing is queued.
    pub(crate) async fn next(&mut self) -> Option<Result<Job, Handoff>> {
        loop {
            if self.off || self.fetcher.upstream_down().is_some() {
                let job = self.queue.pop_front()?;
                self.sent = self.sent.saturating_sub(1);
                return Some(Err(Handoff { job, failed: None }));
            }
            if self.queue.is_empty() {
                return None;
            }
            let step = match self.send_queued().await {
                Ok(()) => self.finish_front().await,
                Err(source) => {
                    self.drop_connection();
                    self.fail_front(|url| FetchError::Connection { url, source })
                }
            };
            match step {
                Step::Done(job) => return Some(Ok(job)),
                Step::Handoff(h) => return Some(Err(h)),
                Step::Resend => continue,
            }
        }
    }

    fn drop_connection(&mut self) {
        self.conn = None;
        self.sent = 0;
    }

    /// Connects if needed and writes the requests not sent yet in one go. A reused
    /// connection the server closed meanwhile is replaced once.
    async fn send_queued(&mut self) -> io::Result<()> {
        if self.sent == self.queue.len() {
            return Ok(());
        }
        for fresh_try in [false, true] {
            if self.conn.is_none() {
                self.conn = Some(self.connect().await?);
                self.sent = 0;
            }
            self.requests.clear();
            for job in self.queue.iter().skip(self.sent) {
                write_request(&mut self.requests, &job.url, &self.endpoint.host);
            }
            let timeout = self.fetcher.timeout();
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let reused = conn.answered > 0;
            match tokio::time::timeout(timeout, conn.stream.write_all(&self.requests)).await {
                Ok(Ok(())) => {
                    self.sent = self.queue.len();
                    return Ok(());
                }
                Ok(Err(e)) if reused && !fresh_try => {
                    tracing::debug!("{}: kept-alive connection gone: {e}", self.endpoint.host);
                    self.drop_connection();
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(timed_out()),
            }
        }
        Err(io::Error::other("connection closed"))
    }

    async fn connect(&self) -> io::Result<Conn> {
        let stream = tokio::time::timeout(
            self.fetcher.timeout(),
            TcpStream::connect(self.endpoint.authority.as_str()),
        )
        .await
        .map_err(|_| timed_out())??;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0u8; BUF_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            answered: 0,
        })
    }

    /// Reads the oldest job's response and puts its file in place.
    async fn finish_front(&mut self) -> Step {
        let timeout = self.fetcher.timeout();
        let Some(conn) = self.conn.as_mut() else {
            return Step::Resend;
        };
        let started = Instant::now();
        let head = match conn.read_head(timeout).await {
            Ok(head) => head,
            Err(e) if conn.answered > 0 => {
                // A kept-alive connection the server closed after some answers (idle timeout,
                // request limit; a reset when our next requests were unread): no answer to
                // this request yet, just a new connection. Each connection answered at least
                // once, so this cannot go round for ever.
                tracing::debug!("{}: kept-alive connection ended: {e}", self.endpoint.host);
                self.drop_connection();
                return Step::Resend;
            }
            Err(source) => {
                self.drop_connection();
                return self.fail_front(|url| FetchError::Connection { url, source });
            }
        };
        let Some(job) = self.queue.front() else {
            return Step::Resend;
        };
        if head.status != 200 {
            // A short error body is read past, so the requests behind it are answered on
            // this connection rather than sent again (each of them counts against upstream).
            let drained = match head.content_length {
                Some(n) if n <= ERROR_BODY_BYTES && !head.chunked && !head.close => {
                    conn.skip(n, timeout).await.is_ok()
                }
                _ => false,
            };
            if drained {
                conn.answered += 1;
            } else {
                self.drop_connection();
            }
            let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
            return match head.status {
                404 | 410 => self.fail_front(|url| FetchError::NotFound { url }),
                400.. => self.fail_front(|url| FetchError::Status {
                    url,
                    status,
                    retry_after: head.retry_after,
                }),
                _ => self.step_aside(),
            };
        }
        let Some(len) = head.content_length.filter(|_| !head.chunked) else {
            self.drop_connection();
            return self.step_aside();
        };
        let want = job.want;
        if len > want.size {
            self.drop_connection();
            return self.fail_front(|url| FetchError::TooLarge {
                url,
                expected: want.size,
            });
        }
        let fetcher = self.fetcher.clone();
        if let Err(e) = conn
            .receive_file(&fetcher, job, len, started, timeout)
            .await
        {
            // Mid-body: the connection's position is lost with it.
            self.drop_connection();
            return self.fail_front(|_| e);
        }
        conn.answered += 1;
        if head.close {
            if conn.answered == 1 {
                // No keep-alive: pipelining gains nothing here.
                self.off = true;
            }
            self.drop_connection();
        } else {
            self.sent = self.sent.saturating_sub(1);
        }
        self.fetcher.note_answer();
        match self.queue.pop_front() {
            Some(job) => Step::Done(job),
            None => Step::Resend,
        }
    }

    /// Hands the oldest job to the general path with its failed attempt.
    fn fail_front(&mut self, error: impl FnOnce(String) -> FetchError) -> Step {
        let Some(job) = self.queue.pop_front() else {
            return Step::Resend;
        };
        self.sent = self.sent.saturating_sub(1);
        let failed = error(shown(&job.url));
        self.fetcher.note_error(&failed);
        if matches!(failed, FetchError::Connection { .. }) {
            // No answer at all: the general path, with its backoff and breaker, takes over.
            self.off = true;
        }
        Step::Handoff(Handoff {
            job,
            failed: Some(failed),
        })
    }

    /// Hands the oldest job to the general path afresh, and every later one with it.
    fn step_aside(&mut self) -> Step {
        self.off = true;
        match self.queue.pop_front() {
            Some(job) => Step::Handoff(Handoff { job, failed: None }),
            None => Step::Resend,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

/// `GET <path> HTTP/1.1` with the headers the general client sends too.
fn write_request(out: &mut Vec<u8>, url: &Url, host: &str) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(url.path().as_bytes());
    if let Some(q) = url.query() {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: ");
    out.extend_from_slice(USER_AGENT.as_bytes());
    out.extend_from_slice(b"\r\nAccept: */*\r\n\r\n");
}

impl Conn {
    /// Reads one response head. `UnexpectedEof` when the server closed before sending any.
    async fn read_head(&mut self, timeout: Duration) -> io::Result<Head> {
        loop {
            if self.start < self.end {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete(n)) => {
                        let head = Head::of(&resp);
                        self.start += n;
                        return Ok(head);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("malformed response head: {e}"),
                        ));
                    }
                }
            }
            self.compact();
            if self.end == self.buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response head larger than 64 KiB",
                ));
            }
            let partial = self.start < self.end;
            match self.fill(timeout).await? {
                0 if partial => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "connection closed inside a response head",
                    ));
                }
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before a response",
                    ));
                }
                _ => {}
            }
        }
    }

    /// Reads past `n` body bytes.
    async fn skip(&mut self, mut n: u64, timeout: Duration) -> io::Result<()> {
        loop {
            let take = n.min((self.end - self.start) as u64);
            self.start += take as usize;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.start = 0;
            self.end = 0;
            if self.fill(timeout).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
        }
    }

    /// Moves unread bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// One read into the free end of the buffer.
    async fn fill(&mut self, timeout: Duration) -> io::Result<usize> {
        let n = tokio::time::timeout(timeout, self.stream.read(&mut self.buf[self.end..]))
            .await
            .map_err(|_| timed_out())??;
        self.end += n;
        // Acknowledge at once, not after the 40 ms delayed-ACK timer: a server holding back
        // the small tail of a response until its earlier segments are acknowledged (Nagle;
        // nginx with `tcp_nopush`, as Debian ships it) otherwise stalls the pipeline each
        // time it runs dry. Linux leaves quick-ack mode on its own, so it is asked per read.
        let _ = rustix::net::sockopt::set_tcp_quickack(&self.stream, true);
        Ok(n)
    }

    /// Streams a `len`-byte body into the job's temp file, checks it, and renames it into
    /// place: the same checks as [`Fetcher::download`], and a body cut short keeps its
    /// partial file for the general path's resume.
    async fn receive_file(
        &mut self,
        fetcher: &Fetcher,
        job: &Job,
        len: u64,
        started: Instant,
        timeout: Duration,
    ) -> Result<(), FetchError> {
        let tmp = super::temp_path(&job.dest);
        let io_err = |source| FetchError::Io {
            path: tmp.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err)?;
        let mut hasher = sha2::Sha256::new();
        let mut got = 0u64;
        let truncated = |got, reason: String| FetchError::Truncated {
            url: shown(&job.url),
            got,
            expected: job.want.size,
            reason,
        };
        while got < len {
            if self.start == self.end {
                fetcher.pace().check(&job.url, got, started)?;
                self.start = 0;
                self.end = 0;
                match self.fill(timeout).await {
                    Ok(0) => return Err(truncated(got, "connection closed".into())),
                    Ok(_) => {}
                    Err(e) => return Err(truncated(got, e.to_string())),
                }
            }
            let take = (len - got).min((self.end - self.start) as u64) as usize;
            let chunk = &self.buf[self.start..self.start + take];
            hasher.update(chunk);
            file.write_all(chunk).map_err(io_err)?;
            self.start += take;
            got += take as u64;
            fetcher.count_received(take as u64);
        }
        put_in_place(&job.url, file, &tmp, &job.dest, job.want, got, hasher)
    }
}

impl Head {
    fn of(resp: &httparse::Response<'_, '_>) -> Head {
        let mut head = Head {
            status: resp.code.unwrap_or(0),
            content_length: None,
            chunked: false,
            // HTTP/1.0 closes unless it says otherwise.
            close: resp.version == Some(0),
            retry_after: None,
        };
        let mut lengths = 0;
        for h in resp.headers.iter() {
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                lengths += 1;
                head.content_length = value.parse().ok();
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        head.close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        head.close = false;
                    }
                }
            } else if h.name.eq_ignore_ascii_case("retry-after") {
                head.retry_after = value.parse().ok().map(Duration::from_secs);
            }
        }
        // Two lengths: a framing the pipeline does not guess at.
        if lengths > 1 {
            head.content_length = None;
        }
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Sha256;
    use std::io::{BufRead, BufReader};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// How the raw test server misbehaves.
    #[derive(Clone, Copy, Default)]
    struct Quirks {
        /// Close after this many responses, saying so (`Connection: close`) or not.
        close_after: Option<(usize, bool)>,
        /// Answer as HTTP/1.0 without keep-alive.
        http10: bool,
    }

    /// A blocking HTTP/1.1 server over `files`, a thread per connection, reading requests as
    /// they come (pipelined ones included). Paths not in `files` get a 404.
    fn serve(files: Vec<(String, Vec<u8>)>, quirks: Quirks) -> (Url, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let files = Arc::new(files);
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let files = files.clone();
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut answered = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split(' ').nth(1).unwrap_or("").to_string();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                        answered += 1;
                        let closing = quirks.close_after.filter(|(n, _)| answered == *n);
                        let body = files.iter().find(|(p, _)| *p == path).map(|(_, b)| b);
                        let mut head = format!(
                            "HTTP/1.{} {}\r\nContent-Length: {}\r\n",
                            if quirks.http10 { 0 } else { 1 },
                            if body.is_some() {
                                "200 OK"
                            } else {
                                "404 Not Found"
                            },
                            body.map_or(0, |b| b.len())
                        );
                        if closing.is_some_and(|(_, say)| say) {
                            head.push_str("Connection: close\r\n");
                        }
                        head.push_str("\r\n");
                        let mut out = head.into_bytes();
                        out.extend_from_slice(body.map_or(&[][..], |b| b));
                        if stream.write_all(&out).is_err() || closing.is_some() || quirks.http10 {
                            return;
                        }
                    }
                });
            }
        });
        (url, requests)
    }

    fn fetcher() -> Fetcher {
        let cfg = crate::config::SyncConfig {
            timeout_secs: 5,
            ..Default::default()
        };
        Fetcher::new(&cfg, false).unwrap()
    }

    /// `n` files `/f<i>` with distinct bodies.
    fn files(n: usize) -> Vec<(String, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let body = format!("body of file {i} ").repeat(i + 1);
                (format!("/f{i}"), body.into_bytes())
            })
            .collect()
    }

    /// Jobs fetching `files` from `url` into `dir`.
    fn jobs(url: &Url, dir: &std::path::Path, files: &[(String, Vec<u8>)]) -> Vec<Job> {
        files
            .iter()
            .map(|(p, body)| Job {
                url: url.join(p).unwrap(),
                dest: dir.join(&p[1..]),
                want: Expected::new(body.len() as u64, Sha256::digest(body)),
            })
            .collect()
    }

    /// Runs every job through one pipeline of `depth`; the handoffs, in order.
    async fn run(url: &Url, jobs: Vec<Job>, depth: usize) -> (usize, Vec<Handoff>) {
        let mut pipeline = Pipeline::new(Endpoint::of(url).unwrap(), fetcher(), depth);
        let mut jobs = jobs.into_iter();
        let (mut done, mut handed) = (0, Vec::new());
        loop {
            while pipeline.has_room() {
                match jobs.next() {
                    Some(j) => pipeline.push(j),
                    None => break,
                }
            }
            match pipeline.next().await {
                Some(Ok(_)) => done += 1,
                Some(Err(h)) => handed.push(h),
                None => return (done, handed),
            }
        }
    }

    /// 25 files through a depth of 4: all in place; the requests the server saw.
    async fn all_arrive(quirks: Quirks) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let files = files(25);
        let (url, requests) = serve(files.clone(), quirks);
        let (done, handed) = run(&url, jobs(&url, dir.path(), &files), 4).await;
        assert_eq!((done, handed.len()), (25, 0), "{handed:?}");
        for (p, body) in &files {
            assert_eq!(&std::fs::read(dir.path().join(&p[1..])).unwrap(), body);
        }
        requests.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn pipelined_files_arrive_whole_and_in_place() {
        assert_eq!(
            all_arrive(Quirks::default()).await,
            25,
            "one request per file"
        );
    }

    #[tokio::test]
    async fn a_server_closing_kept_alive_connections_gets_the_rest_again() {
        // Saying so (nginx's keepalive_requests) and not saying so (an idle timeout).
        for say in [true, false] {
            let requests = all_arrive(Quirks {
                close_after: Some((3, say)),
                ..Quirks::default()
            })
            .await;
            assert!(
                requests >= 25,
                "requests behind a close are sent again: {requests}"
            );
        }
    }

    #[tokio::test]
    async fn failures_go_to_the_general_path_with_their_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let listed = files(6);
        let mut served = listed.clone();
        served[1].1 = vec![b'x'; listed[1].1.len()];
        served.remove(3);
        let (url, _) = serve(served, Quirks::default());
        let (done, handed) = run(&url, jobs(&url, dir.path(), &listed), 4).await;
        assert_eq!(done, 4);
        let failed: Vec<String> = handed
            .iter()
            .map(|h| match &h.failed {
                Some(FetchError::HashMismatch { .. }) => format!("{} mismatch", h.job.url.path()),
                Some(FetchError::NotFound { .. }) => format!("{} 404", h.job.url.path()),
                other => format!("{} {other:?}", h.job.url.path()),
            })
            .collect();
        assert_eq!(failed, ["/f1 mismatch", "/f3 404"]);
        assert!(
            !dir.path().join(".f1.debsync-tmp").exists(),
            "a corrupt body is not kept"
        );
        assert!(!dir.path().join("f1").exists());
        assert!(
            dir.path().join("f5").exists(),
            "the requests behind a failure go on"
        );
    }

    #[tokio::test]
    async fn no_keep_alive_or_no_server_hands_everything_over() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(5);
        let http10 = Quirks {
            http10: true,
            ..Quirks::default()
        };
        let (url, _) = serve(files.clone(), http10);
        let (done, handed) = run(&url, jobs(&url, dir.path(), &files), 4).await;
        assert_eq!(
            done, 1,
            "the first answer completes, then the pipeline steps aside"
        );
        assert_eq!(handed.len(), 4);
        assert!(handed.iter().all(|h| h.failed.is_none()), "{handed:?}");

        // Nothing listening: the first job carries the connection failure, the rest go over
        // untried.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let gone = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let (done, handed) = run(&gone, jobs(&gone, dir.path(), &files[..3]), 4).await;
        assert_eq!(done, 0);
        assert!(matches!(
            handed[0].failed,
            Some(FetchError::Connection { .. })
        ));
        assert!(handed[1..].iter().all(|h| h.failed.is_none()));
    }

    #[test]
    fn endpoints_only_for_plain_http_without_credentials() {
        let e = Endpoint::of(&Url::parse("http://mirror.example:8080/debian/").unwrap()).unwrap();
        assert_eq!(e.authority, "mirror.example:8080");
        assert_eq!(e.host, "mirror.example:8080");
        let e = Endpoint::of(&Url::parse("http://mirror.example/debian/").unwrap()).unwrap();
        assert_eq!(
            (e.authority.as_str(), e.host.as_str()),
            ("mirror.example:80", "mirror.example")
        );
        let e = Endpoint::of(&Url::parse("http://[::1]:81/").unwrap()).unwrap();
        assert_eq!(e.authority, "[::1]:81");
        assert!(Endpoint::of(&Url::parse("https://mirror.example/").unwrap()).is_none());
        assert!(Endpoint::of(&Url::parse("http://u:p@mirror.example/").unwrap()).is_none());
    }

    #[test]
    fn requests_carry_the_encoded_path_and_host() {
        let mut out = Vec::new();
        let url = Url::parse("http://m:81/debian/pool/main/g/g++/g++_1%3A1.deb").unwrap();
        write_request(&mut out, &url, "m:81");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "GET /debian/pool/main/g/g++/g++_1%3A1.deb HTTP/1.1\r\nHost: m:81\r\n"
            )
        );
        assert!(text.ends_with("\r\n\r\n"));
    }

    fn head(raw: &str) -> Head {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        assert!(resp.parse(raw.as_bytes()).unwrap().is_complete());
        Head::of(&resp)
    }

    #[test]
    fn heads_say_length_framing_and_keep_alive() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(
            (h.status, h.content_length, h.chunked, h.close),
            (200, Some(12), false, false)
        );
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        assert!(h.chunked && h.close);
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert!(h.close, "HTTP/1.0 closes by default");
        let h = head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.close);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(
            h.content_length, None,
            "conflicting lengths are not guessed at"
        );
        let h = head("HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            (h.status, h.retry_after),
            (503, Some(Duration::from_secs(7)))
        );
    }
}
