//! bench-large: plans, hashes, encodes and serves build records.
use clap::Parser;
use std::io::Write;

/// What the benchmark workspace's binary does with its inputs.
#[derive(Parser, Debug)]
#[command(version, about = "bench-large: the large kache benchmark workspace's binary")]
struct Cli {
    /// Edges "a -> b" to order
    #[arg(long)]
    dep: Vec<String>,
    /// Serve HTTP for this many milliseconds
    #[arg(long, default_value_t = 0)]
    serve_ms: u64,
}

fn main() -> anyhow::Result<()> {
    env_logger::init();
    server::init_logs();
    let cli = Cli::parse();
    tools::on_interrupt();
    let edges: Vec<_> = cli.dep.iter().filter_map(|d| engine::parse_dep(d)).collect();
    let order = engine::order(&edges).ok_or_else(|| anyhow::anyhow!("cycle"))?;
    let bar = indicatif::ProgressBar::hidden();
    let mut dir = tempfile::tempdir()?;
    let mut out = std::io::stdout();
    for name in &order {
        let unit = model::Unit::new(name, model::KINDS[0], 0);
        for (fmt, bytes) in unit.encodings()? {
            let gz = engine::compress(&bytes)?;
            writeln!(out, "{} {} {} bytes ({} gzipped)", name, fmt, bytes.len(), gz.len())?;
        }
        bar.inc(1);
    }
    let chart = perf::chart(&[1, 2, 3], 4);
    chart.save(dir.path().join("c.png")).ok();
    let (_, _) = crossterm::terminal::size().unwrap_or((80, 24));
    log::debug!("pid {} profile {}", nix::unistd::getpid(), env!("BENCH_LARGE_PROFILE"));
    dir.close()?;
    dir = tempfile::tempdir()?;
    drop(dir);
    if cli.serve_ms > 0 {
        server::run_for(cli.serve_ms)?;
    }
    println!("{} {}", model::Unit::describe(), tools::short_hash(b"bench"));
    Ok(())
}
