//! floor: what the kernel alone charges for one delivery on this machine, as a
//! yardstick for the fanout figures. No Recess involved: one blocking writer
//! thread writes one frame-sized message to each of N loopback TCP sockets per
//! round (one `write` per socket, as a WebSocket server must), at the fanout
//! rate; one reader thread reads them. Each thread reads its own CPU time from
//! `/proc/thread-self/stat`.
//!
//! It runs twice, with two readers. First a thread that reads the sockets
//! one after the other with blocking reads (`writer_cpu_us_per_message`,
//! the figure quoted as `floor`): most writes find nobody waiting on their
//! socket, so they wake nobody. Then a tokio runtime that reads them as the
//! load tool's clients do, each socket registered with epoll
//! (`writer_cpu_us_per_message_epoll_reader`): on loopback the writer runs the
//! receiver's TCP input and its wake-up too, and each write now also
//! queues an epoll event, as every delivery to a load-tool client does.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster;
use crate::stats::{Figures, round};
use crate::{Outcome, Result, bail};

#[derive(Clone, Copy)]
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
    let (blocking, epoll) = tokio::task::spawn_blocking(move || -> Result<_> {
        let params = &params;
        Ok((
            measure(params, Reader::Blocking)?,
            measure(params, Reader::Epoll)?,
        ))
    })
    .await??;
    let messages = blocking.messages;
    let mut figures = Figures::default();
    figures.put("scenario", json!("floor"));
    figures.put("sockets", json!(params.sockets));
    figures.put("rate", json!(params.rate));
    figures.put("messages", json!(messages as u64));
    figures.put("message_bytes", json!(MESSAGE_BYTES));
    for (m, suffix) in [(&blocking, ""), (&epoll, "_epoll_reader")] {
        let per_message = |cpu: f64| json!(round(cpu * 1e6 / messages, 2));
        figures.put(
            &format!("writer_cpu_us_per_message{suffix}"),
            per_message(m.writer_cpu),
        );
        figures.put(
            &format!("reader_cpu_us_per_message{suffix}"),
            per_message(m.reader_cpu),
        );
    }
    figures.put("wall_s", json!(round(blocking.wall_s + epoll.wall_s, 2)));
    Ok(Outcome { figures, ok: true })
}

#[derive(Clone, Copy)]
enum Reader {
    /// One thread, blocking reads, socket after socket.
    Blocking,
    /// A current-thread tokio runtime, one task per socket.
    Epoll,
}

struct Measured {
    messages: f64,
    writer_cpu: f64,
    reader_cpu: f64,
    wall_s: f64,
}

fn measure(params: &Params, how: Reader) -> Result<Measured> {
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
        match how {
            Reader::Blocking => {
                let mut buf = [0u8; MESSAGE_BYTES];
                for _ in 0..rounds {
                    for socket in &mut readers {
                        socket.read_exact(&mut buf)?;
                    }
                }
            }
            Reader::Epoll => read_with_epoll(readers, rounds)?,
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
    Ok(Measured {
        messages: (rounds * params.sockets) as f64,
        writer_cpu,
        reader_cpu,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

/// Reads `rounds` messages from each socket, every socket a task of one
/// current-thread runtime (epoll, as the load tool's clients read).
fn read_with_epoll(readers: Vec<TcpStream>, rounds: usize) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for socket in readers {
            socket.set_nonblocking(true)?;
            let mut socket = tokio::net::TcpStream::from_std(socket)?;
            tasks.spawn(async move {
                let mut buf = [0u8; MESSAGE_BYTES];
                for _ in 0..rounds {
                    tokio::time::timeout(IO_TIMEOUT, socket.read_exact(&mut buf)).await??;
                }
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done?.map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
