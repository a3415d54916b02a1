//! Shared helpers for the MLS / sender-keys evaluation (issue #19).
use std::time::Instant;

use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use tls_codec::{Deserialize as _, Serialize as _};

/// 0x0001: X25519 + AES-128-GCM + SHA-256 + Ed25519. Chosen over 0x0003 because the
/// browser side (ts-mls) runs it entirely on WebCrypto (no pure-JS ChaCha20 needed) and
/// StreamChat already uses AES-GCM via WebCrypto.
pub const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

pub struct Client {
    pub name: String,
    pub provider: OpenMlsRustCrypto,
    pub signer: SignatureKeyPair,
    pub cwk: CredentialWithKey,
}

impl Client {
    pub fn new(name: &str) -> Self {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(CS.signature_algorithm()).expect("sig keys");
        signer.store(provider.storage()).expect("store signer");
        let cwk = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Client { name: name.to_string(), provider, signer, cwk }
    }

    pub fn key_package(&self) -> KeyPackage {
        KeyPackage::builder()
            .build(CS, &self.provider, &self.signer, self.cwk.clone())
            .expect("key package")
            .key_package()
            .clone()
    }

    pub fn create_group(&self, cfg: &MlsGroupCreateConfig) -> MlsGroup {
        MlsGroup::new(&self.provider, &self.signer, cfg, self.cwk.clone()).expect("group")
    }

    pub fn join(&self, welcome_bytes: &[u8], cfg: &MlsGroupJoinConfig) -> MlsGroup {
        let msg = MlsMessageIn::tls_deserialize_exact(welcome_bytes).expect("welcome decode");
        let welcome = match msg.extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => panic!("not a welcome"),
        };
        StagedWelcome::new_from_welcome(&self.provider, cfg, welcome, None)
            .expect("staged welcome")
            .into_group(&self.provider)
            .expect("into group")
    }
}

pub fn create_config(max_past_epochs: usize) -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CS)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(max_past_epochs)
        .build()
}

pub fn join_config(max_past_epochs: usize) -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(max_past_epochs)
        .build()
}

pub fn bytes(m: &MlsMessageOut) -> Vec<u8> {
    m.tls_serialize_detached().expect("serialize")
}

pub fn kp_bytes(kp: &KeyPackage) -> Vec<u8> {
    MlsMessageOut::from(kp.clone()).tls_serialize_detached().expect("kp serialize")
}

pub fn decode_kp(b: &[u8], provider: &OpenMlsRustCrypto) -> KeyPackage {
    let msg = MlsMessageIn::tls_deserialize_exact(b).expect("kp decode");
    match msg.extract() {
        MlsMessageBodyIn::KeyPackage(kp) => kp.validate(provider.crypto(), ProtocolVersion::Mls10).expect("kp validate"),
        _ => panic!("not a key package"),
    }
}

/// What processing one incoming message produced.
#[derive(Debug)]
pub enum Got {
    App(Vec<u8>),
    Commit,
    Other,
}

/// Decode and process one message; merge a commit. Errors are returned as text.
pub fn process(group: &mut MlsGroup, provider: &OpenMlsRustCrypto, b: &[u8]) -> Result<Got, String> {
    let msg = MlsMessageIn::tls_deserialize_exact(b).map_err(|e| format!("decode: {e:?}"))?;
    let pm = msg.try_into_protocol_message().map_err(|e| format!("protocol: {e:?}"))?;
    let processed = group.process_message(provider, pm).map_err(|e| format!("{e:?}"))?;
    match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(a) => Ok(Got::App(a.into_bytes())),
        ProcessedMessageContent::StagedCommitMessage(sc) => {
            group.merge_staged_commit(provider, *sc).map_err(|e| format!("merge: {e:?}"))?;
            Ok(Got::Commit)
        }
        _ => Ok(Got::Other),
    }
}

pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("nan"));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}
