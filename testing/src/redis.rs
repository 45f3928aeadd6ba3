//! A real `redis-server` for tests: started on a free loopback port with no
//! persistence, killed on drop; and a Redis Cluster of three such servers.
//!
//! Tests of Redis-backed stores run against this, never against a mock of
//! Redis. A missing `redis-server` binary fails the test with a message saying
//! how to install it (`apt-get install -y redis-server` on Debian), rather than
//! skipping it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The server binary; `REDIS_SERVER` overrides the name looked up on `PATH`.
fn binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER").map_or_else(|| PathBuf::from("redis-server"), PathBuf::from)
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Whether a Redis server answers `PING` on `port`.
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && reply.starts_with(b"+PONG")
}

/// A `redis-server` child process with no persistence, listening on 127.0.0.1 only.
///
/// ```no_run
/// let server = portcullis_testing::RedisServer::start();
/// let url = server.url(); // redis://127.0.0.1:PORT/
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    /// Arguments added to the command line (cluster mode).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// Panics (failing the test) if `redis-server` is not installed.
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// Starts a server with `extra` arguments on its command line.
    fn start_with(extra: Vec<String>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            extra,
        };
        // Another process may take the port between its choice and the bind.
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free loopback port in 5 tries");
    }

    /// Starts the server again on the same port, after [`kill`](Self::kill).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// Spawns the server on `self.port`; `false` if it exited or never answered.
    fn spawn(&mut self) -> bool {
        let mut child = match Command::new(binary())
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "redis-server is not installed ({e}): the Redis tests need a real server; \
                 install redis-server (Debian/Ubuntu: `apt-get install -y redis-server`) \
                 or point REDIS_SERVER at the binary"
            ),
            Err(e) => panic!("redis-server could not be started: {e}"),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if answers_ping(self.port) {
                self.child = Some(child);
                return true;
            }
            sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends one command and returns its reply as text (a status, an
    /// integer, a bulk string; `None` for a nil), or the server's error.
    ///
    /// ```no_run
    /// let server = portcullis_testing::RedisServer::start();
    /// assert_eq!(server.command(&["PING"]).unwrap().as_deref(), Some("PONG"));
    /// ```
    pub fn command(&self, args: &[&str]) -> Result<Option<String>, String> {
        command(self.port, args)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends one command to the server on `port` (RESP over TCP) and reads a
/// simple reply: a status, an error, an integer or a bulk string.
fn command(port: u16, args: &[&str]) -> Result<Option<String>, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("connect to {port}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {port}: {e}"))?;
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches("\r\n");
    match line.split_at_checked(1) {
        Some(("+" | ":", rest)) => Ok(Some(rest.to_owned())),
        Some(("-", rest)) => Err(rest.to_owned()),
        Some(("$", "-1")) => Ok(None),
        Some(("$", len)) => {
            let len: usize = len.parse().map_err(|_| format!("bad reply {line:?}"))?;
            let mut body = vec![0u8; len + 2];
            reader.read_exact(&mut body).map_err(|e| e.to_string())?;
            body.truncate(len);
            Ok(Some(String::from_utf8_lossy(&body).into_owned()))
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

/// The number of hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// A Redis Cluster of three masters (no replicas) on loopback ports, each
/// a [`RedisServer`] in cluster mode; the 16384 slots split in three. Killed
/// on drop.
///
/// ```no_run
/// let cluster = portcullis_testing::RedisCluster::start();
/// let urls = cluster.urls(); // ["redis://127.0.0.1:PORT/", ...]
/// # let _ = urls;
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three servers in cluster mode, assigns each a third of the
    /// slots (`CLUSTER ADDSLOTS`), introduces them (`CLUSTER MEET`) and waits
    /// until every node reports `cluster_state:ok` with three known nodes.
    ///
    /// Panics (failing the test) if `redis-server` is not installed or the
    /// cluster does not form within 20 seconds.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                )
            })
            .collect();
        let per_node = SLOTS.div_ceil(3);
        for (i, node) in nodes.iter().enumerate() {
            let first = u16::try_from(i).expect("three nodes") * per_node;
            let last = (first + per_node).min(SLOTS);
            let slots: Vec<String> = (first..last).map(|s| s.to_string()).collect();
            let mut args = vec!["CLUSTER", "ADDSLOTS"];
            args.extend(slots.iter().map(String::as_str));
            node.command(&args).expect("CLUSTER ADDSLOTS");
        }
        for node in &nodes[1..] {
            let port = node.port.to_string();
            nodes[0]
                .command(&["CLUSTER", "MEET", "127.0.0.1", &port])
                .expect("CLUSTER MEET");
        }
        let cluster = Self { nodes };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster.is_ok() {
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not reach cluster_state:ok in 20 s"
            );
            sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// Whether every node reports `cluster_state:ok` and knows three nodes.
    fn is_ok(&self) -> bool {
        self.nodes.iter().all(|node| {
            node.command(&["CLUSTER", "INFO"])
                .ok()
                .flatten()
                .is_some_and(|info| {
                    info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
                })
        })
    }

    /// The nodes' URLs, `redis://127.0.0.1:{port}/` each.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, to [`kill`](RedisServer::kill) and
    /// [`restart`](RedisServer::restart) one (it rejoins with its slots,
    /// from its cluster configuration file, and without its data).
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// The index in [`nodes`](Self::nodes) of the master that holds `key`'s
    /// hash slot.
    pub fn node_of(&self, key: &str) -> usize {
        let slot: u16 = self.nodes[0]
            .command(&["CLUSTER", "KEYSLOT", key])
            .expect("CLUSTER KEYSLOT")
            .and_then(|s| s.parse().ok())
            .expect("a slot number");
        usize::from(slot / SLOTS.div_ceil(3))
    }
}
