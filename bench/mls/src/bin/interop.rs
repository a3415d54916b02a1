//! Live interop: openmls (this process) <-> ts-mls (child `node ts/interop-peer.mjs`),
//! one group, every message passed as TLS-serialized MLSMessage bytes (hex over a pipe).
//! Members: R1, R2 (openmls), T1, T2 (ts-mls). Usage: interop [path to ts dir]
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use mls_eval::*;
use openmls::prelude::*;
use serde_json::{Value, json};

struct Peer {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Peer {
    fn call(&mut self, req: Value) -> Value {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{req}").expect("write");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read");
        let v: Value = serde_json::from_str(&line).expect("json");
        assert!(v["ok"].as_bool() == Some(true), "ts-mls failed on {req}: {v}");
        v
    }
}

fn h(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().expect("hex field")).expect("hex")
}

fn check_same(step: &str, g: &MlsGroup, ts: &Value) {
    let auth = hex::encode(g.epoch_authenticator().as_slice());
    assert_eq!(g.epoch().as_u64(), ts["epoch"].as_u64().expect("epoch"), "{step}: epoch");
    assert_eq!(auth, ts["auth"].as_str().expect("auth"), "{step}: epoch authenticator");
    println!("  ok  {step}: epoch {} and epoch_authenticator {}… agree (openmls {} members)",
        g.epoch().as_u64(), &auth[..16], g.members().count());
}

fn app(step: &str, from: (&mut MlsGroup, &Client), to: (&mut MlsGroup, &Client), text: &str) {
    let m = from.0.create_message(&from.1.provider, &from.1.signer, text.as_bytes()).expect("app");
    match process(to.0, &to.1.provider, &bytes(&m)).expect("decrypt") {
        Got::App(p) => assert_eq!(p, text.as_bytes()),
        o => panic!("{o:?}"),
    }
    println!("  ok  {step}");
}

fn main() {
    let ts_dir = std::env::args().nth(1).unwrap_or_else(|| "ts".into());
    let mut child = Command::new("node")
        .arg("interop-peer.mjs")
        .current_dir(&ts_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut ts = Peer { child, out };
    println!("openmls 0.9.2 <-> ts-mls 1.6.4, ciphersuite 0x{:04x}", CS as u16);

    // 1. R1 (openmls) creates the group and adds T1 (ts-mls) from its KeyPackage.
    let r1 = Client::new("R1");
    let mut g1 = r1.create_group(&create_config(2));
    let kp = ts.call(json!({"op":"kp","who":"T1"}));
    let kp = decode_kp(&h(&kp, "kp"), &r1.provider);
    let (commit, welcome, _) = g1.add_members(&r1.provider, &r1.signer, &[kp]).expect("add T1");
    g1.merge_pending_commit(&r1.provider).expect("merge");
    let _ = commit;
    println!("1. openmls R1 creates the group, commits Add(T1) with UpdatePath, ts-mls T1 joins from openmls' Welcome");
    let t = ts.call(json!({"op":"welcome","who":"T1","data":hex::encode(bytes(&welcome))}));
    check_same("R1 == T1 after T1's join", &g1, &t);

    // 2. application messages both ways
    println!("2. application messages");
    let m = g1.create_message(&r1.provider, &r1.signer, b"hello T1, from openmls").expect("app");
    let t = ts.call(json!({"op":"process","who":"T1","data":hex::encode(bytes(&m))}));
    assert_eq!(t["text"], "hello T1, from openmls");
    println!("  ok  openmls R1 -> ts-mls T1: {:?}", t["text"]);
    let t = ts.call(json!({"op":"send","who":"T1","text":"hello R1, from ts-mls"}));
    match process(&mut g1, &r1.provider, &h(&t, "data")).expect("R1 decrypts T1") {
        Got::App(p) => println!("  ok  ts-mls T1 -> openmls R1: {:?}", String::from_utf8_lossy(&p)),
        o => panic!("{o:?}"),
    }

    // 3. T1 (ts-mls) commits Add(R2): openmls R1 processes the commit, openmls R2 joins
    //    from the ts-mls Welcome.
    println!("3. ts-mls T1 commits Add(R2) (no path); openmls R1 processes it; openmls R2 joins from ts-mls' Welcome");
    let r2 = Client::new("R2");
    let t = ts.call(json!({"op":"add","who":"T1","kp":hex::encode(kp_bytes(&r2.key_package()))}));
    process(&mut g1, &r1.provider, &h(&t, "commit")).expect("R1 processes ts-mls Add commit");
    check_same("R1 == T1 after ts-mls Add commit", &g1, &t);
    let mut g2 = r2.join(&h(&t, "welcome"), &join_config(2));
    check_same("R2 (joined from ts-mls Welcome) == T1", &g2, &t);
    app("openmls R2 -> openmls R1", (&mut g2, &r2), (&mut g1, &r1), "hi from R2");
    let m = g2.create_message(&r2.provider, &r2.signer, b"hi T1 from R2").expect("app");
    let t = ts.call(json!({"op":"process","who":"T1","data":hex::encode(bytes(&m))}));
    assert_eq!(t["text"], "hi T1 from R2");
    println!("  ok  openmls R2 -> ts-mls T1");
    let t = ts.call(json!({"op":"send","who":"T1","text":"to both"}));
    for (g, c) in [(&mut g1, &r1), (&mut g2, &r2)] {
        match process(g, &c.provider, &h(&t, "data")).expect("decrypt") {
            Got::App(p) => assert_eq!(p, b"to both"),
            o => panic!("{o:?}"),
        }
    }
    println!("  ok  ts-mls T1 -> openmls R1 and R2");

    // 4. T1 (ts-mls) commits Remove(R2): a commit WITH an UpdatePath made by ts-mls,
    //    decrypted by openmls R1; R2 learns it was removed.
    println!("4. ts-mls T1 commits Remove(R2) (UpdatePath from ts-mls); openmls R1 and R2 process it");
    let t = ts.call(json!({"op":"remove","who":"T1","leaf":g2.own_leaf_index().u32()}));
    process(&mut g1, &r1.provider, &h(&t, "commit")).expect("R1 processes ts-mls Remove");
    check_same("R1 == T1 after ts-mls Remove commit", &g1, &t);
    process(&mut g2, &r2.provider, &h(&t, "commit")).expect("R2 processes its removal");
    println!("  ok  R2 processed its own removal: is_active() = {}", g2.is_active());
    assert!(!g2.is_active());

    // 5. ts-mls self-update (empty commit -> path) processed by openmls
    println!("5. ts-mls T1 commits an empty commit (self-update path); openmls R1 processes it");
    let t = ts.call(json!({"op":"update","who":"T1"}));
    process(&mut g1, &r1.provider, &h(&t, "commit")).expect("R1 processes ts-mls update");
    check_same("R1 == T1 after ts-mls update", &g1, &t);

    // 6. R1 (openmls) adds T2 (ts-mls) with an UpdatePath that T1 (ts-mls) must decrypt.
    println!("6. openmls R1 commits Add(T2) with UpdatePath; ts-mls T1 processes it; ts-mls T2 joins");
    let kp = ts.call(json!({"op":"kp","who":"T2"}));
    let kp = decode_kp(&h(&kp, "kp"), &r1.provider);
    let (commit, welcome, _) = g1.add_members(&r1.provider, &r1.signer, &[kp]).expect("add T2");
    g1.merge_pending_commit(&r1.provider).expect("merge");
    let t = ts.call(json!({"op":"process","who":"T1","data":hex::encode(bytes(&commit))}));
    check_same("R1 == T1 after openmls Add(T2)", &g1, &t);
    let t = ts.call(json!({"op":"welcome","who":"T2","data":hex::encode(bytes(&welcome))}));
    check_same("R1 == T2 (joined from openmls Welcome)", &g1, &t);

    // 7. R1 (openmls) removes T1: T2 processes (decrypts openmls' path); T1 sees its removal.
    println!("7. openmls R1 commits Remove(T1); ts-mls T2 and T1 process it");
    let t1leaf = ts.call(json!({"op":"info","who":"T1"}))["leaf"].as_u64().expect("leaf") as u32;
    let (commit, _, _) = g1.remove_members(&r1.provider, &r1.signer, &[LeafNodeIndex::new(t1leaf)]).expect("remove T1");
    g1.merge_pending_commit(&r1.provider).expect("merge");
    let t = ts.call(json!({"op":"process","who":"T2","data":hex::encode(bytes(&commit))}));
    check_same("R1 == T2 after openmls Remove(T1)", &g1, &t);
    let t = ts.call(json!({"op":"process","who":"T1","data":hex::encode(bytes(&commit))}));
    println!("  ok  T1 processed its own removal: groupActiveState = {}", t["active"]);
    assert_eq!(t["active"], "removedFromGroup");

    // 8. final messages both ways between the two remaining members.
    println!("8. application messages between the remaining members");
    let m = g1.create_message(&r1.provider, &r1.signer, b"bye").expect("app");
    let t = ts.call(json!({"op":"process","who":"T2","data":hex::encode(bytes(&m))}));
    assert_eq!(t["text"], "bye");
    println!("  ok  openmls R1 -> ts-mls T2");
    let t = ts.call(json!({"op":"send","who":"T2","text":"bye R1"}));
    match process(&mut g1, &r1.provider, &h(&t, "data")).expect("R1 decrypts T2") {
        Got::App(p) => assert_eq!(p, b"bye R1"),
        o => panic!("{o:?}"),
    }
    println!("  ok  ts-mls T2 -> openmls R1");
    println!("INTEROP OK: {} members at epoch {}", g1.members().count(), g1.epoch().as_u64());
    drop(ts.child.stdin.take());
    let _ = ts.child.wait();
}
