//! probe: a Rust (std only) wasm32-wasi guest whose subcommands each poke one thing the
//! executor must control, so tests can check the sandbox from inside.
//!
//!   read PATH          print the file's bytes; on error print it and exit 1
//!   write PATH TEXT    create PATH holding TEXT; print `ok` or the error (exit 1)
//!   ls DIR             print the entry names sorted, directories with a trailing `/`
//!   env                print the environment as sorted `K=V` lines
//!   args               print argv, one argument a line (argv[0] included)
//!   time               print `system_ns=` (SystemTime since the epoch) and two
//!                      `elapsed_ns=` lines (one Instant, read twice)
//!   random N           print N bytes as hex, drawn through std's RandomState (see below)
//!   random-raw N       print N bytes as hex straight from WASI random_get
//!   exit CODE          std::process::exit(CODE)
//!   alloc MB           allocate and touch MB MiB, one MiB at a time (a memory bomb)
//!   spin               loop forever (stopped only by fuel or the wall-clock limit)
//!   panic              panic (wasm32 panics abort: the guest traps)
//!
//! Randomness: the only public std API on wasm32-wasi that reaches `random_get` is
//! `std::collections::hash_map::RandomState::new()`. Its first call on a thread fills the
//! thread's SipHash keys (k0, k1) with 16 bytes from `random_get`; later calls reuse them with
//! k0 incremented by one, so `random N` makes exactly one `random_get` call of 16 bytes and
//! derives every output byte from it with SipHash-1-3. `random-raw` imports `random_get`
//! directly (still no crates) so a test can compare the bytes with the runner's stream.
//!
//! Build: /usr/bin/rustc --edition 2021 --target wasm32-wasi -O -C strip=symbols probe.rs

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use std::{env, fs, process};

const USAGE: &str = "usage: probe read PATH | write PATH TEXT | ls DIR | env | args | time \
                     | random N | random-raw N | exit CODE | alloc MB | spin | panic";

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    /// WASI `random_get(buf, buf_len) -> errno`.
    #[link_name = "random_get"]
    fn wasi_random_get(buf: *mut u8, buf_len: usize) -> u16;
}

fn main() {
    let args: Vec<String> = env::args().collect();
    let words: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let code = match words.as_slice() {
        ["read", path] => read(path),
        ["write", path, text] => write(path, text),
        ["ls", dir] => ls(dir),
        ["env"] => print_env(),
        ["args"] => print_args(&args),
        ["time"] => time(),
        ["random", n] => with_count(n, |n| hex_line(&random_via_randomstate(n))),
        ["random-raw", n] => with_count(n, random_raw),
        ["exit", code] => match code.parse::<i32>() {
            Ok(code) => process::exit(code),
            Err(_) => fail(&format!("probe: exit code must be an integer, got {code:?}")),
        },
        ["alloc", mb] => with_count(mb, alloc),
        ["spin"] => spin(),
        ["panic"] => panic!("probe: panic requested"),
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    process::exit(code);
}

fn fail(message: &str) -> i32 {
    eprintln!("{message}");
    1
}

fn with_count(text: &str, run: impl FnOnce(usize) -> i32) -> i32 {
    match text.parse::<usize>() {
        Ok(n) => run(n),
        Err(_) => fail(&format!("probe: expected a non-negative integer, got {text:?}")),
    }
}

fn read(path: &str) -> i32 {
    match fs::read(path) {
        Ok(bytes) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
                return fail("probe: cannot write to stdout");
            }
            0
        }
        Err(err) => {
            println!("error: {path}: {err}");
            1
        }
    }
}

fn write(path: &str, text: &str) -> i32 {
    match fs::write(path, text) {
        Ok(()) => {
            println!("ok");
            0
        }
        Err(err) => {
            println!("error: {path}: {err}");
            1
        }
    }
}

fn ls(dir: &str) -> i32 {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            println!("error: {dir}: {err}");
            return 1;
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let mut name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    name.push('/');
                }
                names.push(name);
            }
            Err(err) => {
                println!("error: {dir}: {err}");
                return 1;
            }
        }
    }
    // fd_readdir order is up to the host; sorting keeps the output a function of the contents.
    names.sort();
    for name in names {
        println!("{name}");
    }
    0
}

fn print_env() -> i32 {
    let mut vars: Vec<(String, String)> = env::vars().collect();
    vars.sort();
    for (key, value) in vars {
        println!("{key}={value}");
    }
    0
}

fn print_args(args: &[String]) -> i32 {
    for arg in args {
        println!("{arg}");
    }
    0
}

fn time() -> i32 {
    let system = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_nanos(),
        Err(_) => return fail("probe: the system clock is before 1970"),
    };
    let start = Instant::now();
    let first = start.elapsed().as_nanos();
    let second = start.elapsed().as_nanos();
    println!("system_ns={system}");
    println!("elapsed_ns={first}");
    println!("elapsed_ns={second}");
    0
}

fn random_via_randomstate(n: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(n + 8);
    let mut block: u64 = 0;
    while bytes.len() < n {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(block);
        bytes.extend_from_slice(&hasher.finish().to_le_bytes());
        block += 1;
    }
    bytes.truncate(n);
    bytes
}

fn random_raw(n: usize) -> i32 {
    let mut bytes = vec![0u8; n];
    // SAFETY: the pointer and length describe `bytes`, which random_get only writes into.
    let errno = unsafe { wasi_random_get(bytes.as_mut_ptr(), bytes.len()) };
    if errno != 0 {
        return fail(&format!("probe: random_get failed with errno {errno}"));
    }
    hex_line(&bytes)
}

fn hex_line(bytes: &[u8]) -> i32 {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    println!("{hex}");
    0
}

fn alloc(mb: usize) -> i32 {
    const MIB: usize = 1 << 20;
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for i in 0..mb {
        // Non-zero fill so every page is written, not left to the allocator's zeroed memory.
        blocks.push(vec![(i % 251) as u8 + 1; MIB]);
    }
    let touched: usize = blocks.iter().map(|b| b[MIB - 1] as usize).sum();
    println!("allocated {mb} MiB (checksum {touched})");
    0
}

fn spin() -> i32 {
    let mut counter: u64 = 0;
    loop {
        // Volatile so the optimiser cannot prove the loop has no effect.
        unsafe {
            let next = std::ptr::read_volatile(&counter).wrapping_add(1);
            std::ptr::write_volatile(&mut counter, next);
        }
    }
}
