//! floor: what the kernel alone charges for one delivery on this machine, as a
//! yardstick for the fanout figures. No Recess involved: one blocking writer
//! thread writes one frame-sized message to each of N loopback TCP sockets per
//! round (one `write` per socket, as a WebSocket server must), at the fanout
//! rate; one reader thread reads them. Each thread reads its own CPU time from
//! `/proc/thread-self/stat`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster;
use crate::stats::{Figures, round};
use crate::{Outcome, Result, bail};

pub struct Params {
    pub sockets: usize,
    pub rate: f64,
    pub seconds: f64,
}

/// About the size of a fanout event frame (JSON text plus a 2-byte header).
const MESSAGE_BYTES: usize = 110;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(params: Params) -> Result<Outcome> {
    if params.sockets == 0 || params.rate <= 0.0 || params.seconds <= 0.0 {
        bail!("--players, --rate and --seconds must be above 0");
    }
    cluster::check_fd_limit(2 * params.sockets + 64)?;
    tokio::task::spawn_blocking(move || measure(&params)).await?
}

fn measure(params: &Params) -> Result<Outcome> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut readers = Vec::with_capacity(params.sockets);
    let mut writers = Vec::with_capacity(params.sockets);
    for _ in 0..params.sockets {
        let reader = TcpStream::connect(addr)?;
        reader.set_read_timeout(Some(IO_TIMEOUT))?;
        let (writer, _) = listener.accept()?;
        writer.set_nodelay(true)?;
        writer.set_write_timeout(Some(IO_TIMEOUT))?;
        readers.push(reader);
        writers.push(writer);
    }
    let rounds = ((params.rate * params.seconds).round() as usize).max(1);
    let reading = std::thread::spawn(move || -> Result<f64> {
        let start = cluster::thread_cpu_s()?;
        let mut buf = [0u8; MESSAGE_BYTES];
        for _ in 0..rounds {
            for socket in &mut readers {
                socket.read_exact(&mut buf)?;
            }
        }
        Ok(cluster::thread_cpu_s()? - start)
    });
    let message = [b'x'; MESSAGE_BYTES];
    let period = Duration::from_secs_f64(1.0 / params.rate);
    let start = cluster::thread_cpu_s()?;
    let t0 = Instant::now();
    for r in 0..rounds {
        if let Some(wait) = (t0 + period * r as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for socket in &mut writers {
            socket.write_all(&message)?;
        }
    }
    let writer_cpu = cluster::thread_cpu_s()? - start;
    let reader_cpu = match reading.join() {
        Ok(r) => r?,
        Err(_) => bail!("the reader thread panicked"),
    };
    let messages = (rounds * params.sockets) as f64;
    let mut figures = Figures::default();
    figures.put("scenario", json!("floor"));
    figures.put("sockets", json!(params.sockets));
    figures.put("rate", json!(params.rate));
    figures.put("messages", json!(messages as u64));
    figures.put("message_bytes", json!(MESSAGE_BYTES));
    figures.put(
        "writer_cpu_us_per_message",
        json!(round(writer_cpu * 1e6 / messages, 2)),
    );
    figures.put(
        "reader_cpu_us_per_message",
        json!(round(reader_cpu * 1e6 / messages, 2)),
    );
    figures.put("wall_s", json!(round(t0.elapsed().as_secs_f64(), 2)));
    Ok(Outcome { figures, ok: true })
}
