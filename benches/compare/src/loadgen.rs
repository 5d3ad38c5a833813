//! The load generator and the server processes it measures.
//!
//! A server runs as its own process (`src/bin/server.rs`), pinned to one
//! core with `taskset`, so that its CPU time can be read from
//! `/proc/<pid>/stat` (utime + stime) and nothing of the load generator is
//! counted in it. The load generator runs on a single-threaded tokio
//! runtime in the calling process (pin it to another core:
//! `taskset -c 1 target/release/tcp ...`) and speaks raw TCP through
//! [`crate::wire`]: frames built and masked once before a run, every echo
//! compared with what was sent.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, IoSlice, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::Kind;
use crate::wire::{self, Parser};

// ----- Server processes -----------------------------------------------------

/// A server process: its pid, its port, and a line-based control channel
/// on its stdin and stdout.
pub struct ServerProcess {
    child: Child,
    /// The server's process id (taskset replaces itself with the server).
    pub pid: u32,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts `server ARGS` (the binary next to this one), pinned to `cpu`
    /// when given, and waits for the port it announces.
    ///
    /// For profiling, `SERVER_PREFIX` (split at spaces) goes before the
    /// server's command, e.g. `SERVER_PREFIX="perf record -g -o s.data --"`;
    /// [`pid`](Self::pid) is then the prefix's process, so the echo's CPU
    /// figures are the prefix's (the broadcast measures itself and stays
    /// right).
    pub fn spawn(cpu: Option<usize>, args: &[String]) -> io::Result<Self> {
        Self::spawn_exe(&std::env::current_exe()?.with_file_name("server"), cpu, args)
    }

    /// [`spawn`](Self::spawn) with the server binary at `exe`.
    pub fn spawn_exe(exe: &std::path::Path, cpu: Option<usize>, args: &[String]) -> io::Result<Self> {
        let mut words: Vec<std::ffi::OsString> = Vec::new();
        if let Some(cpu) = cpu {
            words.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
        }
        if let Ok(prefix) = std::env::var("SERVER_PREFIX") {
            words.extend(prefix.split_whitespace().map(Into::into));
        }
        words.push(exe.into());
        let mut command = Command::new(&words[0]);
        command.args(&words[1..]);
        let mut child = command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let pid = child.id();
        let mut server = Self { child, pid, port: 0, stdin, stdout };
        let line = server.read_line()?;
        server.port = line
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("server said {line:?}")))?;
        Ok(server)
    }

    /// The server's next line on stdout.
    pub fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::other("the server exited"));
        }
        Ok(line.trim_end().to_owned())
    }

    /// Sends a command line and returns the server's one-line answer.
    pub fn ask(&mut self, command: &str) -> io::Result<String> {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}")?;
        stdin.flush()?;
        self.read_line()
    }

    /// CPU time the server has used so far (user + system), from
    /// `/proc/<pid>/stat`, in seconds (10 ms resolution).
    pub fn cpu_seconds(&self) -> io::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command name, which is in parentheses and may
        // contain spaces: state is field 3, utime 14 and stime 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Ok(ticks as f64 / hz)
    }

    /// The server's resident set size, from `/proc/<pid>/status`.
    pub fn rss_bytes(&self) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| io::Error::other("no VmRSS"))?;
        Ok(kb * 1024)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing stdin tells the server to exit; kill it if it does not.
        drop(self.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raises the soft limit on open files to the hard limit (thousands of
/// connections need more than the usual 1024).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// This process's CPU time so far (user + system), in seconds.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    s(usage.ru_utime) + s(usage.ru_stime)
}

// ----- Connections ----------------------------------------------------------

/// Connects to the server and performs the opening handshake; returns the
/// stream and whatever the server sent after its answer (a broadcast may
/// start at once).
pub async fn connect(port: u16, deflate: bool) -> io::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    stream.write_all(&wire::request("127.0.0.1", deflate)).await?;
    let mut head = Vec::with_capacity(256);
    loop {
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::other("closed during the handshake"));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = wire::head_end(&head) {
            wire::check_response(&head[..end - 4], deflate)?;
            return Ok((stream, head.split_off(end)));
        }
    }
}

/// Opens `n` connections, `parallel` handshakes at a time.
pub async fn connect_many(
    port: u16,
    n: usize,
    deflate: bool,
    parallel: usize,
) -> io::Result<Vec<(TcpStream, Vec<u8>)>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = parallel.min(n - out.len());
        let tasks: Vec<_> = (0..batch).map(|_| tokio::task::spawn_local(connect(port, deflate))).collect();
        for task in tasks {
            out.push(task.await.map_err(io::Error::other)??);
        }
    }
    Ok(out)
}

/// A single-threaded runtime with a `LocalSet`, as the load generator uses.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

// ----- Echo -----------------------------------------------------------------

/// One echo load: `conns` connections, each keeping `inflight` messages of
/// `size` bytes on the way.
#[derive(Clone, Debug)]
pub struct EchoScenario {
    /// The table's name for it.
    pub name: String,
    /// Payload bytes per message.
    pub size: usize,
    /// Connections.
    pub conns: usize,
    /// Messages in flight per connection.
    pub inflight: usize,
    /// Text or binary.
    pub kind: Kind,
    /// Offer permessage-deflate and send compressed messages.
    pub deflate: bool,
}

/// What one echo run measured.
#[derive(Clone, Debug)]
pub struct EchoResult {
    /// Echoes received in the measured window.
    pub messages: u64,
    /// The window's length.
    pub seconds: f64,
    /// Server CPU time (user + system) in the window.
    pub server_cpu: f64,
    /// The load generator's own CPU time in the window: near the window's
    /// length, the load generator (not the server) limited the rate.
    pub client_cpu: f64,
    /// Round-trip times of the window's messages, sorted, in nanoseconds.
    pub latencies: Vec<u64>,
}

impl EchoResult {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    /// The `q` quantile of the round-trip time, in microseconds.
    pub fn latency_us(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len() - 1);
        self.latencies[i] as f64 / 1000.0
    }

    /// Server CPU time per message, in microseconds.
    pub fn cpu_us_per_message(&self) -> f64 {
        self.server_cpu * 1e6 / self.messages as f64
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measure,
    Stop,
}

struct Shared {
    phase: Cell<Phase>,
    messages: Cell<u64>,
    latencies: RefCell<Vec<u64>>,
}

/// Runs one echo load against `server`: connects, sends for `warmup`
/// unmeasured, then measures for `measure`.
pub fn run_echo(
    server: &ServerProcess,
    scenario: &EchoScenario,
    warmup: Duration,
    measure: Duration,
) -> io::Result<EchoResult> {
    let payload = Rc::new(scenario.kind.payload(scenario.size));
    let frame = Rc::new(wire::client_frame(scenario.kind.is_text(), &payload, scenario.deflate));
    let shared = Rc::new(Shared {
        phase: Cell::new(Phase::Warmup),
        messages: Cell::new(0),
        latencies: RefCell::new(Vec::new()),
    });
    block_on(async {
        let streams = connect_many(server.port, scenario.conns, scenario.deflate, 64).await?;
        let (start, started) = watch::channel(false);
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|(stream, early)| {
                let (payload, frame, shared, mut started) =
                    (payload.clone(), frame.clone(), shared.clone(), started.clone());
                let (text, deflate, inflight) = (scenario.kind.is_text(), scenario.deflate, scenario.inflight);
                tokio::task::spawn_local(async move {
                    let _ = started.wait_for(|s| *s).await;
                    if !early.is_empty() {
                        return Err(io::Error::other("data before any message was sent"));
                    }
                    echo_connection(stream, &frame, &payload, text, deflate, inflight, &shared).await
                })
            })
            .collect();
        drop(started);
        start.send(true).ok();
        tokio::time::sleep(warmup).await;
        if let Some(i) = tasks.iter().position(|t| t.is_finished()) {
            let result = tasks.into_iter().nth(i).unwrap().await.map_err(io::Error::other)?;
            return Err(io::Error::other(format!("a connection ended during the warm-up: {result:?}")));
        }
        shared.messages.set(0);
        shared.latencies.borrow_mut().clear();
        shared.phase.set(Phase::Measure);
        let (cpu0, own0, t0) = (server.cpu_seconds()?, own_cpu_seconds(), Instant::now());
        tokio::time::sleep(measure).await;
        let (cpu1, own1, t1) = (server.cpu_seconds()?, own_cpu_seconds(), Instant::now());
        shared.phase.set(Phase::Stop);
        let messages = shared.messages.get();
        // Let the messages on the way come back (each is still checked).
        for task in tasks {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(e)) => return Err(io::Error::other(e)),
                Err(_) => return Err(io::Error::other("echoes did not come back within 10 s")),
            }
        }
        let mut latencies = shared.latencies.take();
        latencies.sort_unstable();
        Ok(EchoResult {
            messages,
            seconds: (t1 - t0).as_secs_f64(),
            server_cpu: cpu1 - cpu0,
            client_cpu: own1 - own0,
            latencies,
        })
    })
}

/// One connection of an echo load: keeps `inflight` frames on the way,
/// writing them (vectored, straight from the prebuilt frame) as the socket
/// takes them and a new one for each echo, which is checked against the
/// payload. Reading and writing share one task and never block each
/// other, so large messages cannot deadlock on full socket buffers.
async fn echo_connection(
    stream: TcpStream,
    frame: &[u8],
    payload: &[u8],
    text: bool,
    deflate: bool,
    inflight: usize,
    shared: &Shared,
) -> io::Result<()> {
    let mut parser = Parser::new(deflate);
    let mut input: Vec<u8> = Vec::with_capacity(128 << 10);
    let mut consumed = 0;
    // When each message on the way was queued, oldest first.
    let mut queued: VecDeque<Instant> = VecDeque::with_capacity(inflight);
    let now = Instant::now();
    queued.extend(std::iter::repeat_n(now, inflight));
    // Frames not yet completely written, and how much of the first is.
    let (mut unwritten, mut offset) = (inflight, 0);
    loop {
        if queued.is_empty() {
            return Ok(());
        }
        let interest = if unwritten > 0 { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        let ready = stream.ready(interest).await?;
        if ready.is_writable() && unwritten > 0 {
            let slices: [IoSlice<'_>; 16] =
                std::array::from_fn(|i| IoSlice::new(if i == 0 { &frame[offset..] } else { frame }));
            match stream.try_write_vectored(&slices[..unwritten.min(16)]) {
                Ok(mut n) => {
                    while n > 0 {
                        let left = frame.len() - offset;
                        if n >= left {
                            n -= left;
                            unwritten -= 1;
                            offset = 0;
                        } else {
                            offset += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if !ready.is_readable() {
            continue;
        }
        input.reserve(64 << 10);
        match stream.try_read_buf(&mut input) {
            Ok(0) => return Err(io::Error::other("the server closed the connection")),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
        while let Some((used, message)) =
            parser.parse(&input[consumed..], |m, got| m.text == text && m.compressed == deflate && got == payload)?
        {
            consumed += used;
            let Some(ok) = message else { continue };
            if !ok {
                return Err(io::Error::other("an echo differs from the message sent"));
            }
            let now = Instant::now();
            let sent = queued.pop_front().ok_or_else(|| io::Error::other("an echo nobody sent"))?;
            match shared.phase.get() {
                Phase::Warmup => {}
                Phase::Measure => {
                    shared.messages.set(shared.messages.get() + 1);
                    shared.latencies.borrow_mut().push((now - sent).as_nanos() as u64);
                }
                Phase::Stop => continue,
            }
            queued.push_back(now);
            unwritten += 1;
        }
        if consumed == input.len() {
            input.clear();
            consumed = 0;
        } else if consumed > 64 << 10 {
            input.drain(..consumed);
            consumed = 0;
        }
    }
}

// ----- Broadcast ------------------------------------------------------------

/// Connects `n` clients and reads `messages.len()` messages on each,
/// checking each against `messages` in order; returns once all arrived.
/// `connected` is called once every client has its handshake done.
pub async fn broadcast_clients(
    port: u16,
    n: usize,
    deflate: bool,
    messages: Rc<Vec<String>>,
    connected: impl FnOnce(),
) -> io::Result<()> {
    let streams = connect_many(port, n, deflate, 64).await?;
    connected();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|(stream, early)| tokio::task::spawn_local(broadcast_client(stream, early, deflate, messages.clone())))
        .collect();
    for task in tasks {
        task.await.map_err(io::Error::other)??;
    }
    Ok(())
}

async fn broadcast_client(
    mut stream: TcpStream,
    early: Vec<u8>,
    deflate: bool,
    messages: Rc<Vec<String>>,
) -> io::Result<()> {
    let mut parser = Parser::new(deflate);
    // What came with the handshake's answer is parsed first.
    let mut input = early;
    let mut consumed = 0;
    let mut next = 0;
    loop {
        while let Some((used, ok)) = parser
            .parse(&input[consumed..], |m, got| m.text && messages.get(next).is_some_and(|t| got == t.as_bytes()))?
        {
            consumed += used;
            match ok {
                Some(true) => next += 1,
                Some(false) => return Err(io::Error::other(format!("broadcast message {next} differs"))),
                None => {}
            }
        }
        if next == messages.len() {
            return Ok(());
        }
        input.drain(..consumed);
        consumed = 0;
        input.reserve(64 << 10);
        if stream.read_buf(&mut input).await? == 0 {
            return Err(io::Error::other("the server closed the connection"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles() {
        let r = EchoResult {
            messages: 4,
            seconds: 2.0,
            server_cpu: 1.0,
            client_cpu: 0.5,
            latencies: vec![1000, 2000, 3000, 4000],
        };
        assert_eq!(r.rate(), 2.0);
        assert_eq!(r.latency_us(0.5), 3.0);
        assert_eq!(r.latency_us(0.999), 4.0);
        assert_eq!(r.cpu_us_per_message(), 250_000.0);
    }
}
