//! Test peers that run as child processes and announce where they listen:
//! the child prints one JSON line `{"issuer": ..., "port": ...}` on its
//! standard output once its socket listens, and exits when its standard
//! input closes (so it dies with the test process, however that ends).

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout};

/// What a peer announces.
#[derive(Deserialize)]
pub(crate) struct Ready {
    /// The peer's issuer URL.
    pub(crate) issuer: String,
    /// Its loopback port.
    pub(crate) port: u16,
}

/// A started peer: the process, the pipes that keep it alive, its address.
pub(crate) struct Announced {
    pub(crate) child: Child,
    pub(crate) stdin: ChildStdin,
    pub(crate) stdout: BufReader<ChildStdout>,
    pub(crate) ready: Ready,
}

/// Waits (at most `timeout`) for `child`, spawned with piped standard input
/// and output, to announce its address, then checks that the port answers.
/// `name` names the program in errors.
pub(crate) async fn wait_for(
    mut child: Child,
    name: &str,
    timeout: Duration,
) -> io::Result<Announced> {
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(io::Error::other("the child's stdin and stdout are piped"));
    };
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    let ready = match tokio::time::timeout(timeout, stdout.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => serde_json::from_str::<Ready>(line.trim()).map_err(|e| {
            io::Error::new(
                ErrorKind::InvalidData,
                format!("{name} printed `{}`: {e}", line.trim()),
            )
        })?,
        Ok(Ok(_)) => {
            let status = child.wait().await?;
            return Err(io::Error::other(format!(
                "{name} exited ({status}) before announcing its address"
            )));
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!(
                    "{name} did not announce its address within {} s",
                    timeout.as_secs()
                ),
            ));
        }
    };
    // The socket listens before the line is printed; make sure it answers.
    TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, ready.port))).await?;
    Ok(Announced {
        child,
        stdin,
        stdout,
        ready,
    })
}
