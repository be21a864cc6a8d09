//! The `debsync` command: parse the CLI, set up logging, call the library, map the error to an
//! exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use debsync::config::{Config, ServeConfig};
use debsync::serve::{self, Limits, Server, Site};
use tracing_subscriber::EnvFilter;

/// Debian/Ubuntu archive mirror synchronizer and static server.
#[derive(Parser)]
#[command(name = "debsync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: text for people, json (one object per line) for collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Only warnings and errors (cron mails nothing for a healthy run).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail: -v for debug (phase timings, retries), -vv for trace.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logging on stderr: `RUST_LOG` wins when set; else -q / -v pick the level.
fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

#[derive(Subcommand)]
enum Command {
    Sync(SyncArgs),
    Serve(ServeArgs),
    Verify(VerifyArgs),
    Check(CheckArgs),
    Status(StatusArgs),
    Daemon(DaemonArgs),
    #[command(subcommand)]
    Cache(CacheCommand),
    Preheat(PreheatArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `debsync manpage > debsync.1`.
    Manpage,
}

/// Serve the mirrors and sync each on its cron schedule, in one process (SIGHUP reloads the
/// config, SIGTERM/SIGINT stop).
#[derive(Args)]
struct DaemonArgs {
    /// Path to mirror.toml.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on [default: [serve] listen of the config, else 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

/// Edge cache maintenance (`[[cache]]` in the config).
#[derive(Subcommand)]
enum CacheCommand {
    /// Remove temp files of killed runs and evict least recently used files down to the
    /// cache's max_size (or --max-size); the InRelease and indices of each suite stay.
    Prune(PruneArgs),
}

/// Fetch packages (and with --with-depends their dependency closure) into an edge cache
/// ahead of a rollout; every file is verified like a client's download.
#[derive(Args)]
struct PreheatArgs {
    /// The [[cache]] name.
    cache: String,
    /// Path to mirror.toml.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// The suite (dists/<SUITE>).
    #[arg(long, value_name = "SUITE")]
    suite: String,
    /// Package names, comma-separated.
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', required = true)]
    packages: Vec<String>,
    /// Also every package they depend on (Depends, Pre-Depends; alternatives, Provides).
    #[arg(long)]
    with_depends: bool,
    /// Architectures whose Packages to read (all is added), comma-separated.
    #[arg(
        long,
        value_name = "ARCH,…",
        value_delimiter = ',',
        default_value = "amd64"
    )]
    arch: Vec<String>,
}

#[derive(Args)]
struct PruneArgs {
    /// Path to mirror.toml.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Only this cache.
    #[arg(long, value_name = "NAME")]
    cache: Option<String>,
    /// Evict down to this size instead of the configured max_size ("10G", "512M", bytes).
    #[arg(long, value_name = "SIZE")]
    max_size: Option<String>,
}

/// Show each mirror's last run, result, archive serial, Release age and pool size (from its
/// state file; no network).
#[derive(Args)]
struct StatusArgs {
    /// Path to mirror.toml.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Only this mirror.
    #[arg(long, value_name = "NAME")]
    mirror: Option<String>,
    /// Machine-readable output: a JSON array, one object per mirror (with --changes: one per
    /// run).
    #[arg(long)]
    json: bool,
    /// What recent runs added, upgraded and removed, per suite (project/debsync/changes/).
    #[arg(long)]
    changes: bool,
    /// With --changes: only runs on or after this day (YYYY-MM-DD, UTC), or after this
    /// archive serial.
    #[arg(long, value_name = "DATE|SERIAL", requires = "changes")]
    since: Option<debsync::status::Since>,
}

/// Mirror the configured upstreams: verify, stage, pool, swap, cleanup, trace.
#[derive(Args)]
struct SyncArgs {
    /// Path to mirror.toml.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Only sync the mirror with this name.
    #[arg(long, value_name = "NAME")]
    mirror: Option<String>,
    /// Delete more than `max_delete` files if upstream really dropped them.
    #[arg(long)]
    force_delete: bool,
    /// Re-hash every pool file on disk and fetch the wrong or missing ones (slow; repairs
    /// what `debsync verify` finds).
    #[arg(long)]
    full: bool,
}

/// Re-hash what each served Release lists (indices and pool files); non-zero if anything is
/// wrong.
#[derive(Args)]
struct VerifyArgs {
    /// Path to mirror.toml.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Only verify the mirror with this name.
    #[arg(long, value_name = "NAME")]
    mirror: Option<String>,
}

/// Before a sync: check config, keyrings, upstream and signatures, and show what a sync would
/// download and delete against the free disk space. Writes nothing; non-zero if a sync would
/// fail.
#[derive(Args)]
struct CheckArgs {
    /// Path to mirror.toml.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Only check the mirror with this name.
    #[arg(long, value_name = "NAME")]
    mirror: Option<String>,
    /// Machine-readable output: a JSON array, one object per mirror.
    #[arg(long)]
    json: bool,
}

/// Serve the synced trees over HTTP (each mirror at /<name>/), or one directory at /.
#[derive(Args)]
struct ServeArgs {
    /// mirror.toml: serves <root>/<name> at /<name>/ for every [[mirror]].
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "root",
        conflicts_with = "root"
    )]
    config: Option<PathBuf>,
    /// Serve this directory at / instead of the mirrors of a config.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Address to listen on [default: [serve] listen of the config, else 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// PEM certificate chain: serve HTTPS instead of HTTP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Most connections open at once; more get 503.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Access log file, nginx combined format, reopened on SIGHUP [default: [serve]
    /// access_log of the config, else the lines go to stderr at RUST_LOG=debsync::access=info].
    #[arg(long, value_name = "FILE")]
    access_log: Option<PathBuf>,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

/// glibc gives each thread that allocates its own arena, up to 8 per core, and keeps what
/// each one freed: a sync's short-lived buffers then stay resident once per thread. Two
/// arenas keep the peak near what is live at once (the memory bound of a run) while the
/// server's threads still rarely meet on one lock.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// A run's large buffers (index decoders, planning tables) go back to the system when freed:
/// glibc otherwise raises its mmap threshold after the first such free and keeps later ones
/// on the heap, resident for the rest of the run. Not for the server, whose 256 KiB read
/// buffers are better reused.
fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Sync(_) | Command::Check(_) | Command::Verify(_)
    ) {
        return_large_blocks();
    }
    init_logging(&cli);
    let quiet = cli.quiet;
    let result = match cli.command {
        Command::Sync(args) => run_sync(args, quiet).await,
        Command::Serve(args) => run_serve(args).await,
        Command::Verify(args) => run_verify(args),
        Command::Check(args) => run_check(args).await,
        Command::Status(args) => run_status(args),
        Command::Cache(CacheCommand::Prune(args)) => run_prune(args).await,
        Command::Preheat(args) => run_preheat(args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            // Into a buffer first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "debsync", &mut script);
            std::io::stdout()
                .write_all(&script)
                .map_err(debsync::Error::Io)
        }
        Command::Manpage => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(debsync::Error::Io)
        }
        Command::Daemon(args) => {
            // Exit right away: dropping the runtime would wait for any sync still running
            // past the stop grace period, and the daemon promises to stop within it.
            match debsync::daemon::run(&args.config, args.listen).await {
                Ok(()) => std::process::exit(0),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1)
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_serve(args: ServeArgs) -> Result<(), debsync::Error> {
    let (site, listen, access_log) = match (&args.config, &args.root) {
        (Some(path), _) => {
            let config = Config::load_without_keyrings(path)?;
            // A cache that cannot be set up (unreadable keyring or credentials) stops the
            // start with its one error line.
            for c in &config.caches {
                debsync::cache::Cache::new(c, &config.root, &config.sync)?;
            }
            (
                Site::from_config(&config),
                config.serve.listen,
                config.serve.access_log,
            )
        }
        (None, Some(root)) => (Site::bare(root)?, ServeConfig::default().listen, None),
        (None, None) => {
            return Err(
                debsync::serve::ServeError::Usage("--config or --root is required".into()).into(),
            );
        }
    };
    let listen = args.listen.unwrap_or(listen);
    let limits = Limits {
        max_connections: args.max_connections,
        ..Limits::default()
    };
    let mut server = Server::new(site, limits);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        server = server.with_tls(cert, key)?;
    }
    let access_log = match args.access_log.or(access_log) {
        Some(path) => Some(serve::AccessLog::open(&path)?),
        None => None,
    };
    if let Some(log) = &access_log {
        server = server.with_access_log(log.clone());
    }
    let shutdown = serve::shutdown_signal_reopening(access_log)?;
    let listener = serve::bind(&listen).await?;
    let addr = listener
        .local_addr()
        .map_err(serve::ServeError::LocalAddr)?;
    println!("listening on {}://{addr}", server.scheme());
    server.run(listener, shutdown).await?;
    Ok(())
}

async fn run_sync(args: SyncArgs, quiet: bool) -> Result<(), debsync::Error> {
    let config = debsync::config::Config::load(&args.config)?;
    let opts = debsync::sync::SyncOptions {
        force_delete: args.force_delete,
        full: args.full,
    };
    let results = debsync::sync::sync_all(&config, args.mirror.as_deref(), &opts).await?;
    let total = results.len();
    let mut failed = Vec::new();
    for (name, result) in results {
        match result {
            Ok(_) if quiet => {}
            Ok(r) if r.outcome == debsync::sync::Outcome::Unchanged => {
                println!("{}: unchanged ({} ms)", r.mirror, r.elapsed_ms);
            }
            Ok(r) => println!(
                "{}: updated {} in {:.1} s: {} files fetched, {} verified on disk, {} deleted, {} received",
                r.mirror,
                r.suites_updated.join(" "),
                r.elapsed_ms as f64 / 1000.0,
                r.fetched_files,
                r.checked_local,
                r.deleted_files,
                debsync::status::size(r.bytes_received)
            ),
            // One mirror: its error is the run's error, printed once by `main`.
            Err(e) if total == 1 => return Err(e.into()),
            Err(e) => {
                eprintln!("error: {name}: {e}");
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(debsync::Error::MirrorsFailed { failed, total })
    }
}

async fn run_preheat(args: PreheatArgs) -> Result<(), debsync::Error> {
    let config = Config::load(&args.config)?;
    let Some(c) = config.caches.iter().find(|c| c.name == args.cache) else {
        return Err(debsync::Error::Usage(format!(
            "no [[cache]] named {:?} in {}",
            args.cache,
            args.config.display()
        )));
    };
    let cache = debsync::cache::Cache::new(c, &config.root, &config.sync)?;
    let request = debsync::cache::preheat::PreheatRequest {
        suite: args.suite,
        packages: args.packages,
        with_depends: args.with_depends,
        architectures: args.arch,
    };
    let r = debsync::cache::preheat::preheat(&cache, &request, false).await?;
    println!(
        "{}: {} package(s): {} file(s) fetched, {} already cached ({})",
        c.name,
        r.packages.len(),
        r.fetched,
        r.cached,
        debsync::status::size(r.bytes)
    );
    for m in &r.missing {
        println!("{}: not in the suite's indices: {m}", c.name);
    }
    if !r.failed.is_empty() {
        return Err(debsync::Error::Usage(format!(
            "{}: {} file(s) failed: {}",
            c.name,
            r.failed.len(),
            r.failed.join("; ")
        )));
    }
    Ok(())
}

async fn run_prune(args: PruneArgs) -> Result<(), debsync::Error> {
    let config = Config::load(&args.config)?;
    let max_size = match &args.max_size {
        None => None,
        Some(text) => Some(debsync::cache::config::parse_size(text).ok_or_else(|| {
            debsync::Error::Usage(format!(
                "--max-size {text:?}: expected bytes or a size like \"10G\", \"512M\""
            ))
        })?),
    };
    let selected: Vec<_> = config
        .caches
        .iter()
        .filter(|c| args.cache.as_deref().is_none_or(|n| n == c.name))
        .collect();
    if selected.is_empty() {
        return Err(debsync::Error::Usage(match &args.cache {
            Some(n) => format!("no [[cache]] named {n:?} in {}", args.config.display()),
            None => format!("no [[cache]] in {}", args.config.display()),
        }));
    }
    for c in selected {
        let cache = debsync::cache::Cache::new(c, &config.root, &config.sync)?;
        let r = debsync::cache::prune(&cache, max_size).await;
        println!(
            "{}: evicted {} file(s) ({}), removed {} stale temp file(s); {} left",
            c.name,
            r.evicted_files,
            debsync::status::size(r.evicted_bytes),
            r.temp_files,
            debsync::status::size(r.bytes_left)
        );
    }
    Ok(())
}

fn run_status(args: StatusArgs) -> Result<(), debsync::Error> {
    let config = Config::load_without_keyrings(&args.config)?;
    if args.changes {
        let logs = debsync::status::changes(&config, args.mirror.as_deref(), args.since.as_ref())?;
        if args.json {
            println!("{}", to_json(&logs)?);
        } else {
            print!("{}", debsync::status::render_changes(&logs));
        }
        return Ok(());
    }
    let statuses = debsync::status::collect(&config, args.mirror.as_deref())?;
    if args.json {
        println!("{}", to_json(&statuses)?);
    } else {
        print!(
            "{}",
            debsync::status::render(&statuses, debsync::sync::now_unix())
        );
    }
    Ok(())
}

async fn run_check(args: CheckArgs) -> Result<(), debsync::Error> {
    let config = Config::load_without_keyrings(&args.config)?;
    let checks = debsync::check::plan::check_all(&config, args.mirror.as_deref()).await?;
    if args.json {
        println!("{}", to_json(&checks)?);
    } else {
        print!("{}", debsync::check::plan::render(&checks));
    }
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.mirror.clone())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(debsync::Error::MirrorsFailed {
        failed,
        total: checks.len(),
    })
}

fn to_json(value: &impl serde::Serialize) -> Result<String, debsync::Error> {
    serde_json::to_string_pretty(value)
        .map_err(|e| debsync::Error::Io(std::io::Error::other(format!("output as JSON: {e}"))))
}

fn run_verify(args: VerifyArgs) -> Result<(), debsync::Error> {
    let config = debsync::config::Config::load(&args.config)?;
    let mut problems = 0;
    for mirror in config.select(args.mirror.as_deref())? {
        let report = debsync::check::check_mirror(&config, mirror)?;
        for p in &report.problems {
            println!("{}: {p}", mirror.name);
        }
        println!(
            "{}: {} indices and {} pool files checked, {} problem(s)",
            mirror.name,
            report.indices,
            report.pool_files,
            report.problems.len()
        );
        problems += report.problems.len();
    }
    if problems > 0 {
        return Err(debsync::Error::VerifyFailed(problems));
    }
    Ok(())
}
