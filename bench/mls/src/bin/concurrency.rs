//! Concurrency experiment: two members commit in the same epoch; the server's room log
//! puts one first. Shows how openmls and ts-mls report the losing (stale) commit and what
//! happens to application messages from the previous epoch that arrive after the commit.
//! Members: R1, R2 (openmls, max_past_epochs = 2), R3 (openmls, max_past_epochs = 0),
//! T1 (ts-mls 1.6.4, default keyRetentionConfig: retainKeysForEpochs = 4).
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
    /// Returns the reply, ok or not.
    fn call(&mut self, req: Value) -> Value {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{req}").expect("write");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read");
        serde_json::from_str(&line).expect("json")
    }
    fn ok(&mut self, req: Value) -> Value {
        let v = self.call(req.clone());
        assert!(v["ok"].as_bool() == Some(true), "ts-mls failed on {req}: {v}");
        v
    }
}
fn h(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().expect("hex field")).expect("hex")
}
fn show(who: &str, what: &str, r: Result<Got, String>) {
    match r {
        Ok(Got::App(p)) => println!("  {who} {what}: decrypted application message {:?}", String::from_utf8_lossy(&p)),
        Ok(g) => println!("  {who} {what}: ok ({g:?})"),
        Err(e) => println!("  {who} {what}: ERROR {e}"),
    }
}

fn main() {
    let ts_dir = std::env::args().nth(1).unwrap_or_else(|| "ts".into());
    let mut child = Command::new("node").arg("interop-peer.mjs").current_dir(&ts_dir)
        .stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn node");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut ts = Peer { child, out };

    let (r1, r2, r3) = (Client::new("R1"), Client::new("R2"), Client::new("R3"));
    let mut g1 = r1.create_group(&create_config(2));
    let t1kp = ts.ok(json!({"op":"kp","who":"T1"}));
    let kps = vec![r2.key_package(), r3.key_package(), decode_kp(&h(&t1kp, "kp"), &r1.provider)];
    let (_c, w, _) = g1.add_members(&r1.provider, &r1.signer, &kps).expect("add");
    g1.merge_pending_commit(&r1.provider).expect("merge");
    let wb = bytes(&w);
    let mut g2 = r2.join(&wb, &join_config(2));
    let mut g3 = r3.join(&wb, &join_config(0));
    ts.ok(json!({"op":"welcome","who":"T1","data":hex::encode(&wb)}));
    println!("group R1,R2,R3 (openmls) + T1 (ts-mls) at epoch {}", g1.epoch().as_u64());

    // Application messages made in epoch 1, to be delivered after the epoch changes.
    let m_r1 = bytes(&g1.create_message(&r1.provider, &r1.signer, b"R1 in epoch 1").expect("app"));
    let m_t1 = h(&ts.ok(json!({"op":"send","who":"T1","text":"T1 in epoch 1"})), "data");

    // Two commits for epoch 1, made concurrently.
    let c_t1 = h(&ts.ok(json!({"op":"update_tentative","who":"T1"})), "commit");
    let c_r2 = bytes(&g2.self_update(&r2.provider, &r2.signer, LeafNodeParameters::default()).expect("self update").into_commit());
    println!("R2 has a pending commit: {}", g2.pending_commit().is_some());
    println!("\nRoom log order: [T1's commit (epoch 1), R2's commit (epoch 1), R1's app msg (epoch 1), T1's app msg (epoch 1)]");

    println!("\n1. T1's commit is first in the log: everyone applies it");
    show("R1", "processes T1's commit", process(&mut g1, &r1.provider, &c_t1));
    show("R2 (has its own pending commit)", "processes T1's commit", process(&mut g2, &r2.provider, &c_t1));
    println!("  R2 pending commit after merging T1's commit: {}", g2.pending_commit().is_some());
    show("R3", "processes T1's commit", process(&mut g3, &r3.provider, &c_t1));
    let t = ts.ok(json!({"op":"apply_pending","who":"T1"}));
    println!("  T1 sees its own commit first in the log and applies its pending state: epoch {}", t["epoch"]);
    assert_eq!(hex::encode(g1.epoch_authenticator().as_slice()), t["auth"].as_str().expect("auth"));
    assert_eq!(g1.epoch_authenticator().as_slice(), g2.epoch_authenticator().as_slice());

    println!("\n2. R2's commit (for epoch 1) arrives second: it must be rejected");
    show("R1", "processes R2's stale commit", process(&mut g1, &r1.provider, &c_r2));
    show("R3", "processes R2's stale commit", process(&mut g3, &r3.provider, &c_r2));
    show("R2", "processes its own (stale) commit echoed back", process(&mut g2, &r2.provider, &c_r2));
    let t = ts.call(json!({"op":"process","who":"T1","data":hex::encode(&c_r2)}));
    println!("  T1 processes R2's stale commit: {}", if t["ok"] == true { format!("ok {t}") } else { format!("ERROR {}", t["error"]) });

    println!("\n3. Application messages from epoch 1 arrive after the move to epoch 2");
    show("R2 (max_past_epochs=2)", "gets R1's epoch-1 message", process(&mut g2, &r2.provider, &m_r1));
    show("R3 (max_past_epochs=0)", "gets R1's epoch-1 message", process(&mut g3, &r3.provider, &m_r1));
    show("R1 (max_past_epochs=2)", "gets T1's epoch-1 message", process(&mut g1, &r1.provider, &m_t1));
    show("R3 (max_past_epochs=0)", "gets T1's epoch-1 message", process(&mut g3, &r3.provider, &m_t1));
    let t = ts.call(json!({"op":"process","who":"T1","data":hex::encode(&m_r1)}));
    println!("  T1 (retainKeysForEpochs=4) gets R1's epoch-1 message: {}", if t["ok"] == true { format!("{}", t["text"]) } else { format!("ERROR {}", t["error"]) });

    println!("\n4. R2 retries: drops its stale pending commit (already gone, see above), commits again at epoch 2");
    let _ = g2.clear_pending_commit(r2.provider.storage());
    let c = bytes(&g2.self_update(&r2.provider, &r2.signer, LeafNodeParameters::default()).expect("retry").into_commit());
    g2.merge_pending_commit(&r2.provider).expect("merge own commit once the log confirms it");
    show("R1", "processes R2's retried commit", process(&mut g1, &r1.provider, &c));
    show("R3", "processes R2's retried commit", process(&mut g3, &r3.provider, &c));
    let t = ts.ok(json!({"op":"process","who":"T1","data":hex::encode(&c)}));
    assert_eq!(hex::encode(g1.epoch_authenticator().as_slice()), t["auth"].as_str().expect("auth"));
    assert_eq!(g1.epoch_authenticator().as_slice(), g2.epoch_authenticator().as_slice());
    assert_eq!(g1.epoch_authenticator().as_slice(), g3.epoch_authenticator().as_slice());
    println!("  all four agree on epoch {} (epoch_authenticator equal)", g1.epoch().as_u64());

    println!("\n5. Late stale commit, 3 epochs later (T1 keeps 4 epochs of receiver data)");
    let t = ts.call(json!({"op":"process","who":"T1","data":hex::encode(&c_r2)}));
    println!("  T1 processes R2's epoch-1 commit at epoch {}: {}", g1.epoch().as_u64(), t["error"]);
    show("R1", "processes R2's epoch-1 commit again", process(&mut g1, &r1.provider, &c_r2));
    drop(ts.child.stdin.take());
    let _ = ts.child.wait();
}
