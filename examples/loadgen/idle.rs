//! idle: N sessions of the shipped `games/chat.lua`, created over REST
//! (`POST /api/sessions {"game":"chat"}`) with nobody connected. Measures the
//! nodes' RSS growth per session and the CPU the idle sessions still cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::cluster::{Cluster, Options};
use crate::http::HttpConn;
use crate::stats::{Errors, Figures, Latencies, round};
use crate::{Outcome, Result, bail};

pub struct Params {
    pub sessions: usize,
    /// Quiet time after the sessions are created, to measure idle CPU.
    pub quiet: Duration,
}

/// Sessions created before the baseline, so one-time allocations (the game's
/// compiled rules, the store's first pages) do not count per session.
const WARM_UP: usize = 100;
/// REST connections creating sessions at once.
const CREATORS: usize = 8;

pub async fn run(options: &Options, params: &Params) -> Result<Outcome> {
    if params.sessions == 0 {
        bail!("--sessions must be above 0");
    }
    let mut cluster = Cluster::start(options).await?;
    let result = measure(&mut cluster, params).await;
    cluster.finish(&result).await;
    result
}

struct Created {
    latency: Latencies,
    errors: Errors,
}

/// Creates `count` chat sessions from `CREATORS` connections, spread over the nodes.
async fn create(addrs: &[std::net::SocketAddr], count: usize) -> Created {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CREATORS.min(count))
        .map(|w| {
            let next = next.clone();
            let mut conn = HttpConn::new(addrs[w % addrs.len()]);
            tokio::spawn(async move {
                let mut done = Created {
                    latency: Latencies::default(),
                    errors: Errors::default(),
                };
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let sent = Instant::now();
                    match conn.post_json("/api/sessions", br#"{"game":"chat"}"#).await {
                        Ok(_) => done.latency.record_us(sent.elapsed().as_micros() as u64),
                        Err(e) => done.errors.add(format!("create: {e}")),
                    }
                }
                done
            })
        })
        .collect();
    let mut all = Created {
        latency: Latencies::default(),
        errors: Errors::default(),
    };
    for w in workers {
        match w.await {
            Ok(done) => {
                all.latency.extend(done.latency);
                all.errors.merge(done.errors);
            }
            Err(e) => all.errors.add(format!("creator task failed: {e}")),
        }
    }
    all
}

async fn measure(cluster: &mut Cluster, params: &Params) -> Result<Outcome> {
    let addrs = cluster.addrs();
    let warm = create(&addrs, WARM_UP).await;
    if warm.errors.total() > 0 {
        bail!("cannot create sessions: {}", warm.errors.to_json());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = cluster.usage()?;

    eprintln!(
        "loadgen: creating {} chat sessions over {} node(s)",
        params.sessions,
        addrs.len()
    );
    cluster.start_profiling("idle").await?;
    let started = Instant::now();
    let mut created = create(&addrs, params.sessions).await;
    let create_s = started.elapsed().as_secs_f64();
    let made = created.latency.len();
    let after_create = cluster.usage()?;
    cluster.stop_profiling().await;
    // Let the store flush and the allocator settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = cluster.usage()?;
    tokio::time::sleep(params.quiet).await;
    let quiet = cluster.usage()?;
    cluster.check_alive()?;

    let grown_kb = settled.nodes_anon_kb() as f64 - base.nodes_anon_kb() as f64;
    let per_session_kb = grown_kb / made.max(1) as f64;
    let grown_rss_kb = settled.nodes_rss_kb() as f64 - base.nodes_rss_kb() as f64;
    let redis_grown_kb = settled.redis.map_or(0.0, |u| u.rss_kb as f64)
        - base.redis.map_or(0.0, |u| u.rss_kb as f64);
    let quiet_s = params.quiet.as_secs_f64().max(1e-9);
    let mut figures = Figures::default();
    figures.put("scenario", json!("idle"));
    figures.put("nodes", json!(addrs.len()));
    figures.put("sessions", json!(made));
    figures.put("kb_per_session", json!(round(per_session_kb, 1)));
    figures.put(
        "kb_per_session_rss",
        json!(round(grown_rss_kb / made.max(1) as f64, 1)),
    );
    figures.put(
        "sessions_per_gib",
        json!(round((1u64 << 20) as f64 / per_session_kb.max(1e-9), 0)),
    );
    figures.put("rss_mb", settled.rss_mb());
    figures.put(
        "redis_kb_per_session",
        json!(round(redis_grown_kb / made.max(1) as f64, 1)),
    );
    figures.put("create_per_s", json!(round(made as f64 / create_s, 0)));
    figures.extend(created.latency.summary("create_"));
    figures.put(
        "create_cpu_us_per_session",
        json!(round(
            (after_create.nodes_cpu_s() - base.nodes_cpu_s()) * 1e6 / made.max(1) as f64,
            0
        )),
    );
    figures.put(
        "idle_cpu_pct",
        json!(round(
            (quiet.nodes_cpu_s() - settled.nodes_cpu_s()) * 100.0 / quiet_s,
            1
        )),
    );
    figures.put(
        "idle_redis_cpu_pct",
        json!(round(
            (quiet.redis_cpu_s() - settled.redis_cpu_s()) * 100.0 / quiet_s,
            1
        )),
    );
    figures.put("errors", created.errors.to_json());
    let ok = created.errors.total() == 0 && made == params.sessions;
    Ok(Outcome { figures, ok })
}
