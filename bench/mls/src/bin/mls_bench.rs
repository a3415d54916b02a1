//! openmls timings for a join, a leave and a 256-byte application message in groups of
//! N members (default 2, 50, 500). Usage: mls-bench [runs] [N...]
//! Prints a markdown table and one JSON line per N.
use std::time::Instant;

use mls_eval::*;
use openmls::prelude::*;

const BATCH: usize = 100;
const APP_MSGS: usize = 200;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let filled = args.first().map(|a| a == "--filled").unwrap_or(false);
    if filled {
        args.remove(0);
    }
    let runs: usize = args.first().map(|s| s.parse().expect("runs")).unwrap_or(5);
    let sizes: Vec<usize> = if args.len() > 1 {
        args[1..].iter().map(|s| s.parse().expect("N")).collect()
    } else {
        vec![2, 50, 500]
    };
    println!("openmls 0.9.2, ciphersuite {:?} (0x{:04x}), {runs} runs, RAYON_NUM_THREADS={}",
        CS, CS as u16, std::env::var("RAYON_NUM_THREADS").unwrap_or("(unset)".into()));
    println!("tree shape: {}", if filled {
        "FILLED (after the batched adds, every even leaf commits a self-update once, so every parent node holds a key)"
    } else {
        "SPARSE (only the creator's direct path holds keys after the batched adds: worst case for UpdatePath size)"
    });
    println!("| N | operation | committer create ms | commit bytes | welcome bytes | one member processes ms | newcomer processes welcome ms |");
    println!("|---|---|---|---|---|---|---|");
    for &n in &sizes {
        bench(n, runs, filled);
    }
}

fn bench(n: usize, runs: usize, filled: bool) {
    let t_build = Instant::now();
    let a = Client::new("A");
    let b = Client::new("B");
    let mut ga = a.create_group(&create_config(0));
    // Build the group of n members by batched adds. B is in the first batch and keeps up.
    let mut gb: Option<MlsGroup> = None;
    // With `filled`, the members at even leaves >= 2 are kept (client + group) to commit later.
    let mut committers: Vec<(Client, Option<MlsGroup>)> = Vec::new();
    let mut added = 1usize;
    let mut idx = 0usize;
    while added < n {
        let k = (n - added).min(BATCH);
        let mut kps = Vec::with_capacity(k);
        for i in 0..k {
            if added + i == 1 {
                kps.push(b.key_package());
            } else {
                let c = Client::new(&format!("m{idx}"));
                idx += 1;
                kps.push(c.key_package());
                if filled && (added + i) % 2 == 0 {
                    committers.push((c, None));
                }
            }
        }
        let (commit, welcome, _) = ga.add_members(&a.provider, &a.signer, &kps).expect("add batch");
        ga.merge_pending_commit(&a.provider).expect("merge");
        match gb.as_mut() {
            None => gb = Some(b.join(&bytes(&welcome), &join_config(0))),
            Some(g) => {
                process(g, &b.provider, &bytes(&commit)).expect("B processes batch");
            }
        }
        let (cb, wb) = (bytes(&commit), bytes(&welcome));
        for (c, g) in committers.iter_mut() {
            match g {
                None => *g = Some(c.join(&wb, &join_config(0))),
                Some(g) => {
                    process(g, &c.provider, &cb).expect("committer processes batch");
                }
            }
        }
        added += k;
    }
    // Fill the tree: each kept member commits a self-update; A, B and the members still to
    // commit process it (members that already committed are dropped: nobody measures them).
    let t_fill = Instant::now();
    let mut committers: Vec<(Client, MlsGroup)> = committers.into_iter().map(|(c, g)| (c, g.expect("joined"))).collect();
    while !committers.is_empty() {
        let (c, mut g) = committers.remove(0);
        let commit = g.self_update(&c.provider, &c.signer, LeafNodeParameters::default()).expect("self update").into_commit();
        g.merge_pending_commit(&c.provider).expect("merge");
        let cb = bytes(&commit);
        process(&mut ga, &a.provider, &cb).expect("A processes fill");
        process(gb.as_mut().expect("B"), &b.provider, &cb).expect("B processes fill");
        for (c2, g2) in committers.iter_mut() {
            process(g2, &c2.provider, &cb).expect("processes fill");
        }
    }
    if filled {
        eprintln!("N={n}: tree filled in {:.1} s", t_fill.elapsed().as_secs_f64());
    }
    let mut gb = gb.expect("B joined");
    assert_eq!(ga.members().count(), n);
    let build_s = t_build.elapsed().as_secs_f64();

    // Join variants: 0 = add_members (commit carries an UpdatePath, openmls' default),
    // 1 = add_members_without_update (no path, like ts-mls' createCommit for adds).
    let mut j: [[Vec<f64>; 3]; 2] = Default::default(); // create, member proc, welcome proc
    let mut jb = [[0usize; 2]; 2]; // commit bytes, welcome bytes
    let (mut rm_create, mut rm_proc) = (vec![], vec![]);
    let mut rm_b = 0;
    for r in 0..runs {
        for v in 0..2 {
            // Join: n -> n+1
            let x = Client::new(&format!("x{r}-{v}"));
            let kp = decode_kp(&kp_bytes(&x.key_package()), &a.provider);
            let t = Instant::now();
            let (commit, welcome, _) = if v == 0 {
                ga.add_members(&a.provider, &a.signer, &[kp]).expect("add")
            } else {
                ga.add_members_without_update(&a.provider, &a.signer, &[kp]).expect("add")
            };
            ga.merge_pending_commit(&a.provider).expect("merge");
            let cb = bytes(&commit);
            let wb = bytes(&welcome);
            j[v][0].push(ms(t));
            jb[v] = [cb.len(), wb.len()];
            let t = Instant::now();
            process(&mut gb, &b.provider, &cb).expect("B processes add");
            j[v][1].push(ms(t));
            let t = Instant::now();
            let gx = x.join(&wb, &join_config(0));
            j[v][2].push(ms(t));
            assert_eq!(gx.epoch(), ga.epoch());
            // Leave: n+1 -> n (the newcomer is removed)
            let leaf = gx.own_leaf_index();
            let t = Instant::now();
            let (commit, _, _) = ga.remove_members(&a.provider, &a.signer, &[leaf]).expect("remove");
            ga.merge_pending_commit(&a.provider).expect("merge");
            let cb = bytes(&commit);
            rm_create.push(ms(t));
            rm_b = cb.len();
            let t = Instant::now();
            process(&mut gb, &b.provider, &cb).expect("B processes remove");
            rm_proc.push(ms(t));
        }
    }
    // Application messages: A encrypts, B decrypts.
    let pt = [0x61u8; 256];
    let (mut enc, mut dec) = (vec![], vec![]);
    let mut ct_len = 0;
    for _ in 0..APP_MSGS {
        let t = Instant::now();
        let m = ga.create_message(&a.provider, &a.signer, &pt).expect("app");
        let mb = bytes(&m);
        enc.push(ms(t) * 1e3);
        ct_len = mb.len();
        let t = Instant::now();
        match process(&mut gb, &b.provider, &mb).expect("decrypt") {
            Got::App(p) => assert_eq!(p, pt),
            other => panic!("{other:?}"),
        }
        dec.push(ms(t) * 1e3);
    }
    let tree_b = {
        use tls_codec::Serialize as _;
        ga.export_ratchet_tree().tls_serialize_detached().expect("tree").len()
    };
    let [mut a0, mut a1] = j;
    for (v, name) in [(0usize, "add (with path)"), (1, "add (no path)")] {
        let t = if v == 0 { &mut a0 } else { &mut a1 };
        println!(
            "| {n} | {name} | {:.2} | {} | {} | {:.2} | {:.2} |",
            median(&mut t[0]), jb[v][0], jb[v][1], median(&mut t[1]), median(&mut t[2])
        );
    }
    println!("| {n} | remove | {:.2} | {rm_b} | - | {:.2} | - |", median(&mut rm_create), median(&mut rm_proc));
    println!(
        "| {n} | app 256 B | enc {:.0} µs | +{} B | - | dec {:.0} µs | - |",
        median(&mut enc), ct_len - pt.len(), median(&mut dec)
    );
    println!("| {n} | (group built in {build_s:.1} s by batched adds of {BATCH}; ratchet tree {tree_b} B) | | | | | |");
}
