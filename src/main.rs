//! `postling`: parse the arguments, run the command, print any error
//! once, and exit with its code. No logic lives here.

use std::process::ExitCode;

use postling::cli::{self, Command};
use postling::config::{Config, Problems};

fn main() -> ExitCode {
    // Run as `sendmail` (a link), or `postling sendmail ...`.
    let args: Vec<String> = std::env::args().collect();
    let called = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("");
    if called == "sendmail" {
        return sendmail(&args[1..]);
    }
    if args.get(1).map(String::as_str) == Some("sendmail") {
        return sendmail(&args[2..]);
    }
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("postling: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Version => {
            println!("postling {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Doctor { config, options } => doctor(&config, &options),
        Command::Status { config, json } => status(&config, json),
        Command::HelpFor(command) => {
            print!("{}", cli::command_help(command).unwrap_or(cli::USAGE));
            ExitCode::SUCCESS
        }
        // `serve` loads the certificate once, when it starts its services.
        Command::Check { config } => match load(&config).and_then(check_tls) {
            Ok((cfg, dir)) => {
                for w in cfg.warnings() {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: ok ({} users, {} domains)",
                    cfg.path.display(),
                    dir.users.len(),
                    cfg.domains.len()
                );
                ExitCode::SUCCESS
            }
            Err(problems) => report(&problems),
        },
        Command::DkimKeygen {
            domain,
            selector,
            ed25519,
            out,
        } => match postling::keygen::dkim_keygen(
            &domain, &selector, ed25519, &out,
        ) {
            Ok(record) => {
                println!("{record}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("postling: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Queue { config, action } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(problems) => return report(&problems),
            };
            queue(&cfg, &action)
        }
        Command::Spam { config, action } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(problems) => return report(&problems),
            };
            spam(&cfg, &action)
        }
        Command::User { config, action } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(problems) => return report(&problems),
            };
            match postling::admin::user(&cfg, &action) {
                Ok(msg) => {
                    println!("{msg}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("postling: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve { config } => {
            fix_malloc_threshold();
            let mut logger = env_logger::Builder::from_env(
                env_logger::Env::default().default_filter_or("info"),
            );
            // rustls warns of what clients send (an IP address as SNI,
            // as webmails on 127.0.0.1 do) without saying which client;
            // the server logs those itself, with ip=, at debug.
            let named =
                std::env::var("RUST_LOG").is_ok_and(|v| v.contains("rustls"));
            if !named {
                logger.filter_module("rustls", log::LevelFilter::Error);
            }
            logger.init();
            let (cfg, dir) = match load(&config) {
                Ok(loaded) => loaded,
                Err(problems) => return report(&problems),
            };
            for w in cfg.warnings() {
                log::warn!("{w}");
            }
            match postling::server::serve(cfg, dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("postling: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load(
    path: &std::path::Path,
) -> Result<(Config, postling::config::Directory), Problems> {
    let cfg = Config::load(path)?;
    let dir = cfg.directory()?;
    Ok((cfg, dir))
}

/// glibc gives freed memory back to the system only for blocks it
/// mapped on their own, and it raises that size threshold each time such
/// a block is freed; after one big POP3 maildrop the next stays in the
/// heap for good. A fixed threshold (the environment variable, read only
/// at process start) keeps every large buffer a mapping that is returned
/// when freed, so the server goes back to its idle size. `serve` starts
/// itself again once with it set; an admin's own value is left alone.
fn fix_malloc_threshold() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into());
    let err = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env(VAR, "131072")
        .exec();
    // Still serviceable, only slower to give memory back.
    eprintln!("postling: cannot restart with {VAR} set: {err}");
}

/// `check` also reads the certificate and key, as `serve` will.
fn check_tls(
    loaded: (Config, postling::config::Directory),
) -> Result<(Config, postling::config::Directory), Problems> {
    let cfg = &loaded.0;
    if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
        postling::server::tls::load(cert, key).map_err(|e| {
            Problems(vec![postling::config::Problem::new(&cfg.path, 0, e)])
        })?;
    }
    cfg.dkim_signers().map_err(|e| {
        Problems(vec![postling::config::Problem::new(&cfg.path, 0, e)])
    })?;
    if let Some(path) = &cfg.outbound.smarthost_auth_file {
        postling::config::outbound::read_login(path).map_err(|e| {
            Problems(vec![postling::config::Problem::new(&cfg.path, 0, e)])
        })?;
    }
    Ok(loaded)
}

fn report(problems: &Problems) -> ExitCode {
    eprintln!("{problems}");
    ExitCode::FAILURE
}

/// `postling queue list|delete`.
fn queue(cfg: &Config, action: &cli::QueueAction) -> ExitCode {
    use postling::store::queue_state;
    let dir = cfg.queue_dir();
    match action {
        cli::QueueAction::List => match queue_state::list(&dir) {
            Ok(list) if list.is_empty() => {
                println!("the queue is empty");
                ExitCode::SUCCESS
            }
            Ok(list) => {
                for q in &list {
                    print!("{}", queue_state::describe(q));
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("postling: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        cli::QueueAction::Flush => {
            match postling::sendmail::etrn(&cfg.sendmail_socket()) {
                Ok(()) => {
                    println!("the server is trying every queued message now");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("postling: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        cli::QueueAction::Delete(id) => match queue_state::delete(&dir, id) {
            Ok(true) => {
                println!("{id}: deleted");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                eprintln!("postling: {id}: not in the queue");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("postling: {id}: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn spam(cfg: &Config, action: &cli::SpamAction) -> ExitCode {
    use postling::spam::admin;
    let done = match action {
        cli::SpamAction::Train { user, spam, ham } => {
            admin::train(cfg, user, spam, ham).map(|msg| println!("{msg}"))
        }
        cli::SpamAction::Score { user, paths } => {
            admin::score(cfg, user, paths, &mut std::io::stdout().lock())
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postling: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `postling doctor`: a line per check; 1 if any failed.
fn doctor(
    config: &std::path::Path,
    options: &postling::doctor::Options,
) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(problems) => return report(&problems),
    };
    let lines = postling::doctor::run(&cfg, options);
    for line in &lines {
        println!("{}", line.render());
    }
    match lines
        .iter()
        .any(|l| l.status == postling::doctor::Status::Fail)
    {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    }
}

/// `postling status`: the running server's figures.
fn status(config: &std::path::Path, json: bool) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(problems) => return report(&problems),
    };
    match postling::sendmail::status(&cfg.sendmail_socket(), json) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postling: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `sendmail`: the message on stdin to the running server. The config
/// comes from `-c FILE`, else `$POSTLING_CONFIG`, else the default path.
fn sendmail(args: &[String]) -> ExitCode {
    use postling::sendmail as sm;
    if args.iter().any(|a| a == "--help") {
        print!("{}", cli::SENDMAIL_HELP);
        return ExitCode::SUCCESS;
    }
    let mut args = args.to_vec();
    let mut config = std::env::var_os("POSTLING_CONFIG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(postling::config::DEFAULT_PATH)
        });
    if let Some(i) = args.iter().position(|a| a == "-c") {
        if i + 1 >= args.len() {
            eprintln!("sendmail: -c needs a file");
            return ExitCode::from(sm::EX_USAGE);
        }
        config = std::path::PathBuf::from(args.remove(i + 1));
        args.remove(i);
    }
    let a = match sm::parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "sendmail: {e}\nusage: sendmail [-t] [-i] [-f SENDER] [-F NAME] [RECIPIENT...]"
            );
            return ExitCode::from(sm::EX_USAGE);
        }
    };
    let cfg = match Config::load(&config) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("sendmail: {problems}");
            return ExitCode::from(sm::EX_TEMPFAIL);
        }
    };
    let msg = match sm::read_message(
        &mut std::io::stdin().lock(),
        a.ignore_dots,
        cfg.max_message_size,
    ) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("sendmail: {e}");
            return ExitCode::from(sm::EX_DATAERR);
        }
    };
    let (mut rcpts, msg) = if a.from_headers {
        sm::recipients_from_headers(&msg)
    } else {
        (Vec::new(), msg)
    };
    rcpts.extend(a.rcpts.iter().cloned());
    if rcpts.is_empty() {
        eprintln!("sendmail: no recipients");
        return ExitCode::from(sm::EX_DATAERR);
    }
    let sender = a
        .sender
        .clone()
        .unwrap_or_else(|| sm::default_sender(&cfg.hostname));
    let msg = sm::complete_header(
        msg,
        &sender,
        a.full_name.as_deref(),
        &cfg.hostname,
        std::time::SystemTime::now(),
    );
    let (code, why) =
        sm::submit(&cfg.sendmail_socket(), &sender, &rcpts, &msg);
    if let Some(why) = why {
        eprintln!("sendmail: {why}");
    }
    ExitCode::from(code)
}
