//! Cross-process locks for job runs, held as bound abstract Unix sockets:
//! the kernel releases them when the process dies, however it dies, so a
//! crashed run never holds a slot and a sweep can tell a live run's
//! resources from a dead one's. (Linux only, like the rest of the node.)

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::time::Duration;

use tokio::time::Instant;

/// A held lock; released on drop or process exit.
#[derive(Debug)]
pub struct Held {
    _socket: UnixListener,
    pub name: String,
}

fn try_hold(name: &str) -> io::Result<Option<Held>> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    match UnixListener::bind_addr(&addr) {
        Ok(socket) => Ok(Some(Held {
            _socket: socket,
            name: name.to_owned(),
        })),
        Err(err) if err.kind() == io::ErrorKind::AddrInUse => Ok(None),
        Err(err) => Err(err),
    }
}

fn run_lock_name(node: &str, run: &str) -> String {
    format!("garage/{node}/job-run/{run}")
}

/// Marks run `run` of `node` as alive for as long as the value lives.
pub fn hold_run(node: &str, run: &str) -> io::Result<Held> {
    try_hold(&run_lock_name(node, run))?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("job run {run} is already held by another process"),
        )
    })
}

/// True while some process holds run `run` of `node`.
pub fn run_alive(node: &str, run: &str) -> bool {
    // Binding succeeds only when nobody holds it; the probe is dropped at once.
    !matches!(try_hold(&run_lock_name(node, run)), Ok(Some(_)))
}

/// One of the node's `max` job slots.
pub fn try_slot(node: &str, max: u32) -> io::Result<Option<Held>> {
    for index in 0..max {
        if let Some(held) = try_hold(&format!("garage/{node}/job-slot/{index}"))? {
            return Ok(Some(held));
        }
    }
    Ok(None)
}

/// Waits for a free slot until `deadline`; `waiting` is called once when
/// the first try finds every slot taken.
pub async fn wait_for_slot(
    node: &str,
    max: u32,
    deadline: Instant,
    waiting: impl FnOnce(),
) -> io::Result<Option<Held>> {
    let mut waiting = Some(waiting);
    loop {
        if let Some(held) = try_slot(node, max)? {
            return Ok(Some(held));
        }
        if let Some(notify) = waiting.take() {
            notify();
        }
        let next = Instant::now() + Duration::from_millis(200);
        if next >= deadline {
            return Ok(None);
        }
        tokio::time::sleep_until(next).await;
    }
}
