//! Sender-keys alternative: cost of ONE membership change in a room of N members.
//! On a change every member makes a fresh 32-byte sender key and sends it to each of
//! the N-1 others, encrypted pairwise. Two variants:
//!   S = static-static X25519 per pair (both statics published in the signed profile);
//!       key = HKDF-SHA256(DH, salt="streamchat/v2/sk", info=room||epoch||from||to),
//!       entry = idx(2) || nonce(12) || AES-256-GCM(32-byte key) (48)   = 62 bytes.
//!       The DH is recomputed each time (column "S"); "S cached" caches the N-1 shared
//!       secrets (what an implementation would do, but then no forward secrecy of the
//!       distributed keys against a later theft of the static key).
//!   E = a fresh ephemeral X25519 per recipient (HPKE-base-like);
//!       entry = idx(2) || eph_pub(32) || AES-256-GCM(32-byte key) (48) || Ed25519 sig (64)
//!       = 146 bytes (ephemeral-static DH does not authenticate the sender, so each entry
//!       is signed with the member's identity key).
//! Usage: sender-keys [runs] [N...]
use std::time::Instant;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{Signer, SigningKey, Verifier};
use hkdf::Hkdf;
use mls_eval::{median, ms};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use x25519_dalek::{EphemeralSecret, PublicKey, StaticSecret};

const SALT: &[u8] = b"streamchat/v2/sk";
const ROOM: [u8; 16] = [7; 16];

fn kdf(shared: &[u8], info: &[u8]) -> Aes256Gcm {
    let hk = Hkdf::<Sha256>::new(Some(SALT), shared);
    let mut k = [0u8; 32];
    hk.expand(info, &mut k).expect("hkdf");
    Aes256Gcm::new_from_slice(&k).expect("key")
}

fn info(epoch: u64, from: u16, to: u16) -> Vec<u8> {
    let mut v = ROOM.to_vec();
    v.extend_from_slice(&epoch.to_be_bytes());
    v.extend_from_slice(&from.to_be_bytes());
    v.extend_from_slice(&to.to_be_bytes());
    v
}

struct Member {
    x_sk: StaticSecret,
    x_pk: PublicKey,
    sig: SigningKey,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.first().map(|s| s.parse().expect("runs")).unwrap_or(5);
    let sizes: Vec<usize> = if args.len() > 1 {
        args[1..].iter().map(|s| s.parse().expect("N")).collect()
    } else {
        vec![2, 50, 500]
    };
    println!("sender keys, Rust: x25519-dalek 2 + hkdf 0.12 (SHA-256) + aes-gcm 0.10 (AES-256-GCM) + ed25519-dalek 2; {runs} runs; times are for ONE member");
    println!("| N | variant | entry B | sent per member B | received per member (targeted) B | received per member (broadcast) B | server total in+out targeted B | server total in+out broadcast B | member send ms | member receive ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &n in &sizes {
        bench(n, runs);
    }
}

fn bench(n: usize, runs: usize) {
    let members: Vec<Member> = (0..n)
        .map(|_| {
            let x_sk = StaticSecret::random_from_rng(OsRng);
            let x_pk = PublicKey::from(&x_sk);
            Member { x_sk, x_pk, sig: SigningKey::generate(&mut OsRng) }
        })
        .collect();
    let me = 0u16; // member 0 sends to everyone; member 0 also receives from everyone.
    let mut r_s = [vec![], vec![]];
    let mut r_sc = [vec![], vec![]];
    let mut r_e = [vec![], vec![]];
    // Cached static-static shared secrets of member 0 with everyone.
    let cache: Vec<[u8; 32]> = members.iter().map(|m| members[0].x_sk.diffie_hellman(&m.x_pk).to_bytes()).collect();
    for run in 0..runs {
        let epoch = run as u64 + 1;
        // ---- S: static-static, DH recomputed ----
        for cached in [false, true] {
            let mut sk = [0u8; 32];
            OsRng.fill_bytes(&mut sk);
            let t = Instant::now();
            let mut bundle = Vec::with_capacity((n - 1) * 62);
            for (j, m) in members.iter().enumerate().skip(1) {
                let shared = if cached { cache[j] } else { members[0].x_sk.diffie_hellman(&m.x_pk).to_bytes() };
                let aead = kdf(&shared, &info(epoch, me, j as u16));
                let mut nonce = [0u8; 12];
                OsRng.fill_bytes(&mut nonce);
                let ct = aead.encrypt(Nonce::from_slice(&nonce), Payload { msg: &sk, aad: &[] }).expect("enc");
                bundle.extend_from_slice(&(j as u16).to_be_bytes());
                bundle.extend_from_slice(&nonce);
                bundle.extend_from_slice(&ct);
            }
            let send = ms(t);
            assert_eq!(bundle.len(), (n - 1) * 62);
            // Receive: member 0 gets one entry from each of the n-1 others (made here, untimed).
            let incoming: Vec<(usize, [u8; 12], Vec<u8>)> = (1..n)
                .map(|j| {
                    let shared = members[j].x_sk.diffie_hellman(&members[0].x_pk).to_bytes();
                    let aead = kdf(&shared, &info(epoch, j as u16, me));
                    let mut nonce = [0u8; 12];
                    OsRng.fill_bytes(&mut nonce);
                    (j, nonce, aead.encrypt(Nonce::from_slice(&nonce), Payload { msg: &sk, aad: &[] }).expect("enc"))
                })
                .collect();
            let t = Instant::now();
            for (j, nonce, ct) in &incoming {
                let shared = if cached { cache[*j] } else { members[0].x_sk.diffie_hellman(&members[*j].x_pk).to_bytes() };
                let aead = kdf(&shared, &info(epoch, *j as u16, me));
                let pt = aead.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &[] }).expect("dec");
                assert_eq!(pt.len(), 32);
            }
            let recv = ms(t);
            let r = if cached { &mut r_sc } else { &mut r_s };
            r[0].push(send);
            r[1].push(recv);
        }
        // ---- E: ephemeral per recipient + one signature over the bundle ----
        {
            let mut sk = [0u8; 32];
            OsRng.fill_bytes(&mut sk);
            let t = Instant::now();
            let mut bundle = Vec::with_capacity((n - 1) * 146);
            for (j, m) in members.iter().enumerate().skip(1) {
                let eph = EphemeralSecret::random_from_rng(OsRng);
                let eph_pk = PublicKey::from(&eph);
                let shared = eph.diffie_hellman(&m.x_pk).to_bytes();
                let mut inf = info(epoch, me, j as u16);
                inf.extend_from_slice(eph_pk.as_bytes());
                let aead = kdf(&shared, &inf);
                let ct = aead.encrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: &sk, aad: &[] }).expect("enc");
                let start = bundle.len();
                bundle.extend_from_slice(&(j as u16).to_be_bytes());
                bundle.extend_from_slice(eph_pk.as_bytes());
                bundle.extend_from_slice(&ct);
                let sig = members[0].sig.sign(&bundle[start..]);
                bundle.extend_from_slice(&sig.to_bytes());
            }
            let send = ms(t);
            assert_eq!(bundle.len(), (n - 1) * 146);
            // Receive: one signed entry from each other member.
            let incoming: Vec<(usize, Vec<u8>, Vec<u8>, ed25519_dalek::Signature)> = (1..n)
                .map(|j| {
                    let eph = EphemeralSecret::random_from_rng(OsRng);
                    let eph_pk = PublicKey::from(&eph);
                    let shared = eph.diffie_hellman(&members[0].x_pk).to_bytes();
                    let mut inf = info(epoch, j as u16, me);
                    inf.extend_from_slice(eph_pk.as_bytes());
                    let ct = kdf(&shared, &inf).encrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: &sk, aad: &[] }).expect("enc");
                    let mut entry = (me).to_be_bytes().to_vec();
                    entry.extend_from_slice(eph_pk.as_bytes());
                    entry.extend_from_slice(&ct);
                    let sig = members[j].sig.sign(&entry);
                    (j, entry, ct, sig)
                })
                .collect();
            let t = Instant::now();
            for (j, entry, _ct, sig) in &incoming {
                members[*j].sig.verifying_key().verify(entry, sig).expect("verify");
                let mut eph_pk = [0u8; 32];
                eph_pk.copy_from_slice(&entry[2..34]);
                let shared = members[0].x_sk.diffie_hellman(&PublicKey::from(eph_pk)).to_bytes();
                let mut inf = info(epoch, *j as u16, me);
                inf.extend_from_slice(&eph_pk);
                let pt = kdf(&shared, &inf)
                    .decrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: &entry[34..], aad: &[] })
                    .expect("dec");
                assert_eq!(pt.len(), 32);
            }
            let recv = ms(t);
            r_e[0].push(send);
            r_e[1].push(recv);
        }
    }
    for (name, entry, r) in [
        ("S static-static", 62usize, &mut r_s),
        ("S cached DH", 62, &mut r_sc),
        ("E ephemeral/recipient + sig", 146, &mut r_e),
    ] {
        let sent = (n - 1) * entry;
        let recv_t = (n - 1) * entry; // targeted: one entry from each other member
        let recv_b = (n - 1) * sent; // broadcast: every other member's whole bundle
        let srv_t = n * sent + n * recv_t;
        let srv_b = n * sent + n * recv_b;
        println!(
            "| {n} | {name} | {entry} | {sent} | {recv_t} | {recv_b} | {srv_t} | {srv_b} | {:.3} | {:.3} |",
            median(&mut r[0]), median(&mut r[1])
        );
    }
}
