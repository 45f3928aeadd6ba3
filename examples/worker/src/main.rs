//! `example-worker`: processes jobs that carry the token of whoever
//! submitted them.
//!
//! - `example-worker` (no arguments): the demo. A key is generated on the
//!   spot, tokens are minted with it, and a few jobs show what is done and
//!   what is refused, and why.
//! - `example-worker --config FILE [--file JOBS]`: reads jobs, one JSON
//!   object `{"token": "...", "action": "report|reindex|purge"}` per line,
//!   from `JOBS` or standard input, and prints one JSON outcome per line.
//!   `FILE` is YAML or TOML (see `config.example.yaml`); environment
//!   variables `PORTCULLIS__...` override its keys (`__` nests).

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use std::io::{BufReader, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, bail};
use example_worker::demo::Demo;
use example_worker::{Worker, WorkerConfig};
use portcullis_core::config;

const USAGE: &str = "\
usage: example-worker                                 run the demo
       example-worker --config FILE [--file JOBS]     process jobs (JSON lines) from JOBS or stdin";

struct Args {
    config: Option<PathBuf>,
    jobs: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        config: None,
        jobs: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => args.config = Some(it.next().context("--config needs a file")?.into()),
            "--file" => args.jobs = Some(it.next().context("--file needs a file")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if args.jobs.is_some() && args.config.is_none() {
        bail!("--file needs --config: the worker must know whose tokens to trust\n{USAGE}");
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let Some(path) = args.config else {
        return demo().await;
    };
    let env = config::env_overrides("PORTCULLIS", std::env::vars());
    let cfg: WorkerConfig = config::load_file(&path, &env)?;
    let worker = Worker::new(cfg).with_context(|| format!("{}", path.display()))?;
    let stdout = std::io::stdout().lock();
    match &args.jobs {
        Some(jobs) => {
            let file =
                std::fs::File::open(jobs).with_context(|| format!("opening {}", jobs.display()))?;
            worker.process_lines(BufReader::new(file), stdout).await?;
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln_hint();
            }
            worker.process_lines(stdin.lock(), stdout).await?;
        }
    }
    Ok(())
}

#[allow(clippy::print_stderr)]
fn eprintln_hint() {
    eprintln!(
        "reading jobs from standard input, one JSON object per line: {{\"token\": \"...\", \"action\": \"report\"}}"
    );
}

async fn demo() -> anyhow::Result<()> {
    let demo = Demo::new()?;
    println!(
        "demo: jobs whose tokens are signed by a key generated just now (issuer {}),",
        example_worker::demo::ISSUER
    );
    println!(
        "capabilities: read, write -> read, admin -> everything; a token's scopes name them\n"
    );
    for (what, job) in demo.jobs()? {
        let outcome = demo.worker.process(&job).await;
        println!("{what}");
        println!("  {}", outcome.to_json());
    }
    println!("\nwith your own jobs and keys (see config.example.yaml):");
    println!("  cargo run -p example-worker -- --config FILE --file jobs.jsonl");
    Ok(())
}
