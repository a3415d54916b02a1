//! A benchmark, not a test: the cost of one epoch change with this project's Rust MLS
//! engine ([`RoomGroup`], openmls with RustCrypto and this crate's storage, `docs/crypto.md` §16) in a
//! room of N members, for issue #19. Prints one JSON object a line per N and tree shape.
//!
//! For each N, member A creates the group and adds the other N-1 with one commit of N-1
//! KeyPackages; member B (the first of them) joins from that Welcome and keeps up; the
//! others exist only as leaves. Then, for each run:
//! - **join**: a newcomer X publishes a KeyPackage; A commits its Add (`commit_ms`,
//!   `commit_bytes`, `welcome_bytes`); A applies its own commit when it comes back from
//!   the log (`own_apply_ms`); B processes it (`process_ms`); X joins from the Welcome
//!   (`welcome_ms`). The room goes from N to N+1 members;
//! - **leave**: A commits the removal of X (`commit_ms`, `commit_bytes`), applies it
//!   (`own_apply_ms`), and B processes it (`process_ms`). The room is back to N.
//!
//! Figures are medians over the runs. Tree shapes:
//! - `fresh`: right after the add-all commit, most of the tree is blank (only A's direct
//!   path holds keys), so a commit's UpdatePath is encrypted to about N leaves: the worst
//!   case, and what a room built by one member letting many in looks like;
//! - `filled`: every member at an even leaf has also committed an update once
//!   ([`RoomGroup::update`]), which puts a key in every parent node of the tree, so an
//!   UpdatePath costs about log2(N) encryptions (the same shape as `bench/mls`'s
//!   `--filled`). Filling joins N/2 members from the Welcome and applies about N²/8
//!   commits, so it is the slow part of the run at 500.
//!
//! Also, in the shape's group of N, a 256-byte application message: A seals
//! (`seal_us`), B opens (`open_us`), and its bytes (`sealed_bytes`; `overhead_bytes` =
//! sealed − 256); medians of 200. Beside it, the same message sealed and opened as a
//! v1 room does (`v1_seal_us`, `v1_open_us`): what a message costs today.
//!
//! `cargo run --release -p streamchat-mls --example epoch_cost -- [--filled] [--runs-large R] N...`
//! (default: 2 50 500; 5 runs for N ≤ 50, `--runs-large` (3) above). Run it with
//! `RAYON_NUM_THREADS=1` (openmls parallelises some tree work with rayon; a browser tab
//! has one thread). `scripts/bench-mls-epochs` runs this and the browser engine's
//! benchmark and prints the table (`docs/benchmarks.md`).

use std::io::{self, Write as _};
use std::time::Instant;

use serde_json::json;
use streamchat_crypto::{IdentityKey, MemberId, RoomSecret, sealed};
use streamchat_mls::{PendingJoin, Processed, RoomGroup};

const ROOM: &str = "AAECAwQFBgcICQoLDA0ODw";
const MESSAGES: usize = 200;
const MESSAGE_BYTES: usize = 256;

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Applies a commit: every member in `members` processes it, in order.
fn apply_all(members: &mut [&mut RoomGroup], commit: &[u8]) -> Fallible<()> {
    for m in members.iter_mut() {
        match m.process(commit)? {
            Processed::Epoch { .. } => {}
            other => return Err(format!("expected a new epoch, got {other:?}").into()),
        }
    }
    Ok(())
}

struct Group {
    a: RoomGroup,
    b: RoomGroup,
    build_s: f64,
    fill_s: Option<f64>,
}

/// A group of `n` members: A creates it and adds the other n-1 with one commit; B joins.
/// With `fill`, every member at an even leaf (other than A) then commits an update.
fn build(n: usize, fill: bool) -> Fallible<Group> {
    let start = Instant::now();
    let mut a = RoomGroup::create(&IdentityKey::generate()?, ROOM)?;
    let mut pendings: Vec<PendingJoin> = Vec::with_capacity(n - 1);
    let mut kps: Vec<Vec<u8>> = Vec::with_capacity(n - 1);
    for _ in 1..n {
        let (pending, kp) = RoomGroup::key_package(&IdentityKey::generate()?, ROOM)?;
        pendings.push(pending);
        kps.push(kp);
    }
    let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
    let proposed = a.add(&refs)?;
    apply_all(&mut [&mut a], &proposed.commit)?;
    let welcome = proposed.welcome.ok_or("an add makes a Welcome")?;
    let mut b = pendings[0].join(&welcome)?;
    let build_s = start.elapsed().as_secs_f64();
    if !fill {
        return Ok(Group {
            a,
            b,
            build_s,
            fill_s: None,
        });
    }
    // Leaves are 0 (A), 1 (B), 2.. (the others, in KeyPackage order): the members at even
    // leaves 2, 4, ... join, then each commits an update, which every member still to
    // commit (and A and B) applies. A member that has committed is not needed any more.
    let start = Instant::now();
    let mut fillers: Vec<RoomGroup> = Vec::new();
    for leaf in (2..n).step_by(2) {
        fillers.push(pendings[leaf - 1].join(&welcome)?);
    }
    // Starts with B (leaf 1 is odd; its update fills nothing a later even leaf would not,
    // but B must commit once too so that its own path is not blank either).
    let proposed = b.update()?;
    apply_all(&mut [&mut b, &mut a], &proposed.commit)?;
    for f in fillers.iter_mut() {
        f.process(&proposed.commit)?;
    }
    while !fillers.is_empty() {
        let mut committer = fillers.remove(0);
        let proposed = committer.update()?;
        committer.process(&proposed.commit)?;
        apply_all(&mut [&mut a, &mut b], &proposed.commit)?;
        for f in fillers.iter_mut() {
            f.process(&proposed.commit)?;
        }
    }
    Ok(Group {
        a,
        b,
        build_s,
        fill_s: Some(start.elapsed().as_secs_f64()),
    })
}

fn measure(n: usize, runs: usize, fill: bool) -> Fallible<serde_json::Value> {
    let Group {
        mut a,
        mut b,
        build_s,
        fill_s,
    } = build(n, fill)?;
    let mut join = [(); 7].map(|()| Vec::<f64>::new());
    let mut leave = [(); 4].map(|()| Vec::<f64>::new());
    for _ in 0..runs {
        let x_key = IdentityKey::generate()?;
        let (mut pending, kp) = RoomGroup::key_package(&x_key, ROOM)?;
        let t = Instant::now();
        let proposed = a.add(&[&kp])?;
        join[0].push(ms(t));
        let t = Instant::now();
        apply_all(&mut [&mut a], &proposed.commit)?;
        join[1].push(ms(t));
        let t = Instant::now();
        apply_all(&mut [&mut b], &proposed.commit)?;
        join[2].push(ms(t));
        let welcome = proposed.welcome.ok_or("an add makes a Welcome")?;
        let t = Instant::now();
        let x = pending.join(&welcome)?;
        join[3].push(ms(t));
        join[4].push(proposed.commit.len() as f64);
        join[5].push(welcome.len() as f64);
        join[6].push(x.members().len() as f64);
        drop(x);

        let t = Instant::now();
        let proposed = a.remove(&[x_key.public_key()])?;
        leave[0].push(ms(t));
        let t = Instant::now();
        apply_all(&mut [&mut a], &proposed.commit)?;
        leave[1].push(ms(t));
        let t = Instant::now();
        apply_all(&mut [&mut b], &proposed.commit)?;
        leave[2].push(ms(t));
        leave[3].push(proposed.commit.len() as f64);
    }
    // A 256-byte message within the epoch.
    let plaintext = vec![0x61u8; MESSAGE_BYTES];
    let (mut seal, mut open, mut len) = (Vec::new(), Vec::new(), 0usize);
    for _ in 0..MESSAGES {
        let t = Instant::now();
        let sealed = a.seal(&plaintext)?;
        seal.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let opened = b.process(&sealed)?;
        open.push(t.elapsed().as_secs_f64() * 1e6);
        match opened {
            Processed::Message { plaintext: p, .. } if p == plaintext => {}
            other => return Err(format!("expected the message, got {other:?}").into()),
        }
        len = sealed.len();
    }
    // The same message sealed as a v1 room does today (docs/crypto.md §5: Ed25519 and
    // AES-256-GCM under the link's room key), for comparison.
    let (v1_keys, v1_member) = (RoomSecret::generate()?.room_keys(), MemberId::new("m1")?);
    let a_key = IdentityKey::generate()?;
    let (mut v1_seal, mut v1_open) = (Vec::new(), Vec::new());
    for _ in 0..MESSAGES {
        let t = Instant::now();
        let sealed = sealed::seal(&v1_keys, &v1_member, &a_key, &plaintext)?;
        v1_seal.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let opened = sealed::open_from(&v1_keys, &v1_member, &a_key.public_key(), &sealed)?;
        v1_open.push(t.elapsed().as_secs_f64() * 1e6);
        if opened.body() != plaintext {
            return Err("the v1 message did not open to its plaintext".into());
        }
    }
    let [
        j_commit,
        j_own,
        j_process,
        j_welcome,
        j_commit_bytes,
        j_welcome_bytes,
        j_members,
    ] = join.map(median);
    let [l_commit, l_own, l_process, l_commit_bytes] = leave.map(median);
    Ok(json!({
        "engine": "rust",
        "n": n,
        "tree": if fill { "filled" } else { "fresh" },
        "runs": runs,
        "build_s": round(build_s, 2),
        "fill_s": fill_s.map(|s| round(s, 1)),
        "join": {
            "members_after": j_members,
            "commit_ms": round(j_commit, 2),
            "own_apply_ms": round(j_own, 2),
            "process_ms": round(j_process, 2),
            "welcome_ms": round(j_welcome, 2),
            "commit_bytes": j_commit_bytes,
            "welcome_bytes": j_welcome_bytes,
        },
        "leave": {
            "commit_ms": round(l_commit, 2),
            "own_apply_ms": round(l_own, 2),
            "process_ms": round(l_process, 2),
            "commit_bytes": l_commit_bytes,
        },
        "message": {
            "plaintext_bytes": MESSAGE_BYTES,
            "seal_us": round(median(seal), 1),
            "open_us": round(median(open), 1),
            "sealed_bytes": len,
            "overhead_bytes": len - MESSAGE_BYTES,
            "v1_seal_us": round(median(v1_seal), 1),
            "v1_open_us": round(median(v1_open), 1),
        },
    }))
}

fn main() -> Fallible<()> {
    let mut fill = false;
    let mut runs_large = 3;
    let mut sizes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--filled" => fill = true,
            "--runs-large" => runs_large = args.next().ok_or("--runs-large R")?.parse()?,
            n => sizes.push(n.parse::<usize>()?),
        }
    }
    if sizes.is_empty() {
        sizes = vec![2, 50, 500];
    }
    let mut stdout = io::stdout().lock();
    for n in sizes {
        if n < 2 {
            return Err("N must be at least 2 (A and B)".into());
        }
        let runs = if n <= 50 { 5 } else { runs_large };
        writeln!(stdout, "{}", measure(n, runs, fill)?)?;
        stdout.flush()?;
    }
    Ok(())
}
